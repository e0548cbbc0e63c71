"""bench/protocol: the protocol-level students against a real `streamlit run app.py` (the app_url fixture),
and its summary statistics against numpy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import random
import urllib.request

import numpy as np
import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Slider_pb2 import Slider

from bench.protocol.session import Session
from bench.protocol.stats import percentile, summarize
from bench.protocol.students import Clock, Results, Student, Walker, grid_of
from bench.protocol.widgets import Widget


def run_async(coro):
    """asyncio.run in a thread of its own: Playwright's sync API (the browser tests of this session) leaves an
    event loop running in the main thread, where asyncio.run refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("values", [
    [0.5], [3.0, 1.0], [0.1, 0.2, 0.3, 0.4, 10.0], list(np.random.default_rng(0).exponential(0.3, 97)),
])
def test_summary_statistics_match_numpy(values):
    s = summarize(values)
    assert s.n == len(values) and s.max == max(values)
    assert s.median == pytest.approx(float(np.median(values)), rel=1e-12)
    assert s.p95 == pytest.approx(float(np.percentile(values, 95)), rel=1e-12)
    for q in (0, 10, 25, 75, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
    assert np.isnan(percentile([], 50))


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def test_a_step_of_forward_chain_t_reruns_only_its_fragment_and_its_picture_loads(app_url):
    async def go():
        s = Session(app_url, "vi", timeout=60)
        try:
            opened = await s.open("Forward_chain")
            assert opened.status == ForwardMsg.FINISHED_SUCCESSFULLY and not opened.exceptions
            w = s.widget("forward_chain_t")
            assert w is not None and w.kind == "slider" and w.fragment_id, [x.key for x in s.widgets()]
            assert (w.proto.min, w.proto.max, w.proto.step) == (0, 1000, 1)  # 0..T at the default T = 1000
            before = set(opened.media)
            run = await s.set_slider(w, 321)
            # The new picture, fetched again apart from the generator (while the session holds it:
            # Streamlit drops a session's media files when a later run replaces them or the tab closes).
            new = [u for u in run.media if u not in before]
            fetched = [await asyncio.to_thread(fetch, app_url + u) for u in new]
            # Back to where it opened: the big deltas of t = 0 (the charts) are in the tab's cache, so the
            # server sends their ref_hash only (the tab named them in cached_message_hashes).
            back = await s.set_slider(s.widget("forward_chain_t"), 0)
            assert back.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY and not back.exceptions
            return s, w, new, fetched, run
        finally:
            await s.close()

    s, w, new, fetched, run = run_async(go())
    assert run.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, run.status
    assert run.fragment_ids == [w.fragment_id]
    assert run.delta_fragments and set(run.delta_fragments) == {w.fragment_id}  # every delta inside it
    assert not run.exceptions and not run.media_errors
    assert s.cache_hits > 0  # the way back: cached deltas came as ref_hash and were resolved
    assert len(new) == 1, run.media  # x_321 of the chain
    for status, body in fetched:
        assert status == 200 and body.startswith(PNG_SIGNATURE)
    assert s.values[w.id].double_array_value.data[:] == [0.0]  # the tab holds the slider's last value


def test_a_step_of_closed_form_t_sends_no_picture_file(app_url):
    """Page 3 draws x_t in the browser (ui/mix.py): a step reruns its fragment and names no media file; the
    pictures' payload, the same at every t, comes back as a reference to the tab's cache."""
    async def go():
        s = Session(app_url, "en", timeout=60)
        try:
            await s.open("Closed_form")
            w = s.widget("closed_form_t")
            hits = s.cache_hits
            run = await s.set_slider(w, 321)
            return s, w, run, hits
        finally:
            await s.close()

    s, w, run, hits = run_async(go())
    assert run.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY and run.fragment_ids == [w.fragment_id]
    assert not run.exceptions and run.media == []
    assert s.cache_hits > hits


def test_a_step_with_a_bogus_widget_id_is_counted_not_raised(app_url):
    async def go():
        results = Results()
        st = Student(app_url, "en", results, Clock(), timeout=30)
        try:
            await st.open("Gaussian")
            real = st.s.widget("gaussian_mu")
            bogus = Widget("$$ID-0123456789abcdef-no_such_slider", "slider", "no_such_slider", "", real.proto)
            run = await st.step(bogus, 1.5, "Gaussian · bogus")
            return results, run
        finally:
            await st.close()

    results, run = run_async(go())
    # The server ignores a state for a widget it does not know and reruns the page; nothing raised here.
    assert run.status == ForwardMsg.FINISHED_SUCCESSFULLY and not run.exceptions
    assert results.n_errors() == 0 and len(results.steps["Gaussian · bogus"]) == 1


def test_a_walk_stays_on_the_sliders_grid_and_turns_round_at_the_ends():
    proto = Slider(id="$$ID-x-k", min=0.05, max=0.25, step=0.05, default=[0.1])
    w = Widget(proto.id, "slider", "k", "", proto)
    assert grid_of(w) == [0.05, 0.1, 0.15, 0.2, 0.25]
    walk = Walker(w, 0.1, random.Random(1), scattered=False)
    seen = [walk.next() for _ in range(200)]
    assert set(seen) <= set(grid_of(w)) and {0.05, 0.25} <= set(seen)
    assert all(abs(grid_of(w).index(a) - grid_of(w).index(b)) == 1 for a, b in itertools.pairwise(seen))


def test_a_student_whose_server_dies_reconnects_to_a_live_one_and_goes_on(app_url):
    """The replica test in small: SIGKILL the student's own server; the student counts one closed socket,
    then (pointed at the test's other server, as HAProxy sends it to a live process) opens a new session
    with the widget states it holds, and its next step answers."""
    import os

    from bench.protocol.http import Client
    from deploy.serve import free_port, start_replica, wait_healthy

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_replica(port, os.urandom(16).hex())

    async def go():
        results, clock = Results(), Clock()
        st = Student(url, "en", results, clock, timeout=60)
        try:
            await st.open("Gaussian")
            await st.step(st.s.widget("gaussian_mu"), 1.0, "Gaussian · gaussian_mu")
            old_session = st.s.session_id
            proc.kill()
            await asyncio.wait_for(st.s.closed.wait(), 30)
            st.s.base, st.s.http = app_url, Client(app_url)  # what the balancer does for a dead process
            await st.reconnect()
            after = await st.step(st.s.widget("gaussian_mu"), 1.1, "Gaussian · gaussian_mu")
            return results, old_session, st.s.session_id, after, st.s.values[st.s.widget("gaussian_mu").id]
        finally:
            await st.close()

    try:
        wait_healthy(url, proc=proc)
        results, old_session, new_session, after, mu = run_async(go())
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert dict(results.errors["elsewhere"]) == {"closed sockets": 1}
    assert len(results.reconnects) == 1 and new_session and new_session != old_session
    assert after.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY and not after.exceptions
    assert len(results.steps["Gaussian · gaussian_mu"]) == 2 and mu.double_array_value.data[:] == [1.1]
