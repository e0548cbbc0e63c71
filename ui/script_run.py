"""What Streamlit's runtime knows about the script run in progress, for loops that run for a long time
inside it (the live player): is the browser tab still there, is a click waiting, is this a fragment's run.

Outside a server (AppTest, plain Python) the answers are those of an open tab with nothing waiting.
"""

from __future__ import annotations

from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import (
    ScriptRequests,
    ScriptRequestType,
)


def session_connected() -> bool:
    """False once this script's browser tab has gone (Streamlit issue 6166: a script keeps running
    after its tab is closed); True outside a server."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return True
    return runtime.get_instance().is_active_session(ctx.session_id) is not False


def rerun_waiting(requests: ScriptRequests | None = None) -> bool:
    """True when the browser has asked for a rerun that this script run has not acted on yet.

    A click on a widget inside an ``st.fragment`` does not stop the script run in progress: Streamlit
    queues it until the run ends (Streamlit PR 8298, issue 11030). A loop inside a fragment that should
    answer its own buttons within one step must therefore look for itself and return. There is no
    public call for this in Streamlit 1.67, so this reads the state of the run's request queue
    (``requests``: this run's, by default); tests/pages/test_page_reverse.py checks it against Streamlit's
    own ScriptRequests, so an upgrade that changes it fails there."""
    if requests is None:
        ctx = get_script_run_ctx(suppress_warning=True)
        requests = getattr(ctx, "script_requests", None)
        if requests is None:
            return False
    return getattr(requests, "_state", None) == ScriptRequestType.RERUN


def in_fragment_run() -> bool:
    """True when only a fragment is running (a widget inside it was used, or it called
    ``st.rerun(scope="fragment")``); False during a run of the whole page."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return bool(getattr(ctx, "fragment_ids_this_run", None))
