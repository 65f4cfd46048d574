"""Reflectors against the fake API server over real HTTP: the consumer's copy must equal the
store exactly after lists, churn, cut streams, 410s, error bursts and a server restart."""

from __future__ import annotations

import time

import pytest

from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.reflector import FAILED, STALE, SYNCED, ClusterWatch, Reflector
from dashboard.kube.resources import RESOURCES as SPECS
from dashboard.kube.resources import list_all
from dashboard.kube.snapshot import list_cluster
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers.kube_support import (
    FAST,
    TOKEN,
    Mirror,
    fill,
    node,
    pod,
    read_only_server,
    store_state,
    wait_mirrors,
)
from tests.helpers.wait import wait_until


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s)
    return s


@pytest.fixture
def server(store):
    with read_only_server(store, bookmark_interval=0.2) as srv:
        yield srv


@pytest.fixture
def client(server, tmp_path):
    return client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def watch_factory(client):
    watches = []

    def start(mirror, **options):
        w = ClusterWatch(client, mirror, **{**FAST, **options})
        watches.append(w)
        return w

    yield start
    for w in watches:
        w.stop()


def test_initial_paginated_list_reaches_store_state(store, server, watch_factory):
    for i in range(1203):  # > 2 pages of 500
        store.put("pods", pod("bulk", f"bulk-{i:04d}"))
    mirror = Mirror()
    w = watch_factory(mirror, watch_list=False)
    assert w.wait_synced(10)
    assert mirror.state() == store_state(store)
    pod_lists = [p for _, p in server.requests if "/pods?" in p and "watch=" not in p]
    assert len(pod_lists) == 3 and all("limit=500" in p for p in pod_lists)
    assert sum("continue=" in p for p in pod_lists) == 2
    # Non-DaemonSet pods arrive too (attribution is by ownerReference), marked ownerless.
    owners = {r.owner_uid for r in mirror.objects["pods"].values()}
    assert "" in owners and len(owners) == 2
    assert mirror.cluster_states()[-1] == SYNCED


def test_churn_while_watching(store, watch_factory):
    mirror = Mirror()
    assert watch_factory(mirror).wait_synced(5)
    for i in range(200):
        store.put("pods", pod("churn", f"c-{i}", "node-0"))
        if i % 3 == 0:
            store.delete("pods", "churn", f"c-{i // 2}")
        if i % 50 == 0:
            store.put("nodes", node(f"new-{i}", pool="b"))
    store.delete("nodes", "", "node-1")
    store.put("nodes", node("node-2", changed="yes"))
    wait_mirrors(mirror, store)
    assert mirror.replaces == dict.fromkeys(mirror.replaces, 1)  # no relist was needed


def test_cut_streams_resume_from_last_resource_version(store, server, watch_factory):
    mirror = Mirror()
    assert watch_factory(mirror).wait_synced(5)
    for round_ in range(5):
        for i in range(20):
            store.put("pods", pod("cut", f"r{round_}-{i}"))
        server.faults.cut_watches()
        store.delete("pods", "cut", f"r{round_}-0")  # lands while streams are down
    wait_mirrors(mirror, store)
    assert mirror.replaces == dict.fromkeys(mirror.replaces, 1)
    watches = [p for _, p in server.requests if "watch=true" in p and "/pods?" in p]
    # The first is the WatchList stream (a consistent read: no version); every later one
    # resumes from a version.
    assert "sendInitialEvents=true" in watches[0] and "resourceVersion=" not in watches[0]
    assert len(watches) > 1 and all("resourceVersion=" in p for p in watches[1:])


def test_410_mid_watch_relists_and_replaces(store, server, watch_factory):
    mirror = Mirror()
    assert watch_factory(mirror).wait_synced(5)
    store.delete("pods", "ns-0", "pod-0")
    store.compact()  # history gone: every watch gets ERROR 410 and must relist
    store.put("pods", pod("late", "after-compact"))
    wait_until(lambda: all(n >= 2 for n in mirror.replaces.values()), 5, "a relist per resource")
    wait_mirrors(mirror, store)
    assert "ns-0/pod-0" not in mirror.objects["pods"]


