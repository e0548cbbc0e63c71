"""One browser tab, at the protocol level: Streamlit 1.67's websocket (`/_stcore/stream`), its protobufs
and its HTTP routes, with nothing rendered.

What the browser does, and where it was read (the installed streamlit package):
- It loads the page's URL (cookies: HAProxy's affinity cookie on the first response) and
  `/_stcore/health`, whose answer sets the XSRF cookie `_streamlit_xsrf` (web/server/starlette/
  starlette_routes.py, `_ensure_xsrf_cookie`).
- It opens the websocket with the subprotocols ["streamlit", XSRF token, last session id] (the frontend's
  `getSessionTokens`; the server's `_parse_subprotocols` in starlette_websocket.py: the third entry
  resumes a session that still exists on that process, else a new session is made).
- It sends a `rerun_script` BackMsg (ClientState: query_string, widget_states, page_script_hash or, on
  the first load of a page, page_name from the URL, fragment_id, cached_message_hashes, context_info:
  the frontend's `sendRerunBackMsg`).
- The server answers a run with `new_session` (the run's id and fragment ids in metadata.run; the app's
  pages with their hashes), `delta`s (metadata.delta_path, delta.fragment_id), `ref_hash` messages for
  deltas the client said it had cached (runtime/scriptrunner_utils/script_run_context.py: only hashes in
  ClientState.cached_message_hashes; there is no re-request in 1.67), `page_info_changed`, and
  `script_finished` (FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY, or
  FINISHED_EARLY_FOR_RERUN when `st.rerun` chains another run) (runtime/app_session.py).
- Widget states: every widget on the page with its current value (value_type from elements/widgets/*.py:
  sliders double_array_value, select_slider string_array_value of formatted options, selectbox and radio
  string_value, checkbox bool_value, number_input double_value, buttons trigger_value once). A widget's
  value comes from its proto when the proto says `set_value`, else it keeps what the tab holds, else
  its default (the frontend's widget manager). Widgets gone after a run are dropped.
- Uploads: BackMsg file_urls_request -> ForwardMsg file_urls_response, PUT multipart to the upload URL
  with the X-Xsrftoken header, then the uploader's file_uploader_state_value in a rerun.
- Media: every `/media/...` URL a run's deltas name is fetched over HTTP (a browser loads each image).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import FileURLs
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.protocol.http import Client, HTTPError, multipart
from bench.protocol.widgets import (
    WIDGET_KINDS,
    Widget,
    proto_value,
    slider_state,
    user_key,
)

XSRF_COOKIE = "_streamlit_xsrf"
REPLICA_COOKIE = "STREAMLIT_REPLICA"  # deploy/serve.py's HAProxy affinity cookie
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
            ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


class Closed(Exception):
    """The websocket closed under the student."""


@dataclass
class Run:
    """One script run the tab asked for (a chain, if the script called st.rerun), as the tab saw it."""

    sent: float  # time.monotonic() when the BackMsg left
    run_ids: list[str] = field(default_factory=list)
    fragment_ids: list[str] = field(default_factory=list)  # of its new_session (the last of a chain)
    status: int | None = None  # its script_finished
    finished: float | None = None
    media_done: float | None = None  # when the last media file of the run arrived
    delta_fragments: list[str] = field(default_factory=list)  # delta.fragment_id of each delta
    delta_paths: list[tuple[int, ...]] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    media_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _fetches: list[asyncio.Task] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Send -> script_finished and the last media byte."""
        end = max(self.finished or 0.0, self.media_done or 0.0)
        return end - self.sent


@dataclass
class Node:
    """An element or block of the page's tree, and the run that last drew it."""

    kind: str  # the Element's field ("slider", "imgs", ...) or "block"
    element: object
    run_id: str
    fragment_id: str


