"""Summaries per DaemonSet, per node and per cluster, from the matrix's running counters.

The matrix keeps counters up to date as cells change, so a summary costs O(DaemonSets)
rather than a walk over 150,000 cells. Where the engine's own count disagrees with what
the DaemonSet controller wrote in `.status`, the summary says so: either the controller
is behind (observedGeneration lags) or one of us is wrong, and both are worth knowing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from msgspec import Struct, field

from .matrix import Matrix, cell_tally
from .records import DaemonSet
from .states import State

FAILING = (
    State.CRASH_LOOPING,
    State.FAILED,
    State.UNSCHEDULABLE,
    State.INIT_ERROR,
    State.IMAGE_ERROR,
    State.CONFIG_ERROR,
)
PROGRESSING = (State.STARTING, State.NOT_READY, State.NOT_AVAILABLE, State.TERMINATING, State.SURGE)


class Counts(Struct, frozen=True):
    targeted: int
    healthy: int  # running and ready, outdated or not
    outdated: int
    missing: int
    failing: int
    crash_looping: int
    progressing: int
    misscheduled: int
    states: dict[str, int]

    @property
    def coverage(self) -> float | None:
        """Percent of targeted nodes with a healthy daemon pod; None when nothing is targeted."""
        return None if self.targeted == 0 else round(100.0 * self.healthy / self.targeted, 1)

    @property
    def problems(self) -> int:
        return self.missing + self.failing + self.progressing + self.misscheduled


def counts_from(c: Counter[str]) -> Counts:
    def n(*states: State) -> int:
        return sum(c[s.value] for s in states)

    return Counts(
        targeted=c["targeted"],
        healthy=n(State.HEALTHY, State.OUTDATED),
        outdated=n(State.OUTDATED),
        missing=n(State.MISSING),
        failing=n(*FAILING),
        crash_looping=n(State.CRASH_LOOPING),
        progressing=n(*PROGRESSING),
        misscheduled=n(State.MISSCHEDULED),
        states={s.value: c[s.value] for s in State if c[s.value]},
    )


class StatusCheck(Struct, frozen=True):
    """How the engine's view compares with the DaemonSet controller's own `.status`."""

    lagging: str  # non-empty when observedGeneration < generation
    mismatches: list[str] = field(default_factory=list)


def status_check(ds: DaemonSet, c: Counter[str]) -> StatusCheck:
    lag = ""
    if ds.status.observedGeneration < ds.generation:
        lag = (
            f"controller has not observed generation {ds.generation} "
            f"(observedGeneration {ds.status.observedGeneration}): status counts are for an older spec"
        )
    pairs = (
        ("desiredNumberScheduled", ds.status.desiredNumberScheduled, "targeted"),
        ("currentNumberScheduled", ds.status.currentNumberScheduled, "current"),
        ("numberMisscheduled", ds.status.numberMisscheduled, "misscheduled"),
        ("numberReady", ds.status.numberReady, "ready"),
        ("updatedNumberScheduled", ds.status.updatedNumberScheduled, "updated"),
    )
    mismatches = [
        f"{name} {theirs} ≠ {c[tag]} seen" for name, theirs, tag in pairs if theirs != c[tag]
    ]
    return StatusCheck(lag, mismatches)


class DaemonSetSummary(Struct, frozen=True):
    key: str
    namespace: str
    name: str
    counts: Counts
    status: StatusCheck
    strategy: str
    desired: int
    current: int
    ready: int
    updated: int
    available: int

    @property
    def rollout_progress(self) -> float | None:
        """Share of desired pods on the current revision and available, as kubectl judges it."""
        if self.desired == 0:
            return None
        return round(100.0 * min(self.updated, self.available) / self.desired, 1)


def daemonset_summary(matrix: Matrix, key: str) -> DaemonSetSummary:
    ds = matrix.daemonsets[key]
    c = matrix.ds_counts.get(key, Counter())
    st = ds.status
    return DaemonSetSummary(
        key=key,
        namespace=ds.namespace,
        name=ds.name,
        counts=counts_from(c),
        status=status_check(ds, c),
        strategy=ds.strategy,
        desired=st.desiredNumberScheduled,
        current=st.currentNumberScheduled,
        ready=st.numberReady,
        updated=st.updatedNumberScheduled,
        available=st.numberAvailable,
    )


def node_summary(matrix: Matrix, name: str) -> Counts:
    return counts_from(matrix.node_counts.get(name, Counter()))


class ClusterSummary(Struct, frozen=True):
    nodes: int
    daemonsets: int
    pods: int
    counts: Counts
    worst_daemonsets: list[str]  # keys, lowest coverage first, only those below 100 %
    nodes_not_ready: int


def cluster_summary(matrix: Matrix) -> ClusterSummary:
    total: Counter[str] = Counter()
    for c in matrix.ds_counts.values():
        total.update(c)
    per_ds = {key: counts_from(c) for key, c in matrix.ds_counts.items()}
    worst = sorted(
        (k for k, c in per_ds.items() if c.coverage is not None and c.coverage < 100),
        key=lambda k: (per_ds[k].coverage, k),
    )
    return ClusterSummary(
        nodes=len(matrix.nodes),
        daemonsets=len(matrix.daemonsets),
        pods=len(matrix.pods),
        counts=counts_from(total),
        worst_daemonsets=worst,
        nodes_not_ready=sum(1 for h in matrix.health.values() if h.ready != "True"),
    )


def view_summary(matrix: Matrix, nodes: Iterable[str], ds_keys: Iterable[str]) -> ClusterSummary:
    """The summary of a part of the matrix (a filtered grid: these nodes × these DaemonSets),
    counted cell by cell. `worst_daemonsets` stays empty: only the cluster-wide one ranks."""
    names = [n for n in nodes if n in matrix.nodes]
    keys = [k for k in ds_keys if k in matrix.daemonsets]
    total: Counter[str] = Counter()
    get = matrix.cells.get
    for node in names:
        for key in keys:
            cell = get((node, key))
            if cell is not None:
                total.update(cell_tally(cell))
    health = matrix.health
    return ClusterSummary(
        nodes=len(names),
        daemonsets=len(keys),
        pods=0,
        counts=counts_from(total),
        worst_daemonsets=[],
        nodes_not_ready=sum(1 for n in names if n in health and health[n].ready != "True"),
    )


def headline(summary: ClusterSummary) -> dict[str, Any]:
    """A cluster's headline numbers as plain data (they travel in payloads, across Redis):
    what the wall display and other compact views show."""
    c = summary.counts
    return {
        "coverage": c.coverage,
        "nodes": summary.nodes,
        "daemonsets": summary.daemonsets,
        "pods": summary.pods,
        "targeted": c.targeted,
        "healthy": c.healthy,
        "missing": c.missing,
        "failing": c.failing,
        "crash_looping": c.crash_looping,
        "progressing": c.progressing,
        "outdated": c.outdated,
        "misscheduled": c.misscheduled,
        "nodes_not_ready": summary.nodes_not_ready,
    }
