"""Run the course for a class on one machine: N `streamlit run app.py` processes behind HAProxy.

    python -m deploy.serve                       # one process per core, students at http://<host>:8501
    python -m deploy.serve --processes 2 --port 8080 --address 0.0.0.0

Each student's browser gets a cookie (STREAMLIT_REPLICA) on its first request, so the page, its
websocket, its pictures (/media) and its uploads all reach the process that holds the student's
session. HAProxy checks every process on /_stcore/health each second; a process that stops
answering is taken out within about two seconds, and its students' browsers reconnect (Streamlit's
own reconnect) to a live one, where the page starts again from the widgets' values the browser still
holds. This command restarts a process that died, so the class gets its capacity back.

The processes share nothing but the read-only files (code, weights, bundled pictures) and one cookie
secret (so that an upload's XSRF cookie, signed by one process, is accepted by the others after a
reconnect). Used by bench/classroom and tests/deploy/test_deploy.py through ``Cluster``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")
COOKIE = "STREAMLIT_REPLICA"
HEALTH = "/_stcore/health"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout_s: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url``/_stcore/health answers 200 (raises if ``proc`` exits or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} was healthy")
        try:
            with urllib.request.urlopen(url + HEALTH, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy within {timeout_s:.0f} s")


def start_replica(port: int, cookie_secret: str, log: Path | None = None, torch_threads: int | None = None) -> subprocess.Popen:
    """One `streamlit run app.py` on 127.0.0.1:``port`` (no file watcher: nothing changes on a class server).
    ``torch_threads``: the denoiser's threads (ui/model.py's DIFFUSION_TORCH_THREADS), unless already set."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    env = dict(os.environ, PYTHONUNBUFFERED="1", STREAMLIT_SERVER_COOKIE_SECRET=cookie_secret)
    if torch_threads and "DIFFUSION_TORCH_THREADS" not in os.environ:
        env["DIFFUSION_TORCH_THREADS"] = str(torch_threads)
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--server.runOnSave", "false", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
    )


def haproxy_config(address: str, port: int, replicas: list[tuple[str, int]], max_sessions: int = 0) -> str:
    """HAProxy's configuration: one frontend, one backend of the replicas with cookie affinity and
    health checks. ``max_sessions`` > 0 caps the connections per replica (0: no cap)."""
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{p} check cookie {name}" + (f" maxconn {max_sessions}" if max_sessions else "")
        for name, p in replicas
    )
    return f"""\
global
    maxconn 4096

defaults
    mode http
    option http-server-close
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    # A student's websocket stays open for the whole lesson.
    timeout tunnel 8h
    timeout http-request 15s
    timeout queue 30s
    # A request for a replica that just died is sent to a live one.
    option redispatch
    retries 2

frontend students
    bind {address}:{port}
    default_backend streamlit

backend streamlit
    # Each new student goes to the replica with the fewest open connections (websockets are long).
    balance leastconn
    # Affinity: the first response sets the cookie; later requests (websocket, /media, uploads) follow it.
    cookie {COOKIE} insert indirect nocache httponly
    option httpchk GET {HEALTH}
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


@dataclass
class Cluster:
    """N replicas and HAProxy in front, on loopback unless ``address`` says otherwise."""

    processes: int = 2
    port: int = 0  # 0: a free port
    address: str = "127.0.0.1"
    log_dir: Path | None = None
    replicas: list[subprocess.Popen] = field(default_factory=list)
    replica_ports: list[int] = field(default_factory=list)
    haproxy: subprocess.Popen | None = None
    cookie_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    _tmp: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "::") else self.address
        return f"http://{host}:{self.port}"

    @property
    def names(self) -> list[str]:
        return [f"app{i + 1}" for i in range(self.processes)]

    def _start(self, i: int) -> subprocess.Popen:
        # A process per core: one torch thread each, or they fight over the cores when several sample at once.
        threads = 1 if self.processes > 1 else None
        return start_replica(self.replica_ports[i], self.cookie_secret, self._log(self.names[i]), threads)

    def _log(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir else None

    def start(self) -> "Cluster":
        self._tmp = tempfile.TemporaryDirectory(prefix="classroom-haproxy-")
        self.port = self.port or free_port()
        self.replica_ports = [free_port() for _ in range(self.processes)]
        self.replicas = [self._start(i) for i in range(self.processes)]
        for proc, p in zip(self.replicas, self.replica_ports):
            wait_healthy(f"http://127.0.0.1:{p}", proc=proc)
        config = Path(self._tmp.name) / "haproxy.cfg"
        config.write_text(haproxy_config(self.address, self.port, list(zip(self.names, self.replica_ports))))
        log = self._log("haproxy")
        self.haproxy = subprocess.Popen([HAPROXY, "-f", str(config), "-db"],
                                        stdout=open(log, "ab") if log else subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_healthy(self.url, timeout_s=20, proc=self.haproxy)
        return self

    def restart_dead(self) -> list[str]:
        """Start again every replica that has exited, on its port; the names restarted."""
        restarted = []
        for i, proc in enumerate(self.replicas):
            if proc.poll() is not None:
                self.replicas[i] = self._start(i)
                restarted.append(self.names[i])
        return restarted

    def stop(self) -> None:
        for proc in [self.haproxy, *self.replicas]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [self.haproxy, *self.replicas]:
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "Cluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="app processes (default: one per core)")
    parser.add_argument("--port", type=int, default=8501, help="the port students open")
    parser.add_argument("--address", default="0.0.0.0", help="where HAProxy listens (0.0.0.0: every interface)")
    parser.add_argument("--log-dir", type=Path, default=None, help="write each process's output here")
    args = parser.parse_args()
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(processes=args.processes, port=args.port, address=args.address, log_dir=args.log_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with cluster:
        print(f"{args.processes} app processes on ports {cluster.replica_ports}; students open port {args.port}"
              f" of this machine ({cluster.url} here)", flush=True)
        try:
            while cluster.haproxy.poll() is None:
                for name in cluster.restart_dead():
                    print(f"{name} had stopped: started again", flush=True)
                time.sleep(2)
            print(f"haproxy exited with {cluster.haproxy.returncode}", file=sys.stderr)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
