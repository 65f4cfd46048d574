"""The fleet matrix of the overview: one row per DaemonSet (namespace/name), one column per
cluster, each cell that DaemonSet's coverage and worst state in that cluster (absent where
it is not deployed); and a search across clusters for node and DaemonSet names.

Plain data built from each cluster's matrix under its collector's lock (`fleet_column`),
then put together without any lock (`fleet_rows`, `search`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboard.coverage.grouping import natural_key
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.states import State
from dashboard.coverage.summary import daemonset_summary


@dataclass(frozen=True)
class FleetCell:
    coverage: float | None
    targeted: int
    healthy: int
    worst: State | None  # the most severe state present among targeted cells
    worst_count: int

    @property
    def severity(self) -> int:
        return self.worst.severity if self.worst is not None else 0


@dataclass
class FleetColumn:
    slug: str
    name: str
    no_data: bool
    cells: dict[str, FleetCell] = field(default_factory=dict)  # DaemonSet key -> cell
    nodes: list[str] = field(default_factory=list)


_NOT_WORST = (State.NOT_TARGETED, State.HEALTHY)


def fleet_column(slug: str, name: str, matrix: Matrix, no_data: bool) -> FleetColumn:
    """One cluster's column (called under its collector's lock)."""
    column = FleetColumn(slug, name, no_data, nodes=list(matrix.nodes))
    for key in matrix.daemonsets:
        c = daemonset_summary(matrix, key).counts
        present = [State(v) for v, n in c.states.items() if n and State(v) not in _NOT_WORST]
        worst = max(present, key=lambda s: s.severity, default=None)
        column.cells[key] = FleetCell(
            c.coverage,
            c.targeted,
            c.healthy,
            worst,
            c.states.get(worst.value, 0) if worst is not None else 0,
        )
    return column


@dataclass
class FleetRow:
    key: str
    namespace: str
    name: str
    cells: list[FleetCell | None]  # one per column, None: not deployed there

    @property
    def worst(self) -> int:
        return max((c.severity for c in self.cells if c is not None), default=0)

    @property
    def lowest(self) -> float:
        covs = [c.coverage for c in self.cells if c is not None and c.coverage is not None]
        return min(covs, default=100.0)


def fleet_rows(columns: list[FleetColumn], sort: str = "worst") -> list[FleetRow]:
    keys = sorted({k for col in columns for k in col.cells})
    rows = []
    for k in keys:
        namespace, _, name = k.partition("/")
        rows.append(FleetRow(k, namespace, name, [col.cells.get(k) for col in columns]))
    if sort == "worst":  # worst state first, then lowest coverage, then by name
        rows.sort(key=lambda r: (-r.worst, r.lowest, r.key))
    return rows


def search(columns: list[FleetColumn], query: str, limit: int = 50) -> dict[str, Any]:
    """Node and DaemonSet names containing `query` (case-insensitive), in every cluster."""
    q = query.strip().lower()
    if not q:
        return {"query": "", "nodes": [], "daemonsets": [], "more": 0}
    nodes = sorted(
        ((col, n) for col in columns for n in col.nodes if q in n.lower()),
        key=lambda cn: (natural_key(cn[1]), cn[0].name),
    )
    daemonsets = sorted(
        ((col, k) for col in columns for k in col.cells if q in k.lower()),
        key=lambda ck: (ck[1], ck[0].name),
    )
    more = max(0, len(nodes) - limit) + max(0, len(daemonsets) - limit)
    return {
        "query": query.strip(),
        "nodes": [{"cluster": c, "name": n} for c, n in nodes[:limit]],
        "daemonsets": [
            {"cluster": c, "key": k, "namespace": k.split("/", 1)[0], "name": k.split("/", 1)[1]}
            for c, k in daemonsets[:limit]
        ],
        "more": more,
    }