def test_http_410_on_watch_request_relists(store, server, watch_factory):
    mirror = Mirror()
    assert watch_factory(mirror, resources=["nodes"]).wait_synced(5)
    server.faults.fail_next(410, resource="nodes", watch=True)
    server.faults.cut_watches()
    store.put("nodes", node("after-410"))
    wait_until(lambda: mirror.replaces["nodes"] >= 2, 5, "a relist after HTTP 410")
    wait_until(lambda: "after-410" in mirror.objects["nodes"], 5)


def test_bursts_of_500_and_429_before_and_after_sync(store, server, client):
    delays: list[float] = []

    def sleep(seconds):  # records what the backoff asked for; waits only a little
        delays.append(seconds)
        time.sleep(min(seconds, 0.02))

    # The first list of nodes (a WatchList stream: a watch request) fails four times.
    server.faults.fail_next(500, count=4, resource="nodes", watch=True)
    mirror = Mirror()
    w = ClusterWatch(client, mirror, resources=["nodes", "pods"], **{**FAST, "sleep": sleep})
    try:
        assert w.wait_synced(5)
        kinds = {p.kind for p in mirror.problems()}
        assert "server_error" in kinds
        assert FAILED in mirror.cluster_states()  # never synced while the 500s lasted

        delays.clear()
        server.faults.fail_next(429, count=2, resource="pods", watch=True, retry_after=3)
        server.faults.cut_watches()
        store.put("pods", pod("after", "throttled"))
        wait_mirrors_subset(mirror, store, ["nodes", "pods"])
        assert delays.count(3.0) >= 2 or sum(d >= 3.0 for d in delays) >= 2, delays
        assert STALE in mirror.cluster_states()
        wait_until(lambda: w.status.state == SYNCED, 5)
        throttled = [p for p in mirror.problems() if p.kind == "throttled"]
        assert throttled and throttled[0].retry_after == 3.0
    finally:
        w.stop()


def wait_mirrors_subset(mirror, store, resources):
    def same():
        got, want = mirror.state(), store_state(store)
        return all(got[r] == want[r] for r in resources)

    wait_until(same, 5, "mirror == store")


