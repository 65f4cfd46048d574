"""Fault: the API server comes back with a restored store (an etcd backup put back), so its
resourceVersions are lower than the ones the collector holds.

The fake API server answers such a client as kube-apiserver v1.36 does (checked against the
real one, see docs/list-watch.md): a watch from the newer version is accepted and then says
nothing, and every read "not older than" it waits 3 s and answers 504 "Too large resource
version". The collector must notice, list afresh, say so in its status, and end with the
matrix a fresh client would build — and keep following the restored store afterwards.
The same scenario against the real control plane is tests/e2e/test_restore.py.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.errors import from_status
from dashboard.kube.reflector import SYNCED, ClusterWatch
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors
from tests.helpers.collectors import fresh_matrix, tick_until
from tests.helpers.kube_support import FAST, TOKEN, Mirror, fill, node, pod, wait_mirrors
from tests.helpers.wait import wait_until

pytestmark = pytest.mark.faults

# The real server waits 3 s before its 504; a tenth of that keeps the tests quick.
TOO_LARGE_WAIT = 0.3


def serve(store: ObjectStore, port: int = 0) -> FakeApiServer:
    return FakeApiServer(
        store, port=port, token=TOKEN, bookmark_interval=0.2, too_large_wait=TOO_LARGE_WAIT
    ).start()


# ---------------------------------------------------------------------------- the collector


def test_collector_relists_after_a_restore_and_follows_the_restored_store(tmp_path):
    sim = Simulator.from_scenario("demo", seed=5)
    server = serve(sim.store)
    kubeconfig = server.write_kubeconfig(tmp_path / "kc")
    collector = collectors.make(
        collectors.kubeconfig_cluster(kubeconfig, "restored", name="Restored")
    )
    try:
        collector.start_source()
        assert tick_until(collector, lambda: collector.settled), collector.status

        backup = sim.store.snapshot()  # etcdctl snapshot save
        sim.step(60)  # the cluster moves on: rollouts, pods come and go, nodes change
        after_backup = fresh_matrix(sim.store).cells
        assert tick_until(collector, lambda: collector.matrix.cells == after_backup)

        # The API server goes down, its etcd is restored from the backup, it comes back on
        # the same address: its resourceVersions are now lower than the collector's.
        newer = sim.store.resource_version
        server.stop()
        assert tick_until(collector, lambda: collector.status.state == "stale")
        sim.store.restore(backup)
        assert sim.store.resource_version < newer
        restored = fresh_matrix(sim.store).cells
        assert restored != after_backup  # otherwise the test would prove nothing
        server = serve(sim.store, port=server.port)

        assert tick_until(
            collector, lambda: collector.settled and collector.matrix.cells == restored
        ), collector.status
        status = collector.status
        assert status.state == "synced"
        assert "resourceVersion went back" in status.message
        assert "restored" in status.message
        # Each resource whose version was ahead relisted once; one that had seen nothing
        # newer than the backup (no bookmark since) rightly went on watching.
        resets = {r: s.history_resets for r, s in collector.watch_stats().items()}
        assert resets["pods"] == 1 and set(resets.values()) <= {0, 1}, resets

        # Life goes on in the restored cluster, with versions the collector saw before
        # the restore: every change must still arrive.
        gone = next(iter(sim.store.list("nodes")[0]))[0]["metadata"]["name"]
        sim.store.delete("nodes", "", gone)
        sim.store.put("nodes", node("joined-after-restore"))
        expected = fresh_matrix(sim.store).cells
        assert tick_until(collector, lambda: collector.matrix.cells == expected)
        assert server.non_get_requests == []
    finally:
        collector.stop_source()
        server.stop()


# ---------------------------------------------------------------------------- the reflector


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s)
    return s


def test_reflectors_relist_from_scratch_and_the_status_says_why(store, tmp_path):
    server = serve(store)
    mirror = Mirror()
    w = ClusterWatch(
        client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc")), mirror, **FAST
    )
    try:
        assert w.wait_synced(5)
        backup = store.snapshot()
        for i in range(30):
            store.put("pods", pod("after-backup", f"p-{i}"))
        store.delete("nodes", "", "node-0")
        store.put("nodes", node("after-backup"))
        wait_mirrors(mirror, store)

        server.stop()
        held = w.reflectors["pods"].resource_version  # bookmarks have stopped moving it
        store.restore(backup)
        server = serve(store, port=server.port)

        wait_until(lambda: mirror.replaces["pods"] == 2, 10, "pods listed afresh")
        wait_mirrors(mirror, store)
        assert "node-0" in mirror.objects["nodes"]
        assert not any(k.startswith("after-backup/") for k in mirror.objects["pods"])
        # The request that found out: a one-object list "not older than" the version held.
        probes = [p for _, p in server.requests if "/pods?" in p and "limit=1" in p]
        assert probes and f"resourceVersion={held}" in probes[0] and "NotOlderThan" in probes[0]
        # ...then a list without a resourceVersion (a consistent read), never the old one:
        # here a WatchList stream (sendInitialEvents=true), the fake server's default.
        lists = [
            p
            for _, p in server.requests
            if "/pods?" in p and "limit=1" not in p and ("watch=" not in p or "sendInitial" in p)
        ]
        assert "sendInitialEvents=true" in lists[-1] and "resourceVersion=" not in lists[-1]

        wait_until(lambda: w.status.state == SYNCED and w.status.reset is not None, 5)
        reset = w.reflectors["pods"].status.reset
        assert reset.before == held and int(reset.after) < int(held)
        assert f"pods {held} → {reset.after}" in reset.message and "went back" in reset.message
        # The cluster's status carries the latest of the resources' resets.
        assert w.status.reset.at >= reset.at
        # A relist after the restore is normal operation, not a failure.
        assert not [p for p in mirror.problems() if p.kind == "too_large"]

        # The restored store's new writes reuse versions the reflector saw before: they
        # must all arrive.
        store.put("pods", pod("after-restore", "p"))
        store.delete("pods", "ns-0", "pod-0")
        wait_mirrors(mirror, store)
        # A later failure replaces the notice: the status tells the newest story.
        server.stop()
        wait_until(lambda: w.status.state == "stale", 5)
        assert w.status.reset is None and w.status.problem.kind == "refused"
    finally:
        w.stop()
        server.stop()


def test_a_healthy_reconnect_checks_the_version_and_does_not_relist(store, tmp_path):
    server = serve(store)
    mirror = Mirror()
    w = ClusterWatch(
        client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc")), mirror, **FAST
    )
    try:
        assert w.wait_synced(5)

        def pod_watches() -> int:
            return sum("/pods?" in p and "watch=true" in p for _, p in server.requests)

        for round_ in range(3):
            before = pod_watches()
            store.put("pods", pod("cut", f"r{round_}"))
            server.faults.cut_watches()
            wait_until(lambda b=before: pod_watches() > b, 10, "the pods watch again")
        wait_mirrors(mirror, store)
        assert mirror.replaces == dict.fromkeys(mirror.replaces, 1)
        assert w.status.reset is None
        # Each new watch from a held version was preceded by the one-object check.
        checks = [p for _, p in server.requests if "/pods?" in p and "limit=1" in p]
        watches = [p for _, p in server.requests if "/pods?" in p and "watch=true" in p]
        assert len(checks) >= 3 and len(checks) == len(watches) - 1
        assert all(r.stats.history_resets == 0 for r in w.reflectors.values())
    finally:
        w.stop()
        server.stop()


def test_too_large_on_a_watch_relists_instead_of_retrying_the_same_version(store, tmp_path):
    # A watch-list (sendInitialEvents) from a version the store lacks gets an ERROR event
    # with the 504 Status; a plain watch request may get the 504 itself from an older or
    # another server. Either way: relist without a version, never the same one again.
    server = serve(store)
    mirror = Mirror()
    w = ClusterWatch(
        client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc")),
        mirror,
        resources=["nodes"],
        **FAST,
    )
    try:
        assert w.wait_synced(5)
        server.faults.fail_next(504, resource="nodes", watch=True, too_large=True)
        server.faults.cut_watches()
        store.put("nodes", node("after-504"))
        wait_until(lambda: mirror.replaces["nodes"] == 2, 5, "a relist after the 504")
        wait_until(lambda: "after-504" in mirror.objects["nodes"], 5)
        assert not [p for p in mirror.problems() if p.kind == "server_error"]
    finally:
        w.stop()
        server.stop()


# ---------------------------------------------------------------------------- the fake server


def _get(server: FakeApiServer, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _watch_lines(server: FakeApiServer, path: str) -> list[dict]:
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return [json.loads(line) for line in resp if line.strip()]


def test_fake_server_answers_a_too_new_version_like_kube_apiserver(store):
    server = serve(store)
    try:
        ahead = store.resource_version + 50
        # Reads "not older than" a version it lacks: 504 after waiting for it, with the
        # Status kube-apiserver v1.36 sends (the cause is what clients test).
        for query in (
            f"resourceVersion={ahead}",
            f"resourceVersion={ahead}&limit=1",
            f"resourceVersion={ahead}&resourceVersionMatch=NotOlderThan&limit=1",
        ):
            t0 = time.monotonic()
            code, body = _get(server, f"/api/v1/nodes?{query}")
            assert code == 504 and time.monotonic() - t0 >= TOO_LARGE_WAIT
            status = json.loads(body)
            assert status["reason"] == "Timeout"
            assert status["message"] == (
                f"Timeout: Too large resource version: {ahead}, current: {store.resource_version}"
            )
            assert status["details"]["causes"] == [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ]
        # A plain watch from it is accepted and silent: no events up to it, no bookmarks
        # (the real watch cache sends neither), until the store gets past it.
        lines = _watch_lines(
            server,
            f"/api/v1/nodes?watch=true&resourceVersion={ahead}&allowWatchBookmarks=true"
            "&timeoutSeconds=1",
        )
        assert lines == []
        # A watch-list from it: accepted, then one ERROR event carrying the same 504.
        lines = _watch_lines(
            server,
            f"/api/v1/nodes?watch=true&resourceVersion={ahead}&allowWatchBookmarks=true"
            "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=5",
        )
        assert [ev["type"] for ev in lines] == ["ERROR"]
        assert lines[0]["object"]["code"] == 504
        assert lines[0]["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    finally:
        server.stop()


def test_fake_server_restore_ends_open_watches_and_voids_continue_tokens(store):
    for i in range(12):
        store.put("pods", pod("many", f"p-{i:02d}"))
    server = serve(store)
    try:
        backup = store.snapshot()
        store.put("pods", pod("many", "after-backup"))
        rv = store.resource_version
        code, body = _get(server, "/api/v1/pods?limit=5")
        token = json.loads(body)["metadata"]["continue"]  # a list of the newer store

        got: list[list[dict]] = []
        reader = threading.Thread(
            target=lambda: got.append(
                _watch_lines(server, f"/api/v1/pods?watch=true&resourceVersion={rv}")
            )
        )
        reader.start()
        wait_until(lambda: server.open_watches, 5, "the watch is open")
        store.restore(backup)
        reader.join(5)
        assert not reader.is_alive() and got == [[]]  # ended cleanly, nothing sent
        assert store.get("pods", "many", "after-backup") is None
        assert store.resource_version < rv
        # Pages of a list of the newer store cannot be continued into the restored one.
        code, body = _get(server, f"/api/v1/pods?limit=5&continue={token}")
        assert code == 410
    finally:
        server.stop()


# ---------------------------------------------------------------------------- in words


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        # v1.18.6 and later (v1.36 checked): the cause says it.
        (
            {
                "code": 504,
                "reason": "Timeout",
                "message": "Timeout: Too large resource version: 274, current: 254",
                "details": {
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ],
                    "retryAfterSeconds": 1,
                },
            },
            "too_large",
        ),
        # v1.17.0–v1.18.5: a 504 whose cause has only the message.
        (
            {
                "code": 504,
                "message": "Timeout: Too large resource version: 9, current: 3",
                "details": {"causes": [{"message": "Too large resource version"}]},
            },
            "too_large",
        ),
        # Before v1.17: the Status message alone.
        ({"code": 504, "message": "Too large resource version: 9, current: 3"}, "too_large"),
        # Any other 504 is a server error, retried as it is.
        ({"code": 504, "message": "Timeout: request did not complete"}, "server_error"),
        ({"code": 504, "details": {"causes": "not a list"}}, "server_error"),
    ],
)
def test_too_large_resource_version_in_every_server_generation(status, kind):
    problem = from_status(status)
    assert problem.kind == kind
    if kind == "too_large":
        assert "went back in time" in problem.message and "listing afresh" in problem.message
