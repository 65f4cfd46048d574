"""The wall's status look-ups are shared by the wall sockets of a process for a second:
on a scale-out worker each one is a Redis round trip, and every socket asks for each of
its clusters every few seconds."""

from __future__ import annotations

import time

import pytest

from dashboard.wall import consumers


@pytest.fixture
def looked_up(monkeypatch):
    calls: list[str] = []

    def cluster_status(slug: str) -> dict:
        calls.append(slug)
        return {"state": f"state-{len(calls)}"}

    monkeypatch.setattr(consumers, "cluster_status", cluster_status)
    return calls


def test_sockets_share_a_status_within_the_window(looked_up):
    cache = consumers._StatusCache(seconds=60)
    first = [cache.get("a") for _ in range(50)]
    assert looked_up == ["a"] and all(s == first[0] for s in first)
    cache.get("b")
    assert looked_up == ["a", "b"]  # per cluster


def test_a_status_older_than_the_window_is_looked_up_again(looked_up):
    cache = consumers._StatusCache(seconds=0.05)
    assert cache.get("a") == {"state": "state-1"}
    time.sleep(0.06)
    assert cache.get("a") == {"state": "state-2"}