def test_server_restart_goes_stale_then_recovers(store, server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc"))
    mirror = Mirror()
    w = ClusterWatch(client, mirror, **FAST)
    restarted = None
    try:
        assert w.wait_synced(5)
        port = server.port
        server.stop()
        wait_until(lambda: w.status.state == STALE, 5, "stale after the server went away")
        assert w.status.problem.kind == "refused"
        assert "refused" in w.status.problem.message
        store.put("pods", pod("while-down", "p"))
        store.delete("nodes", "", "node-0")
        restarted = FakeApiServer(store, port=port, token=TOKEN, bookmark_interval=0.2).start()
        wait_until(lambda: w.status.state == SYNCED, 5, "synced again after the restart")
        wait_mirrors(mirror, store)
    finally:
        w.stop()
        if restarted:
            restarted.stop()
            assert restarted.non_get_requests == []


def test_forbidden_names_the_missing_permission_then_recovers(server, watch_factory):
    # Paginated lists: a WatchList stream is authorized as "watch" and needs no "list".
    server.faults.forbid("list", "controllerrevisions")
    mirror = Mirror()
    w = watch_factory(mirror, watch_list=False)
    wait_until(lambda: w.status.state == FAILED, 5)
    problem = w.status.problem
    assert problem.kind == "forbidden"
    assert problem.message.startswith(
        "forbidden: cannot list controllerrevisions.apps at the cluster scope"
    )
    assert "grant get/list/watch" in problem.message
    # The others carry on (they may still be listing when the refusal arrives).
    wait_until(lambda: w.resource_status["nodes"].state == SYNCED, 5)
    server.faults.clear()  # somebody fixed the RBAC
    assert w.wait_synced(5)


def test_forbidden_watch_in_a_namespace(store, server, client):
    server.faults.forbid("watch", "pods")
    mirror = Mirror()
    r = Reflector(client, "pods", mirror, namespace="ns-1", **FAST).start()
    try:
        wait_until(lambda: r.status.problem is not None, 5)
        # Listed fine, but never watching, so never synced: failed, with the listed state.
        assert r.status.state == FAILED
        assert 'cannot watch pods in namespace "ns-1"' in r.status.problem.message
        assert set(mirror.objects["pods"]) == {
            k for k in store_state(store)["pods"] if k.startswith("ns-1/")
        }
    finally:
        r.stop()


def test_unauthorized(server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc", token="wrong"))
    w = ClusterWatch(client, Mirror(), **FAST)
    try:
        wait_until(lambda: w.status.state == FAILED, 5)
        assert w.status.problem.kind == "unauthorized"
        assert "credentials" in w.status.problem.message
        assert "expired" in w.status.problem.message
        assert "wrong" not in w.status.problem.message
    finally:
        w.stop()


def test_not_found_names_the_api_path(server, client):
    server.faults.fail_next(404, count=1000, resource="controllerrevisions")
    w = ClusterWatch(client, Mirror(), resources=["controllerrevisions"], **FAST)
    try:
        wait_until(lambda: w.status.state == FAILED, 5)
        assert w.status.problem.kind == "not_found"
        assert "/apis/apps/v1/controllerrevisions" in w.status.problem.message
    finally:
        w.stop()
        server.faults.clear()


def test_stop_returns_promptly_with_watches_blocked(server, client):
    # A long read timeout and no bookmarks: each watch thread is blocked in a socket read.
    server.bookmark_interval = 3600
    w = ClusterWatch(client, Mirror(), read_timeout=300.0)
    assert w.wait_synced(5)
    # Every reflector's watch request reached the server: its thread reads the stream.
    wait_until(
        lambda: sum("watch=true" in p for _, p in server.requests) >= len(w.reflectors),
        5,
        "a watch request per resource",
    )
    started = time.monotonic()
    w.stop()
    assert time.monotonic() - started < 1.0
    assert all(not r._thread.is_alive() for r in w.reflectors.values())
    assert w.status.state == "stopped"


def test_namespace_and_label_selector(store, server, client):
    store.put("pods", pod("ns-1", "labelled", app="x"))
    mirror = Mirror()
    r = Reflector(client, "pods", mirror, namespace="ns-1", label_selector="app=x", **FAST)
    r.start()
    try:
        wait_until(lambda: mirror.objects["pods"].keys() == {"ns-1/labelled"}, 5)
        store.put("pods", pod("ns-1", "second", app="x"))
        store.put("pods", pod("ns-2", "elsewhere", app="x"))
        wait_until(lambda: "ns-1/second" in mirror.objects["pods"], 5)
        assert "ns-2/elsewhere" not in mirror.objects["pods"]
    finally:
        r.stop()


def test_expired_continue_token_restarts_the_list(store, server, client):
    for i in range(30):
        store.put("pods", pod("page", f"p-{i:02d}"))
    pages = []

    def on_response(resp):
        pages.append(resp)
        if len(pages) == 1:  # between page 1 and 2: history is compacted, state moves on
            store.put("pods", pod("page", "zz-new"))
            store.compact()

    records, rv = list_all(client, SPECS["pods"], page_size=10, on_response=on_response)
    assert {r.key for r in records} == set(store_state(store)["pods"])
    assert rv == str(store.resource_version)
    first_pages = [p for _, p in server.requests if "/pods?" in p and "continue=" not in p]
    assert len(first_pages) == 2  # the list started over from scratch


def test_list_cluster_snapshot(store, server, client):
    snapshot = list_cluster(client)
    got = {
        r: {rec.key if hasattr(rec, "key") else rec.name for rec in recs}
        for r, recs in snapshot.items()
    }
    assert got == {r: set(keys) for r, keys in store_state(store).items()} | {
        "events": set(),
        "events-preempted": set(),
        "events-backoff": set(),
        "events-killing": set(),
        "events-nodenotready": set(),
        "priorityclasses": set(),
    }
    assert all("watch" not in p for _, p in server.requests)