class Session:
    """A tab: ``await open(page)``, then ``await rerun(...)`` / ``set_slider(...)`` / ``upload(...)``."""

    def __init__(self, base: str, lang: str = "en", timeout: float = 20.0) -> None:
        self.base, self.lang, self.timeout = base.rstrip("/"), lang, timeout
        self.http = Client(self.base)
        self.ws = None
        self.session_id = ""
        self.page = ""  # the URL path of the page ("Closed_form")
        self.page_hash = ""
        self.pages: dict[str, str] = {}  # url path -> page_script_hash, from new_session
        self.tree: dict[tuple[int, ...], Node] = {}
        self.values: dict[str, WidgetState] = {}  # widget id -> the value the tab holds
        # The browser's message cache: hash -> [ForwardMsg, runs since last used, its fragment id]
        self.cache: dict[str, list] = {}
        self.max_cached_age = 2
        self.cache_hits = 0  # ref_hash messages resolved from the cache
        self.run_id = ""  # of the last new_session
        self.fetched: set[str] = set()  # media URLs this tab already loaded (the browser's memory cache)
        self.run: Run | None = None
        self.closed = asyncio.Event()
        self.closed_at = 0.0  # time.monotonic() when the websocket closed
        self.close_code: int | None = None
        self.auto_reruns: dict[str, float] = {}  # fragment id -> seconds (st.fragment(run_every=...))
        self.closing = False
        self.file_urls: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._new_session_seen = False
        self.last_message = 0.0

    # ------------------------------------------------------------------ connection
    @property
    def replica(self) -> str | None:
        return self.http.cookies.get(REPLICA_COOKIE)

    async def connect(self) -> None:
        """Load the page over HTTP (cookies), then open the websocket (resuming the last session if any)."""
        self.closed.clear()
        self.close_code = None
        await self.http.get(f"/{quote(self.page)}?lang={self.lang}", timeout=self.timeout)
        await self.http.get("/_stcore/health", timeout=self.timeout)
        tokens = [self.http.cookies.get(XSRF_COOKIE, "PLACEHOLDER_AUTH_TOKEN")] + ([self.session_id] if self.session_id else [])
        ws_url = "ws" + self.base[4:] + "/_stcore/stream"
        self.ws = await websockets.connect(
            ws_url, subprotocols=["streamlit", *tokens], origin=self.base,
            additional_headers={"Cookie": self.http.cookie_header()}, max_size=None, open_timeout=self.timeout,
            ping_interval=None, user_agent_header="bench.protocol")
        set_cookies = self.ws.response.headers.get_all("Set-Cookie") if self.ws.response else []
        self.http.take_cookies(list(set_cookies))
        self._new_session_seen = False
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:
                pass
        if self._reader is not None:
            self._reader.cancel()
        await self.http.close()

    async def _read(self) -> None:
        try:
            async for payload in self.ws:
                self.last_message = time.monotonic()
                msg = ForwardMsg()
                msg.ParseFromString(payload)
                self._handle(msg)
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # a message this client cannot read: count it as the tab breaking
            if self.run is not None:
                self.run.exceptions.append(f"client: {type(e).__name__}: {e}")
        finally:
            self.close_code = self.ws.close_code if self.ws is not None else None
            self.closed_at = time.monotonic()
            self.closed.set()
            if self.run is not None and not self.run.done.is_set():
                self.run.done.set()

    # ------------------------------------------------------------------ messages
    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self.cache.get(msg.ref_hash)
            if cached is None:  # the browser reports this as a bug; it means the cache logic here is off
                if self.run is not None:
                    self.run.exceptions.append(f"cached message {msg.ref_hash} missing")
                return
            cached[1] = 0
            self.cache_hits += 1
            full = ForwardMsg()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, "delta"
        elif kind == "delta" and msg.metadata.cacheable and msg.hash and msg.hash not in self.cache:
            self.cache[msg.hash] = [msg, 0, msg.delta.fragment_id]

        if kind == "new_session":
            ns = msg.new_session
            self.max_cached_age = ns.config.max_cached_message_age or self.max_cached_age
            if ns.initialize.session_id:
                self.session_id = ns.initialize.session_id
            self.run_id = msg.metadata.run.script_run_id
            self._new_session_seen = True
            if self.run is not None:
                self.run.run_ids.append(msg.metadata.run.script_run_id)
                self.run.fragment_ids = list(msg.metadata.run.fragment_ids)
        elif kind == "delta":
            self._delta(msg)
        elif kind == "script_finished":
            self._finished(msg)
        elif kind == "file_urls_response":
            future = self.file_urls.pop(msg.file_urls_response.response_id, None)
            if future is not None and not future.done():
                future.set_result(msg.file_urls_response)
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            if self.run is not None:
                self.run.exceptions.append(msg.session_event.script_compilation_exception.message)
        elif kind == "navigation":
            # Pages in a pages/ folder run through st.navigation (streamlit's _mpa_v1): this message, not
            # new_session (which names only the main script before the script runs), says each page's
            # hash and the page this run shows.
            nav = msg.navigation
            for p in nav.app_pages:
                self.pages[p.url_pathname] = p.page_script_hash
            self.page_hash = nav.page_script_hash
        elif kind == "auto_rerun":  # the frontend reruns this fragment every interval (is_auto_rerun)
            self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self.auto_reruns.pop(fid, None)
        # page_info_changed (the query string), session_status_changed, page_config_changed: nothing to do

    def _delta(self, msg: ForwardMsg) -> None:
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        run = self.run
        if run is not None and self._new_session_seen:
            run.delta_fragments.append(delta.fragment_id)
            run.delta_paths.append(path)
        which = delta.WhichOneof("type")
        if which == "new_element":
            element = delta.new_element
            kind = element.WhichOneof("type")
            old = self.tree.get(path)
            if old is not None and old.kind == "block":  # an element replaces a block and what it held
                n = len(path)
                for stale in [p for p in self.tree if len(p) > n and p[:n] == path]:
                    del self.tree[stale]
            self.tree[path] = Node(kind, element, self.run_id, delta.fragment_id)
            if kind == "exception" and run is not None:
                run.exceptions.append(f"{element.exception.type}: {element.exception.message}"[:300])
            elif kind in WIDGET_KINDS:
                self._widget_drawn(kind, getattr(element, kind), delta.fragment_id)
            for url in media_urls(element, kind):
                if run is not None:
                    run.media.append(url)
                    if url not in self.fetched:
                        self.fetched.add(url)
                        run._fetches.append(asyncio.create_task(self._fetch(run, url)))
        elif which == "add_block":
            self.tree[path] = Node("block", delta.add_block, self.run_id, delta.fragment_id)

    def _widget_drawn(self, kind: str, proto, fragment_id: str) -> None:
        if kind == "slider" and proto.type == proto.SELECT_SLIDER:
            kind = "select_slider"
        w = Widget(proto.id, kind, user_key(proto.id), fragment_id, proto)
        if getattr(proto, "set_value", False) or w.id not in self.values:
            state = proto_value(w)
            if state is not None:
                self.values[w.id] = state

    async def _fetch(self, run: Run, url: str) -> None:
        try:
            r = await self.http.request("GET", url if url.startswith("/") else "/" + url, timeout=self.timeout)
            if r.status >= 400:
                run.media_errors.append(f"{url}: {r.status}")
        except (TimeoutError, HTTPError, OSError) as e:
            run.media_errors.append(f"{url}: {type(e).__name__}")
        run.media_done = max(run.media_done or 0.0, time.monotonic())

    def _finished(self, msg: ForwardMsg) -> None:
        run = self.run
        status = msg.script_finished
        if status in (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            fragment_run = status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
            fragment_ids = list(msg.metadata.run.fragment_ids)
            self._clear_stale(fragment_run, fragment_ids)
            for entry in self.cache.values():  # a run ages what it could have drawn (the frontend's cache)
                if not fragment_run or entry[2] in fragment_ids:
                    entry[1] += 1
        if run is None or not self._new_session_seen or status not in FINISHED:
            return  # not our run, or st.rerun chains another (FINISHED_EARLY_FOR_RERUN)
        run.status, run.finished = status, time.monotonic()
        run.done.set()

    def _clear_stale(self, fragment_run: bool, fragment_ids: list[str]) -> None:
        """What the frontend's clearStaleNodes does after a run: drop what the run did not draw again
        (after a fragment's run, only inside that fragment), and the values of widgets gone with it."""
        current = self.run_id
        if not current:  # pragma: no cover - a script_finished before any new_session
            return
        for path, node in list(self.tree.items()):
            if node.run_id != current and (not fragment_run or node.fragment_id in fragment_ids):
                del self.tree[path]
        live = {getattr(n.element, n.kind).id for n in self.tree.values() if n.kind in WIDGET_KINDS}
        for wid in [w for w in self.values if w not in live]:
            del self.values[wid]

    # ------------------------------------------------------------------ the page's widgets
    def widgets(self) -> list[Widget]:
        out = []
        for node in self.tree.values():
            if node.kind in WIDGET_KINDS:
                proto = getattr(node.element, node.kind)
                kind = "select_slider" if node.kind == "slider" and proto.type == proto.SELECT_SLIDER else node.kind
                out.append(Widget(proto.id, kind, user_key(proto.id), node.fragment_id, proto))
        return out

    def widget(self, key: str) -> Widget | None:
        return next((w for w in self.widgets() if w.key == key), None)

    def sliders(self) -> list[Widget]:
        """The sliders, select_sliders and segmented controls (a row of options stepped like a slider)."""
        return [w for w in self.widgets() if w.kind in ("slider", "select_slider")
                or (w.kind == "button_group" and len(w.options) > 1 and not (w.key or "").startswith(("ex_", "_ex")))]

    def block_keys(self) -> set[str]:
        """The keys of the keyed containers on the page (st.container(key=...))."""
        return {k for n in self.tree.values() if n.kind == "block" and (k := user_key(n.element.id))}

    def texts(self, kind: str) -> list[str]:
        """The text of every element of ``kind`` on the page ("progress": its label; "markdown": its body)."""
        field_of = {"progress": "text", "markdown": "body", "alert": "body", "text": "body", "heading": "body"}
        return [getattr(getattr(n.element, kind), field_of[kind]) for n in self.tree.values() if n.kind == kind]

    # ------------------------------------------------------------------ runs
    def client_state(self, extra: list[WidgetState] = (), fragment_id: str = "", page_name: str = "",
                     is_auto_rerun: bool = False) -> ClientState:
        cs = ClientState(query_string=f"lang={self.lang}", page_script_hash=self.pages.get(self.page, ""),
                         fragment_id=fragment_id, cached_message_hashes=list(self.cache), is_auto_rerun=is_auto_rerun)
        if not cs.page_script_hash:
            cs.page_name = page_name or self.page
        states = dict(self.values)
        for s in extra:
            states[s.id] = s
        cs.widget_states.widgets.extend(states.values())
        ci = cs.context_info
        ci.timezone, ci.timezone_offset, ci.url, ci.is_embedded, ci.color_scheme = (
            "UTC", 0, f"{self.base}/{self.page}?lang={self.lang}", False, "light")
        ci.locale = "vi-VN" if self.lang == "vi" else "en-US"
        return cs

    async def rerun(self, extra: list[WidgetState] = (), fragment_id: str = "", wait: bool = True,
                    is_auto_rerun: bool = False) -> Run:
        """Send a rerun_script with every widget's state (``extra`` on top: a moved slider, a trigger);
        with ``wait``, until its script_finished and its media (or the timeout: ``run.status`` None)."""
        if self.closed.is_set():
            raise Closed(f"websocket closed ({self.close_code})")
        # Forget cached messages not used for max_cached_message_age runs, now rather than when a run
        # ends: the hashes this BackMsg names stay until the next one, so every ref_hash resolves.
        for h in [h for h, entry in self.cache.items() if entry[1] > self.max_cached_age]:
            del self.cache[h]
        back = BackMsg()
        back.rerun_script.CopyFrom(self.client_state(extra, fragment_id, is_auto_rerun=is_auto_rerun))
        for s in extra:  # the tab holds the new value of a moved widget (not a trigger: it fires once)
            if s.WhichOneof("value") not in ("trigger_value", "string_trigger_value"):
                self.values[s.id] = s
        run = self.run = Run(sent=time.monotonic())
        self._new_session_seen = False
        await self._send(back)
        if wait:
            await self.wait(run)
        return run

    async def _send(self, back: BackMsg) -> None:
        try:
            await self.ws.send(back.SerializeToString())
        except websockets.ConnectionClosed as e:
            raise Closed(f"websocket closed ({e})") from e

    async def wait(self, run: Run, timeout: float | None = None) -> Run:
        try:
            await asyncio.wait_for(run.done.wait(), timeout or self.timeout)
        except TimeoutError:
            pass
        if run._fetches:
            await asyncio.gather(*run._fetches, return_exceptions=True)
        if self.closed.is_set() and run.status is None:
            raise Closed(f"websocket closed ({self.close_code})")
        return run

    def follow(self) -> Run:
        """Expect a run the tab did not ask for (the server's own, after st.rerun or a worker's news)."""
        run = self.run = Run(sent=time.monotonic())
        self._new_session_seen = False
        return run

    async def open(self, page: str) -> Run:
        """Open ``page`` (its URL path, "" for home) as a new tab does."""
        if page != self.page:
            self.auto_reruns.clear()
        self.page = page
        if self.ws is None or self.closed.is_set():
            await self.connect()
        return await self.rerun()

    async def set_slider(self, w: Widget, value: float | str) -> Run:
        """Move slider ``w`` to ``value`` as the browser does: all widget states, and the slider's
        fragment id when it sits in a fragment (only that fragment reruns)."""
        return await self.rerun([slider_state(w, value)], fragment_id=w.fragment_id)

    async def press(self, key: str) -> Run | None:
        """Click the button with ``key``; None if the page has no such button."""
        w = self.widget(key)
        if w is None:
            return None
        return await self.rerun([WidgetState(id=w.id, trigger_value=True)], fragment_id=w.fragment_id, wait=False)

    async def upload(self, key: str, filename: str, content: bytes, content_type: str = "image/png") -> Run:
        """Put a file into the uploader with ``key`` as the frontend does: ask for its URL over the websocket,
        PUT it (multipart, X-Xsrftoken), then rerun with the uploader's new state."""
        w = self.widget(key)
        if w is None:
            raise LookupError(f"no file uploader {key}")
        request_id = uuid.uuid4().hex
        future = self.file_urls[request_id] = asyncio.get_running_loop().create_future()
        back = BackMsg()
        back.file_urls_request.request_id = request_id
        back.file_urls_request.file_names.append(filename)
        back.file_urls_request.session_id = self.session_id
        await self._send(back)
        response = await asyncio.wait_for(future, self.timeout)
        if response.error_msg:
            raise HTTPError(f"file_urls_request: {response.error_msg}")
        urls: FileURLs = response.file_urls[0]
        body, ctype = multipart(filename, filename, content, content_type)
        headers = {"Content-Type": ctype, "X-Xsrftoken": self.http.cookies.get(XSRF_COOKIE, "")}
        r = await self.http.request("PUT", path_of(urls.upload_url), body, headers, timeout=self.timeout)
        if r.status >= 400:
            raise HTTPError(f"PUT {urls.upload_url}: {r.status}")
        old = self.values.get(w.id)
        if old is not None and old.HasField("file_uploader_state_value"):  # a single-file uploader replaces
            for info in old.file_uploader_state_value.uploaded_file_info:
                await self.http.request("DELETE", path_of(info.file_urls.delete_url), headers=headers,
                                        timeout=self.timeout)
        state = WidgetState(id=w.id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = urls.file_id, filename, len(content)
        info.file_urls.CopyFrom(urls)
        return await self.rerun([state], fragment_id=w.fragment_id)


def path_of(url: str) -> str:
    """The path (and query) of an absolute or relative URL."""
    parts = urlsplit(url)
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return path + (f"?{parts.query}" if parts.query else "")


def media_urls(element, kind: str) -> list[str]:
    """The /media/ URLs a browser would load for this element (images, audio, video; not downloads)."""
    if kind == "imgs":
        urls = [img.url for img in element.imgs.imgs]
    elif kind in ("audio", "video"):
        urls = [getattr(element, kind).url]
    else:
        return []
    return [u for u in urls if "/media/" in u]
