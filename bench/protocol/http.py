"""A small asyncio HTTP/1.1 client for the load generator: GET and PUT on one keep-alive connection per
student, with the student's cookies (the XSRF cookie `_streamlit_xsrf`, HAProxy's `STREAMLIT_REPLICA`).

The standard library has no asyncio HTTP client, and a thread per request (urllib) would cost the
generator more CPU than the server it measures; a browser also keeps its connection to the server open.
Only what Streamlit's routes answer is handled: Content-Length or chunked bodies, Set-Cookie, no TLS."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit


class HTTPError(Exception):
    """A status >= 400, or a connection that broke mid-response."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers (other than Set-Cookie) keep the last
    body: bytes


class _Connection:
    """One kept-alive TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass


@dataclass
class Client:
    """One student's HTTP connections (at most ``connections`` at once, kept alive, as a browser keeps
    several per host) and cookie jar, to ``base`` ("http://127.0.0.1:8501")."""

    base: str
    connections: int = 4
    cookies: dict[str, str] = field(default_factory=dict)
    _idle: list[_Connection] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def take_cookies(self, set_cookie_values: list[str]) -> None:
        for value in set_cookie_values:
            jar = SimpleCookie()
            try:
                jar.load(value)
            except Exception:
                jar = None
            if not jar:  # a value SimpleCookie will not parse: take name=value up to the first ";"
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
                continue
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      timeout: float = 30.0) -> Response:
        """One request; retried once on a fresh connection if a kept-alive one was closed under us."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.connections)
        async with self._slots:
            for attempt in (0, 1):
                reused = bool(self._idle) and attempt == 0
                if reused:
                    conn = self._idle.pop()
                else:
                    parts = urlsplit(self.base)
                    conn = _Connection(*await asyncio.open_connection(parts.hostname, parts.port or 80))
                try:
                    response, keep = await asyncio.wait_for(self._exchange(conn, method, path, body, headers or {}),
                                                            timeout)
                except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError, IndexError) as e:
                    await conn.close()
                    if attempt or not reused:
                        raise HTTPError(f"{method} {path}: {type(e).__name__}: {e}") from e
                    await self.close()  # the server dropped a kept-alive connection: the others too, likely
                    continue
                except TimeoutError:
                    await conn.close()
                    raise
                if keep:
                    self._idle.append(conn)
                else:
                    await conn.close()
                return response
            raise AssertionError("unreachable")

    async def _exchange(self, conn: _Connection, method: str, path: str, body: bytes,
                        headers: dict[str, str]) -> tuple[Response, bool]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", "Connection: keep-alive"]
        if self.cookies:
            lines.append(f"Cookie: {self.cookie_header()}")
        if body or method in ("PUT", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await conn.writer.drain()

        reader = conn.reader
        status = int((await reader.readuntil(b"\r\n")).split()[1])
        head: dict[str, str] = {}
        set_cookies: list[str] = []
        while True:
            line = (await reader.readuntil(b"\r\n")).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                set_cookies.append(value)
            else:
                head[name] = value
        self.take_cookies(set_cookies)
        keep = head.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif head.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers from Streamlit
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(chunks)
        elif "content-length" in head:
            data = await reader.readexactly(int(head["content-length"]))
        else:  # until the server closes
            data, keep = await reader.read(), False
        return Response(status, head, data), keep

    async def get(self, path: str, timeout: float = 30.0) -> Response:
        r = await self.request("GET", path, timeout=timeout)
        if r.status >= 400:
            raise HTTPError(f"GET {path}: {r.status}")
        return r


def multipart(field_name: str, filename: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file, as the browser's FormData sends it; (body, content type)."""
    boundary = "----protocolbench7MA4YWxkTrZu0gW"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
