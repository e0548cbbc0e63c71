"""Shared fixtures: AppTest runs of a page, and a real `streamlit run app.py` driven by Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
LANGS = ("vi", "en")
APPTEST_TIMEOUT = 60  # seconds per script run; generous for a loaded 2-core CI machine


def run_page(page: str, lang: str = "vi", **session_state):
    """Run ``page`` (e.g. "app.py" or "pages/1_Gaussian.py") once in AppTest in ``lang``."""
    from streamlit.testing.v1 import AppTest

    # The app is the entrypoint (as under `streamlit run app.py`), so the sidebar's st.page_link
    # paths resolve; a page is then reached with switch_page.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT)
    if page != "app.py":
        at.switch_page(page)
    at.session_state["lang"] = lang
    for key, value in session_state.items():
        at.session_state[key] = value
    return at.run()


def assert_clean(at) -> None:
    """No exception element and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# ---------------------------------------------------------------- browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """Start the real app on a free loopback port; yields its base URL."""
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError(f"streamlit did not start:\n{proc.stdout.read().decode(errors='replace')}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright; skipped with a reason where it is missing, except under CI."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


def wait_idle(pg, timeout_ms: int = 60000) -> None:
    """Wait until the app is connected and its script has finished running."""
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    pg.wait_for_timeout(300)  # let the last elements paint


def open_page(pg, app_url: str, path: str, lang: str) -> None:
    """Open ``path`` ('' for home, 'Gaussian' for pages/1_Gaussian.py) in ``lang`` and wait."""
    pg.goto(f"{app_url}/{path}?lang={lang}")
    wait_idle(pg)


def assert_no_exception(pg) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0, pg.locator('[data-testid="stException"]').first.inner_text()


def screenshot(pg, name: str) -> Path:
    """Full-page PNG under tests/screenshots/ (ignored by git) to look at."""
    out = ROOT / "tests" / "screenshots"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def record_runs(pg) -> list[list[str]]:
    """Record the script runs the server starts for ``pg`` (attach before opening the page): for each,
    the fragments it reruns, as its new_session message says ([] for a run of the whole page)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    runs: list[list[str]] = []

    def on_frame(payload) -> None:
        if isinstance(payload, bytes):
            msg = ForwardMsg.FromString(payload)
            if msg.WhichOneof("type") == "new_session":
                runs.append(list(msg.metadata.run.fragment_ids))

    pg.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return runs


# ---------------------------------------------------------------- translations
def assert_translations_match(section: str) -> dict[str, dict[str, str]]:
    """Both languages of ``section`` hold the same keys, each string the same $...$ math and the same
    {fields} (braces counted, so "{{x}}" and "{x}" differ), and no number with a comma between thousands.
    Returns the two tables ({lang: {key: text}}) for a test's own checks."""
    import re

    from ui.i18n import load_table

    tables = {lang: {k: v for k, v in load_table(lang).items() if k.startswith(f"{section}.")} for lang in LANGS}
    en, vi = tables["en"], tables["vi"]
    assert en and en.keys() == vi.keys()
    for pattern in (r"\$[^$]+\$", r"\{+\w+\}+"):
        assert {k: sorted(re.findall(pattern, v)) for k, v in en.items()} == \
               {k: sorted(re.findall(pattern, v)) for k, v in vi.items()}, pattern
    for table in tables.values():
        assert not [k for k, v in table.items() if re.search(r"\d,\d{3}", v)]
    return tables
