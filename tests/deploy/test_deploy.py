"""deploy/serve.py: two app processes behind HAProxy on loopback, students in Chromium.

Each student stays on one process (the affinity cookie), both processes serve; when one process is
killed, its students see Streamlit's reconnect and land on the other, the others see nothing, and no
error reaches a page."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.conftest import LANGS, assert_no_exception, wait_idle
from deploy.serve import COOKIE, Cluster, haproxy_config
from ui.i18n import Translator

HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")
STUDENTS = 4
PAGE, SLIDER = "Gaussian", ".st-key-gaussian_mu input[type=range]"


def test_config_names_every_replica_with_its_cookie_and_health_check():
    config = haproxy_config("127.0.0.1", 8501, [("app1", 9001), ("app2", 9002)])
    assert f"cookie {COOKIE} insert indirect nocache" in config
    assert "server app1 127.0.0.1:9001 check cookie app1" in config
    assert "server app2 127.0.0.1:9002 check cookie app2" in config
    assert "option httpchk GET /_stcore/health" in config and "option redispatch" in config


def replica_of(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == COOKIE)


def websockets(pg) -> list:
    """Every websocket the page opens, in order (Streamlit opens a new one when it reconnects)."""
    opened = []
    pg.on("websocket", lambda ws: opened.append(ws))
    return opened


def step_t(pg) -> str:
    """One keyboard step of page 1's mean slider; the slider's value after it."""
    slider = pg.locator(SLIDER)
    slider.press("ArrowRight")
    pg.wait_for_timeout(300)
    wait_idle(pg)
    return slider.get_attribute("aria-valuetext")


def test_two_replicas_affinity_and_failover(browser):
    if not shutil.which(HAPROXY):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{HAPROXY} is missing; .ci/run installs Debian's haproxy")
        pytest.skip(f"needs Debian's haproxy at {HAPROXY} (apt-get install haproxy)")
    with Cluster(processes=2) as cluster:
        students = []
        for i in range(STUDENTS):
            lang = LANGS[i % 2]
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            pg = context.new_page()
            sockets = websockets(pg)
            pg.goto(f"{cluster.url}/{PAGE}?lang={lang}", wait_until="commit")  # the students arrive together
            students.append((context, pg, sockets, lang))
        for context, pg, sockets, lang in students:
            pg.locator(SLIDER).wait_for(timeout=60000)
            wait_idle(pg)
        replicas = [replica_of(c) for c, *_ in students]
        assert set(replicas) == {"app1", "app2"}, replicas  # both serve (least connections: they alternate)

        values = []
        for context, pg, sockets, lang in students:  # each student's moves stay on its replica
            values.append(step_t(pg))
            assert replica_of(context) in {"app1", "app2"}
            assert len(sockets) == 1 and not sockets[0].is_closed()
        assert [replica_of(c) for c, *_ in students] == replicas

        victim = cluster.names.index(replicas[0])
        cluster.replicas[victim].kill()
        cluster.replicas[victim].wait(timeout=10)
        moved = [(*s, v) for s, r, v in zip(students, replicas, values) if r == replicas[0]]
        stayed = [(s, r) for s, r in zip(students, replicas) if r != replicas[0]]
        assert moved and stayed

        for context, pg, sockets, lang, value in moved:
            # Streamlit's reconnect: a second websocket, through HAProxy to the live replica, and the page again.
            deadline = time.monotonic() + 30
            while len(sockets) < 2 or sockets[-1].is_closed():
                assert time.monotonic() < deadline, "the page did not reconnect"
                pg.wait_for_timeout(250)
            pg.locator(SLIDER).wait_for(timeout=30000)
            wait_idle(pg)
            assert replica_of(context) != replicas[0]
            assert pg.locator(SLIDER).get_attribute("aria-valuetext") == value  # the browser kept the slider
            assert pg.title().endswith(Translator(lang)("common.app_name"))
            step_t(pg)  # and the page works there
            assert_no_exception(pg)
        for (context, pg, sockets, lang), replica in stayed:  # the others saw nothing: the same websocket, open
            step_t(pg)
            assert len(sockets) == 1 and not sockets[0].is_closed()
            assert replica_of(context) == replica
            assert_no_exception(pg)
        for context, pg, *_ in students:
            assert pg.locator('[data-testid="stAlertContentError"]').count() == 0
            context.close()
