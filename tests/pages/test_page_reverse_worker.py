"""Page 7 with the denoiser worker: in AppTest the player's steps come from the worker process; a worker
that dies gives a translated message (no traceback) and the next Play goes on with a new one; the place
in the line reads naturally in both languages; and where no process can be started the page runs the
network itself (the explicit fallback)."""

from __future__ import annotations

import pytest

import ui.worker.pool as pool_module
from tests.conftest import LANGS, assert_clean, run_page
from tests.ui.test_worker import ThreadWorker
from ui.i18n import Translator
from ui.reverse import run as rr
from ui.reverse.view import wait_text
from ui.worker import child
from ui.worker.pool import WorkerPool, denoiser_pool

PAGE = "pages/7_Reverse_process.py"
TABLES = {lang: Translator(lang) for lang in LANGS}


def small(at, n: int = 2, steps: int = 2):
    at.slider(key=rr.KEY_N).set_value(n)
    at.select_slider(key=rr.KEY_STEPS).set_value(steps)
    return at.run()


def test_play_in_the_page_runs_on_the_worker_process():
    at = small(run_page(PAGE, "en"), n=3, steps=5)
    pool = denoiser_pool()
    assert pool is not None and pool.worker_pids()
    served = pool.steps_served
    at.button(key="reverse_play").click().run()
    assert_clean(at)
    run = at.session_state[rr.STATE_KEY]
    assert run.status == "done" and run.final.shape == (3, 28, 28) and run.ticket is None
    assert pool.steps_served - served == 5  # every step came from the worker
    at.button(key="reverse_step").click().run()  # Step, too
    assert run.steps_done == 1 and pool.steps_served - served == 6


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("lang", LANGS)
def test_a_worker_that_dies_gives_a_message_and_play_goes_on(lang, monkeypatch):
    tr = TABLES[lang]
    builds = {"n": 0}
    network = child.network_build()

    def first_dies(spec, state):
        builds["n"] += 1
        if builds["n"] == 1:
            raise SystemExit("killed")  # the worker's loop ends without a word, as a killed process's would
        return network(spec, state)

    monkeypatch.setattr(pool_module, "_pool",
                        WorkerPool(1, None, make_worker=lambda p, slot: ThreadWorker(p, slot, first_dies)))
    at = small(run_page(PAGE, lang), n=2, steps=5)
    at.button(key="reverse_play").click().run()
    assert_clean(at)  # no exception, no error box: a warning in the student's language
    run = at.session_state[rr.STATE_KEY]
    assert run.status == "paused" and run.notice == "worker_died" and run.steps_done == 0
    assert [w.value for w in at.warning] == [tr("reverse.worker_died")]
    assert not at.button(key="reverse_play").disabled
    at.button(key="reverse_play").click().run()  # a new worker takes it from there
    assert_clean(at)
    assert run.status == "done" and run.steps_done == 5 and not at.warning and pool_module._pool.deaths == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_comparison_says_so_when_its_worker_dies(monkeypatch):
    def dies(spec, state):
        raise SystemExit("killed")

    monkeypatch.setattr(pool_module, "_pool", WorkerPool(1, None, make_worker=lambda p, slot: ThreadWorker(p, slot, dies)))
    at = run_page(PAGE, "vi")
    at.select_slider(key="reverse_compare_steps").set_value(2)
    at.button(key="reverse_compare_run").click().run()
    assert_clean(at)
    assert [w.value for w in at.warning] == [TABLES["vi"]("reverse.worker_failed")]
    assert "reverse_compare_history" not in at.session_state


def test_without_multiprocessing_the_page_runs_the_network_itself(monkeypatch):
    monkeypatch.setattr(pool_module, "_pool", None)
    monkeypatch.setattr(pool_module, "multiprocessing_available", lambda: False)
    at = small(run_page(PAGE, "vi"), n=2, steps=5)
    at.button(key="reverse_play").click().run()
    assert_clean(at)
    run = at.session_state[rr.STATE_KEY]
    assert run.status == "done" and run.steps_done == 5 and pool_module._pool is None  # no pool was made


def test_workers_setting_zero_means_no_worker(monkeypatch):
    monkeypatch.setattr(pool_module, "_pool", None)
    monkeypatch.setenv(pool_module.WORKERS_ENV, "0")
    assert denoiser_pool() is None
    monkeypatch.setenv(pool_module.WORKERS_ENV, "3")
    assert pool_module.configured_workers([]) == 3
    assert pool_module.configured_workers(["app.py", "--workers", "2"]) == 2  # streamlit run app.py -- --workers 2


class FakeTicket:
    def __init__(self, ahead: int, starting: bool = False) -> None:
        self.ahead, self.starting = ahead, starting


def test_the_place_in_the_line_in_both_languages():
    en, vi = TABLES["en"], TABLES["vi"]
    assert "2 runs ahead of you" in wait_text(en, FakeTicket(2))
    assert "còn 2 lượt chạy trước bạn" in wait_text(vi, FakeTicket(2))
    assert "1 run ahead of you" in wait_text(en, FakeTicket(1))
    assert "còn 1 lượt chạy trước bạn" in wait_text(vi, FakeTicket(1))
    assert wait_text(en, FakeTicket(0)) == en("reverse.queue_next")
    assert wait_text(vi, FakeTicket(3, starting=True)) == vi("reverse.queue_starting")
