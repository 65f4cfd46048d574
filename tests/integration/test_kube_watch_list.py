"""WatchList streaming lists against the fake API server over real HTTP: where the server
serves them, each resource is listed and watched in one stream (sendInitialEvents=true, its
end marked by the initial-events-end bookmark); where it refuses them, the reflector says
why once and lists page by page (docs/list-watch.md#streaming-lists-watchlist)."""

from __future__ import annotations

import pytest

from dashboard.kube import reflector
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.reflector import SYNCED, ClusterWatch
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers.kube_support import (
    FAST,
    TOKEN,
    Mirror,
    fill,
    node,
    pod,
    store_state,
    wait_mirrors,
)
from tests.helpers.wait import wait_until


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s)
    for i in range(1203):  # more than two 500-object pages, were it paginated
        s.put("pods", pod("bulk", f"bulk-{i:04d}"))
    return s


def _serve(store: ObjectStore, watch_list: bool) -> FakeApiServer:
    return FakeApiServer(
        store, port=0, token=TOKEN, bookmark_interval=0.2, watch_list=watch_list
    ).start()


@pytest.fixture
def watching(store, tmp_path):
    """start(watch_list=...) -> (server, ClusterWatch, Mirror); stopped afterwards."""
    started = []

    def start(server_watch_list: bool = True, **options):
        server = _serve(store, server_watch_list)
        client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc"))
        mirror = Mirror()
        w = ClusterWatch(client, mirror, **{**FAST, **options})
        started.append((server, w))
        return server, w, mirror

    yield start
    for server, w in started:
        w.stop()
        server.stop()
        assert server.non_get_requests == []


def pod_requests(server: FakeApiServer) -> list[str]:
    return [p for _, p in server.requests if p.startswith("/api/v1/pods?")]


def test_each_resource_is_listed_and_watched_in_one_stream(store, watching):
    server, w, mirror = watching()
    assert w.wait_synced(10)
    assert mirror.state() == store_state(store)
    [stream] = pod_requests(server)  # no page was asked for: the stream carried the list
    for param in (
        "watch=true",
        "sendInitialEvents=true",
        "resourceVersionMatch=NotOlderThan",
        "allowWatchBookmarks=true",
    ):
        assert param in stream
    assert "resourceVersion=" not in stream  # a consistent read, like a first page
    for r in w.reflectors.values():
        assert (r.stats.lists, r.stats.streamed_lists, r.stats.list_mode) == (1, 1, "watch-list")
        assert r.stats.watch_list_refused == ""

    # Changes arrive on the same stream, after its initial events.
    store.put("pods", pod("later", "p-1"))
    store.delete("pods", "bulk", "bulk-0000")
    store.put("nodes", node("joined"))
    wait_mirrors(mirror, store)
    assert pod_requests(server) == [stream]
    assert mirror.replaces == dict.fromkeys(mirror.replaces, 1)
    assert w.reflectors["pods"].stats.events == 2


def test_a_410_mid_stream_relists_with_a_new_stream(store, watching):
    server, w, mirror = watching()
    assert w.wait_synced(10)
    store.delete("pods", "bulk", "bulk-0001")
    store.compact()  # history gone: every watch gets ERROR 410 and must relist
    store.put("pods", pod("late", "after-compact"))
    wait_until(lambda: all(n >= 2 for n in mirror.replaces.values()), 5, "a relist each")
    wait_mirrors(mirror, store)
    streams = [p for p in pod_requests(server) if "sendInitialEvents=true" in p]
    assert len(streams) >= 2 and not [p for p in pod_requests(server) if "limit=500" in p]
    assert w.reflectors["pods"].stats.streamed_lists >= 2


def test_a_server_without_watch_list_is_listed_page_by_page_and_asked_once(store, watching):
    server, w, mirror = watching(server_watch_list=False)
    assert w.wait_synced(10)
    assert mirror.state() == store_state(store)
    requests = pod_requests(server)
    assert "sendInitialEvents=true" in requests[0]  # asked, refused with 422...
    pages = [p for p in requests if "watch=" not in p]
    assert len(pages) == 3 and all("limit=500" in p for p in pages)  # ...then paginated
    stats = w.reflectors["pods"].stats
    assert stats.list_mode == "paginated" and stats.streamed_lists == 0
    assert "WatchList feature gate" in stats.watch_list_refused
    # The refusal is not a failure: the cluster went straight to synced.
    assert w.status.state == SYNCED and not mirror.problems()

    # A relist (history compacted) goes straight to pages: the refusal is remembered.
    store.compact()
    store.put("pods", pod("late", "after-compact"))
    wait_until(lambda: mirror.replaces["pods"] >= 2, 5, "a relist")
    wait_mirrors(mirror, store)
    assert sum("sendInitialEvents" in p for p in pod_requests(server)) == 1


def test_watch_list_can_be_turned_off(store, watching):
    server, w, mirror = watching(watch_list=False)
    assert w.wait_synced(10)
    assert mirror.state() == store_state(store)
    assert not [p for _, p in server.requests if "sendInitialEvents" in p]
    assert all(r.stats.list_mode == "paginated" for r in w.reflectors.values())


def test_a_server_that_starts_serving_watch_list_is_streamed_from_again(
    store, watching, monkeypatch
):
    monkeypatch.setattr(reflector, "WATCH_LIST_RETRY_SECONDS", 0.0)  # ask on every relist
    server, w, mirror = watching(server_watch_list=False)
    assert w.wait_synced(10)
    assert w.reflectors["pods"].stats.watch_list_refused
    server.watch_list = True  # the cluster was upgraded, or its gate turned on
    store.compact()
    store.put("pods", pod("late", "after-upgrade"))
    wait_until(lambda: w.reflectors["pods"].stats.streamed_lists >= 1, 5, "a streamed relist")
    wait_mirrors(mirror, store)
    stats = w.reflectors["pods"].stats
    assert stats.list_mode == "watch-list" and stats.watch_list_refused == ""
