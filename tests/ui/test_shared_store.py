"""ui.shared_store: the least-recently-used store pages 6, 8 and 9 share between sessions."""

from __future__ import annotations

import threading

import pytest

from ui.shared_store import SharedStore


def test_get_computes_once_and_forgets_the_oldest():
    memo, calls = SharedStore(max_entries=2), []

    def compute(v):
        return lambda: calls.append(v) or v

    threads = [threading.Thread(target=memo.get, args=("a", compute(1))) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert calls == [1]  # four sessions asked at once, one computed
    memo.get("b", compute(2)), memo.get("c", compute(3))
    assert "a" not in memo and "b" in memo and "c" in memo

    def stopped():
        raise RuntimeError("the script was stopped")

    with pytest.raises(RuntimeError):
        memo.get("d", stopped)
    assert memo.get("d", compute(4)) == 4 and calls == [1, 2, 3, 4]  # a stopped computation is not kept


def test_peek_and_put_keep_the_most_recent():
    store = SharedStore(max_entries=2)
    assert store.peek("a") is None
    store.put("a", 1), store.put("b", 2)
    assert store.peek("a") == 1  # "a" is now the most recent, so "b" goes first
    store.put("c", 3)
    assert "b" not in store and store.peek("a") == 1 and store.peek("c") == 3
