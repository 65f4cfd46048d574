"""Every fault class of the reliability suite, one case each: a real ClusterCollector
follows the fake API server, the fault hits, the cluster changes afterwards, and the
collector must end synced with exactly the matrix a fresh client builds from the server's
final objects. The faults themselves are in tests/helpers/fault_classes.py (shared with
bench/fault_bench.py, which times them); the deeper tests of each class live beside this
file (test_restore.py, test_deep_nesting.py, test_poison_objects.py) and in tests/unit."""

from __future__ import annotations

import tracemalloc

import pytest

from dashboard.coverage.states import State
from tests.helpers import fault_classes
from tests.helpers.fault_classes import FAULTS, run_fault

# The huge-object cases hold a 5 MB object (or 50k labels) a few times over while it is
# read, decoded and classified; a leak or a quadratic copy would show far above this.
HUGE_PEAK_LIMIT = 100 * 1024 * 1024  # measured: about 35 MiB
HUGE = {"5 MB of annotations", "50k labels"}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_collector_converges_after(fault, tmp_path):
    traced = fault in HUGE
    if traced:
        tracemalloc.start()
    run = run_fault(fault, tmp_path)
    try:
        assert run.converge(30), (run.collector.status, run.collector.watch_stats())
        assert run.collector.status.state == "synced"
        assert "joined-after-fault" in run.collector.matrix.nodes
        assert "node-3" not in run.collector.matrix.nodes
        if traced:
            _, peak = tracemalloc.get_traced_memory()
            assert peak < HUGE_PEAK_LIMIT, f"peak {peak / 2**20:.0f} MiB"
        _check(fault, run)
        assert run.server.faults.armed() == 0  # the fault did fire
        assert run.server.non_get_requests == []
    finally:
        if traced:
            tracemalloc.stop()
        run.stop()


def _check(fault: str, run: fault_classes.Run) -> None:
    """What each class must show beyond "equals a fresh client's matrix"."""
    matrix, collector = run.collector.matrix, run.collector
    skipped = {(s.kind, s.key) for s in collector.source.skipped()}  # type: ignore[union-attr]
    if fault == "malformed objects":
        assert skipped == {
            ("Pod", "kube-system/agent-broken"),
            ("Node", "bad-taints"),
            ("Pod", "kube-system/" + _pod_name(run, "node-2")),
        }, skipped
    elif fault == "deep nesting":
        assert ("ControllerRevision", "kube-system/agent-deep") in skipped
    elif fault == "poison objects":
        agent, slow = "kube-system/agent", "kube-system/slow-agent"
        assert matrix.cells[("node-1²", agent)].state is State.HEALTHY
        assert matrix.cells[("node-0", agent)].state is State.NOT_AVAILABLE
        assert matrix.cells[("node-2", slow)].state is State.NOT_AVAILABLE
    elif fault in HUGE:
        assert ("huge-annotations" if "MB" in fault else "many-labels") in matrix.nodes
    else:
        assert not skipped, skipped


def _pod_name(run: fault_classes.Run, node: str) -> str:
    for obj, _ in run.store.list("pods")[0]:
        if obj["spec"].get("nodeName") == node and obj["metadata"]["name"] != "agent-broken":
            return obj["metadata"]["name"]
    return ""
