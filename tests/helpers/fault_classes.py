"""The fault classes of the reliability suite, each a small function that does one thing to a
running cluster (its store and its fake API server) after a collector has synced.

Shared by tests/faults/test_fault_classes.py (does the collector converge to the truth?)
and bench/fault_bench.py (how long it takes and how much memory it needs). The harness,
`Run`, is the same for both: a real ClusterCollector against a real FakeApiServer, the
fault, then a mutation of the cluster, then convergence to `collectors.fresh_matrix`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dashboard.collect.collector import ClusterCollector
from dashboard.collect.sources import KubeSource
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors, k8s

TOKEN = "fault-token"
# The real server waits 3 s before its 504 "Too large resource version"; a tenth is enough.
TOO_LARGE_WAIT = 0.3
DEEP_DEPTH = 3000  # msgspec gives up near 1,000; Go's encoding/json accepts 10,000
DEEP = b"[" * DEEP_DEPTH + b"]" * DEEP_DEPTH


def serve(
    store: ObjectStore, port: int = 0, arm: Callable[[FakeApiServer], None] | None = None
) -> FakeApiServer:
    """A fake API server for `store`; `arm` flips its fault switches before it answers."""
    server = FakeApiServer(
        store, port=port, token=TOKEN, bookmark_interval=0.2, too_large_wait=TOO_LARGE_WAIT
    )
    if arm is not None:
        arm(server)
    return server.start()


def seed(store: ObjectStore, nodes: int = 4) -> None:
    """A small realistic cluster: nodes, one DaemonSet with a Ready pod on each node."""
    ds = k8s.daemonset("agent", min_ready_seconds=30)
    store.put("daemonsets", ds)
    store.put("controllerrevisions", k8s.controller_revision(ds, 1, "rev1hash"))
    for i in range(nodes):
        store.put("nodes", k8s.node(f"node-{i}"))
        store.put("pods", k8s.daemon_pod(ds, f"node-{i}", ready_since=k8s.ts(-3600)))


def mutate(store: ObjectStore) -> None:
    """What the cluster does after the fault: a node joins and gets its pod, an existing
    pod turns NotReady, and a node leaves."""
    ds = store.get("daemonsets", "kube-system", "agent")
    assert ds is not None
    store.put("nodes", k8s.node("joined-after-fault"))
    store.put("pods", k8s.daemon_pod(dict(ds), "joined-after-fault"))
    store.put("pods", k8s.daemon_pod(dict(ds), "node-1", ready=False))
    store.delete("nodes", "", "node-3")


@dataclass
class Run:
    """One collector following one fake API server, for one fault."""

    store: ObjectStore
    server: FakeApiServer
    collector: ClusterCollector
    fault_started: float = 0.0  # time.monotonic() when the fault was injected

    @classmethod
    def start(cls, workdir: Path | None = None) -> Run:
        store = ObjectStore()
        seed(store)
        server = serve(store)
        workdir = workdir or Path(tempfile.mkdtemp(prefix="faults-"))
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        config = collectors.kubeconfig_cluster(kubeconfig, "faults", name="Faults")
        collector = collectors.make(config)
        # Retry backoff of 0.02 s doubling to 0.3 s (production: 0.5 s to 30 s), so a burst
        # of failures costs milliseconds; the logic under test is unchanged.
        source = KubeSource(config, backoff_base=0.02, backoff_cap=0.3)
        collector.use_source(source)
        source.start()
        return cls(store, server, collector)

    def synced_and_true(self) -> bool:
        return (
            self.collector.settled
            and self.collector.matrix.cells == collectors.fresh_matrix(self.store).cells
        )

    def converge(self, seconds: float = 20.0) -> bool:
        return collectors.tick_until(self.collector, self.synced_and_true, seconds)

    def wait_not_synced(self, seconds: float = 10.0) -> None:
        assert collectors.tick_until(
            self.collector, lambda: self.collector.status.state != "synced", seconds
        ), "the fault was never noticed"

    def stop(self) -> None:
        self.collector.stop_source()
        self.server.stop()


# ---------------------------------------------------------------------------- the faults


def stream_cut_mid_event(run: Run) -> None:
    run.server.faults.break_next_event("cut")
    run.store.put("nodes", k8s.node("during-the-cut"))


def truncated_line(run: Run) -> None:
    run.server.faults.break_next_event("truncate")
    run.store.put("nodes", k8s.node("truncated"))


def gone_on_watch(run: Run) -> None:
    # While the collector is cut off, the cluster moves on and its history is compacted:
    # no watch can resume from a version the collector holds (ERROR 410 in the stream).
    # And the first pods watch request itself answers 410, the other way servers say it.
    port = run.server.port
    run.server.stop()
    run.wait_not_synced()
    for i in range(3):
        run.store.put("nodes", k8s.node(f"while-cut-off-{i}"))
    run.store.compact()
    run.server = serve(
        run.store, port=port, arm=lambda s: s.faults.fail_next(410, resource="pods", watch=True)
    )


def gone_on_list(run: Run) -> None:
    # The watches are cut; the resume check that follows (a one-object list) is refused
    # with 410 Expired, and so is the relist it calls for — a WatchList stream, which
    # falls back to a paginated list.
    run.server.faults.fail_next(410, count=1, resource="pods", watch=False)
    run.server.faults.fail_next(410, count=1, resource="pods", watch=True)
    run.server.faults.cut_watches()


def error_burst(run: Run) -> None:
    run.server.faults.fail_next(500, count=8)
    run.server.faults.cut_watches()


def too_many_requests(run: Run) -> None:
    run.server.faults.fail_next(429, count=2, retry_after=1)
    run.server.faults.cut_watches()


def unauthorized_then_fixed(run: Run) -> None:
    run.server.faults.fail_next(401, count=3)
    run.server.faults.cut_watches()


def forbidden_then_fixed(run: Run) -> None:
    for verb in ("list", "watch"):
        run.server.faults.forbid(verb, "pods")
    run.server.faults.cut_watches()
    run.wait_not_synced()
    run.server.faults.clear()  # RBAC fixed


def server_restart(run: Run) -> None:
    run.store.put("nodes", k8s.node("while-up"))
    port = run.server.port
    run.server.stop()
    run.wait_not_synced()
    run.store.put("nodes", k8s.node("while-down"))  # same store: history continues
    run.server = serve(run.store, port=port)


def restore(run: Run) -> None:
    backup = run.store.snapshot()
    for i in range(5):
        run.store.put("nodes", k8s.node(f"after-backup-{i}"))
    assert run.converge(), run.collector.status
    port = run.server.port
    run.server.stop()
    run.wait_not_synced()
    run.store.restore(backup)  # the resourceVersion goes back
    run.server = serve(run.store, port=port)


def slow_server(run: Run) -> None:
    run.server.faults.delay(0.3)  # every request, watches included, answers late
    run.server.faults.cut_watches()


def huge_annotations(run: Run) -> None:
    node = k8s.node("huge-annotations")
    node["metadata"]["annotations"] = {f"note-{i}": "x" * 5000 for i in range(1000)}  # 5 MB
    run.store.put("nodes", node)


def many_labels(run: Run) -> None:
    labels = {f"example.com/label-{i}": f"value-{i}" for i in range(50_000)}
    run.store.put("nodes", k8s.node("many-labels", labels=labels))


def malformed_objects(run: Run) -> None:
    ds = run.store.get("daemonsets", "kube-system", "agent")
    assert ds is not None
    broken = k8s.daemon_pod(dict(ds), "node-0", name="agent-broken")
    run.store.put("pods", broken, raw_fields={"spec": b'"not an object"'})
    node = k8s.node("bad-taints")
    del node["spec"]
    run.store.put("nodes", node, raw_fields={"spec": b'{"taints":"none"}'})
    # An existing pod turns malformed: its older copy must go, as a relist would drop it.
    run.store.put(
        "pods", k8s.daemon_pod(dict(ds), "node-2"), raw_fields={"status": b'{"phase":[1,2]}'}
    )


def deep_nesting(run: Run) -> None:
    ds = run.store.get("daemonsets", "kube-system", "agent")
    assert ds is not None
    revision = k8s.controller_revision(dict(ds), 2, "deephash")
    revision["metadata"]["name"] = "agent-deep"
    run.store.put("controllerrevisions", revision, raw_fields={"data": DEEP})


def poison_objects(run: Run) -> None:
    ds = run.store.get("daemonsets", "kube-system", "agent")
    assert ds is not None
    # A non-ASCII digit in a node name (sorts and parses like no ASCII name does).
    run.store.put("nodes", k8s.node("node-1²"))
    run.store.put("pods", k8s.daemon_pod(dict(ds), "node-1²", ready_since=k8s.ts(-3600)))
    # Ready since the last second of year 9999, under minReadySeconds > 0.
    run.store.put("pods", k8s.daemon_pod(dict(ds), "node-0", ready_since="9999-12-31T23:59:59Z"))
    # minReadySeconds of 10¹² (a datetime overflow for anyone adding it to a time).
    slow = k8s.daemonset("slow-agent", min_ready_seconds=10**12)
    run.store.put("daemonsets", slow)
    for n in ("node-0", "node-2"):
        run.store.put("pods", k8s.daemon_pod(slow, n, ready_since=k8s.ts(-60)))


FAULTS: dict[str, Callable[[Run], None]] = {
    "stream cut mid-event": stream_cut_mid_event,
    "truncated watch line": truncated_line,
    "410 on watch": gone_on_watch,
    "410 on list": gone_on_list,
    "500 burst": error_burst,
    "429 with Retry-After": too_many_requests,
    "401 then fixed": unauthorized_then_fixed,
    "403 then fixed": forbidden_then_fixed,
    "server restart (same history)": server_restart,
    "restore (history backwards)": restore,
    "slow server": slow_server,
    "5 MB of annotations": huge_annotations,
    "50k labels": many_labels,
    "malformed objects": malformed_objects,
    "deep nesting": deep_nesting,
    "poison objects": poison_objects,
}


def run_fault(name: str, workdir: Path | None = None) -> Run:
    """Sync, inject the fault, mutate the cluster; the caller checks convergence and stops
    the run (`run.converge()`, `run.stop()`)."""
    run = Run.start(workdir)
    try:
        assert run.converge(), f"first sync: {run.collector.status}"
        run.fault_started = time.monotonic()
        FAULTS[name](run)
        mutate(run.store)
    except BaseException:
        run.stop()
        raise
    return run
