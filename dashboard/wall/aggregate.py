"""What a wall display (an operations-room TV) shows of a cluster, as plain data.

A TV is read from across a room, so it shows less than the grid, and shows it large:

* small clusters (`CELLS_MAX_NODES` nodes or fewer): the whole DaemonSet × node matrix,
  one tiny cell per node, coloured and with the state's symbol;
* big clusters: node groups (the grid's default grouping: the first pool label, else the
  zone; or the cluster's configured label) × DaemonSets, each cell a proportion of
  healthy / outdated / progressing / bad / not-targeted nodes;
* both: the exceptions, one line per (DaemonSet, state) with the nodes it concerns,
  worst state first, capped;
* static pods (coverage/static.py) as rows of their own after the DaemonSets, marked
  static (the third element of their `daemonsets` entry), and their problems among the
  exceptions. They are derived from the mirror pods at each snapshot: a few manifests,
  not worth an incremental tally.

`WallAggregate` keeps that aggregation for one matrix *incrementally*: the collector calls
`pipeline.delta_payload` once per coalesced delta (under its lock), which calls
`payload_data`, which re-tallies only the rows the delta touched (O(touched nodes ×
DaemonSets)) and then takes a snapshot whose size is bounded (groups × DaemonSets +
capped exceptions), whatever the cluster's size. The snapshot is JSON-able: it travels in
the delta payload (across Redis in the scale-out setup) and the wall consumer forwards it
as is. Plain Python, no Django: tests compare it with a full recount.
"""

from __future__ import annotations

import heapq
import time
import weakref
from collections import Counter
from typing import Any

from dashboard.coverage.grouping import default_group_label, natural_key, proportion_bucket
from dashboard.coverage.matrix import Delta, Matrix
from dashboard.coverage.rollout import rollout_of, under_way
from dashboard.coverage.states import State
from dashboard.coverage.static import StaticColumn, columns_of

# Up to this many nodes (and `MAX_DAEMONSETS` DaemonSets) a cluster is drawn cell by cell.
CELLS_MAX_NODES = 64
# DaemonSet rows drawn at most; beyond, the worst ones are kept (and the rest counted).
MAX_DAEMONSETS = 30
# Node-group columns drawn at most; beyond, the worst ones are kept, the rest merged.
MAX_GROUPS = 12
# Exception lines sent at most (the page shows what fits, and "+N more").
MAX_EXCEPTIONS = 30
NODES_PER_EXCEPTION = 4
REASON_CHARS = 140
# Up to this many cells a recount costs under a millisecond: do it on every delta (exact,
# whatever the delta says). Above, deltas are folded in, and a full recount runs every
# REBUILD_SECONDS anyway: a node whose labels change without any change to its health or
# cells is not in the delta, so its move to another group shows within that time.
RECOUNT_CELLS = 4000
REBUILD_SECONDS = 300.0

STATES: tuple[State, ...] = tuple(State)
# One character per state on the wire ("-" = no cell); the page gets the same table.
CODES = "-" + "".join(chr(ord("a") + i) for i in range(len(STATES)))
_INDEX = {s: i + 1 for i, s in enumerate(STATES)}  # 0 = no cell
# Proportion buckets (dashboard/coverage/grouping.py), by state index (0 = no cell).
_BUCKET = [0] + [proportion_bucket(s) for s in STATES]
_PROBLEM = frozenset(_INDEX[s] for s in STATES if s.is_problem)
_SEVERITY = [0] + [s.severity for s in STATES]
# Colour class of each state on the wall (colour is never the only cue: symbols too).
KIND = {
    "healthy": "ok",
    "outdated": "old",
    "progressing": "prog",
    "failing": "bad",
    "missing": "bad",
    "misscheduled": "mis",
    "idle": "idle",
}


def state_table() -> list[dict[str, Any]]:
    """The code → state table the page decodes snapshots with."""
    return [
        {
            "code": CODES[_INDEX[s]],
            "value": s.value,
            "symbol": s.symbol,
            "label": s.label,
            "kind": KIND[s.bucket],
            "severity": s.severity,
        }  # fmt: skip
        for s in STATES
    ]


class WallAggregate:
    """Node groups × DaemonSets tallies, per-node state rows and the exception index of one
    matrix, kept in line with it delta by delta. The caller holds the collector's lock."""

    def __init__(self, matrix: Matrix, configured_label: str = ""):
        self.configured = configured_label
        self.rebuilds = 0
        self.rebuild(matrix)

    # ------------------------------------------------------------------ maintenance

    def rebuild(self, matrix: Matrix) -> None:
        self.label = self.configured or default_group_label(matrix.nodes.values())
        self.columns: list[str] = sorted(matrix.daemonsets)
        self.rows: dict[str, bytearray] = {}  # node -> state index per column (0 = none)
        self.group_of: dict[str, str] = {}
        self.tallies: dict[str, list[list[int]]] = {}  # group -> per column 5 buckets
        self.group_size: Counter[str] = Counter()
        # (DaemonSet key, state index) -> nodes in that state (a dict keeps it ordered).
        self.problems: dict[tuple[str, int], dict[str, None]] = {}
        self.cells = 0
        for node in matrix.nodes:
            self._add_row(matrix, node)
        self.revision = matrix.revision
        self.built_at = time.monotonic()
        self.rebuilds += 1

    def _add_row(self, matrix: Matrix, node: str) -> None:
        get = matrix.cells.get
        labels = matrix.nodes[node].labels
        group = labels.get(self.label, "") if self.label else ""
        tally = self.tallies.get(group)
        if tally is None:
            tally = self.tallies[group] = [[0] * 5 for _ in self.columns]
        row = bytearray(len(self.columns))
        for i, key in enumerate(self.columns):
            cell = get((node, key))
            if cell is None:
                continue
            idx = _INDEX[cell.state]
            row[i] = idx
            tally[i][_BUCKET[idx]] += 1
            self.cells += 1
            if idx in _PROBLEM:
                self.problems.setdefault((key, idx), {})[node] = None
        self.rows[node] = row
        self.group_of[node] = group
        self.group_size[group] += 1

    def _remove_row(self, node: str) -> None:
        row = self.rows.pop(node, None)
        if row is None:
            return
        group = self.group_of.pop(node)
        tally = self.tallies[group]
        for i, idx in enumerate(row):
            if not idx:
                continue
            tally[i][_BUCKET[idx]] -= 1
            self.cells -= 1
            if idx in _PROBLEM:
                key = (self.columns[i], idx)
                nodes = self.problems[key]
                nodes.pop(node, None)
                if not nodes:
                    del self.problems[key]
        self.group_size[group] -= 1
        if self.group_size[group] <= 0:
            del self.group_size[group]
            del self.tallies[group]

    def apply(self, matrix: Matrix, delta: Delta) -> None:
        """Fold one delta in (the matrix already reflects it)."""
        if delta.revision <= self.revision:
            return  # already counted (a rebuild after this delta, or a repeated call)
        if (
            len(matrix.cells) <= RECOUNT_CELLS
            or delta.added_daemonsets
            or delta.removed_daemonsets
            or len(matrix.daemonsets) != len(self.columns)
        ):
            self.rebuild(matrix)
            return
        moved = set(delta.added_nodes) | set(delta.changed_nodes)
        relabelled = moved and not self.configured
        if relabelled and default_group_label(matrix.nodes.values()) != self.label:
            self.rebuild(matrix)
            return
        touched = {node for node, _ in delta.cells}
        touched |= moved
        touched.update(delta.removed_nodes)
        for node in touched:
            self._remove_row(node)
            if node in matrix.nodes:
                self._add_row(matrix, node)
        self.revision = matrix.revision
        # Cheap consistency checks; a mismatch means a change bypassed us: recount.
        if (
            self.cells != len(matrix.cells)
            or len(self.rows) != len(matrix.nodes)
            or time.monotonic() - self.built_at > REBUILD_SECONDS
        ):
            self.rebuild(matrix)

    # ------------------------------------------------------------------ the snapshot

    def snapshot(self, matrix: Matrix) -> dict[str, Any]:
        """Bounded, JSON-able: what the page draws (see templates/wall and static/js/wall.js)."""
        nodes = len(self.rows)
        shown = list(range(len(self.columns)))
        if len(shown) > MAX_DAEMONSETS:
            worst = sorted(shown, key=lambda i: (-self._column_problems(i), self.columns[i]))
            shown = sorted(worst[:MAX_DAEMONSETS])
        daemonsets = [self.columns[i].partition("/")[::2] for i in shown]
        data: dict[str, Any] = {
            "daemonsets": [[ns, name] for ns, name in daemonsets],
            "hidden_daemonsets": len(self.columns) - len(shown),
            "label": self.label,
        }
        statics = columns_of(matrix)
        data["daemonsets"] += [[c.namespace, c.name, 1] for c in statics]
        if nodes <= CELLS_MAX_NODES:
            order = sorted(self.rows, key=natural_key)
            rows = [self.rows[n] for n in order]
            data["mode"] = "cells"
            data["node_names"] = order
            data["cells"] = ["".join([CODES[r[i]] for r in rows]) for i in shown]
            data["cells"] += [_static_codes(c, order) for c in statics]
        else:
            data["mode"] = "groups"
            groups = sorted(self.tallies, key=lambda g: (g == "", natural_key(g)))
            merged: list[str] = []
            if len(groups) > MAX_GROUPS:
                keep = set(sorted(groups, key=lambda g: (-self._group_problems(g), natural_key(g)))[
                    : MAX_GROUPS - 1])  # fmt: skip
                merged = [g for g in groups if g not in keep]
                groups = [g for g in groups if g in keep]
            columns = [[g, self.group_size[g]] for g in groups]
            tallies = [self.tallies[g] for g in groups]
            if merged:
                columns.append([f"+{len(merged)} more", sum(self.group_size[g] for g in merged)])
                tallies.append(
                    [
                        [sum(self.tallies[g][i][b] for g in merged) for b in range(5)]
                        for i in range(len(self.columns))
                    ]
                )
            data["groups"] = columns
            data["tally"] = [[t[i] for t in tallies] for i in shown]
            data["tally"] += [self._static_tally(c, groups, merged) for c in statics]
        data.update(self._exceptions(matrix, statics))
        return data

    def _static_tally(
        self, col: StaticColumn, groups: list[str], merged: list[str]
    ) -> list[list[int]]:
        """A static column's five proportion buckets per node group (as the snapshot's)."""
        by_group: dict[str, list[int]] = {}
        for node, cell in col.cells.items():
            group = self.group_of.get(node)
            if group is not None:
                by_group.setdefault(group, [0] * 5)[proportion_bucket(cell.state)] += 1
        out = [by_group.get(g, [0] * 5) for g in groups]
        if merged:
            out.append([sum(by_group.get(g, [0] * 5)[b] for g in merged) for b in range(5)])
        return out

    def _column_problems(self, i: int) -> int:
        return sum(t[i][2] + t[i][3] for t in self.tallies.values())

    def _group_problems(self, group: str) -> int:
        return sum(c[2] + c[3] for c in self.tallies[group])

    def _exceptions(
        self, matrix: Matrix, statics: list[StaticColumn] | None = None
    ) -> dict[str, Any]:
        keys = sorted(
            self.problems,
            key=lambda k: (-_SEVERITY[k[1]], -len(self.problems[k]), k[0]),
        )
        lines = []
        for ds_key, idx in keys[:MAX_EXCEPTIONS]:
            nodes = self.problems[(ds_key, idx)]
            # nsmallest compares plain strings (cheap on thousands of nodes); the few kept
            # are then put in natural order.
            sample = sorted(heapq.nsmallest(NODES_PER_EXCEPTION, nodes), key=natural_key)
            cell = matrix.cells.get((sample[0], ds_key))
            reason = cell.reason if cell is not None else ""
            if len(reason) > REASON_CHARS:
                reason = reason[: REASON_CHARS - 1] + "…"
            namespace, _, name = ds_key.partition("/")
            lines.append([namespace, name, CODES[idx], sample, len(nodes), reason])
        static_lines = _static_exceptions(statics or [])
        if static_lines:  # in the order of severity, beside the DaemonSets' lines
            lines = sorted(
                lines + static_lines, key=lambda x: (-_SEVERITY[CODES.index(x[2])], -x[4])
            )[:MAX_EXCEPTIONS]
        return {
            "exceptions": lines,
            "exception_lines": len(self.problems) + len(static_lines),
            "exception_cells": sum(len(v) for v in self.problems.values())
            + sum(x[4] for x in static_lines),
            "rollouts": rollout_exceptions(matrix),
        }


def rollout_exceptions(matrix: Matrix) -> list[list[Any]]:
    """Rollouts under way that wait (docs/revisions.md), one line each, capped:
    [namespace, name, state, nodes (a few), how many, headline]. A DaemonSet whose counters
    show no older pod costs O(1); only the others are walked."""
    out = []
    for ds_key in sorted(matrix.daemonsets):
        if not under_way(matrix, ds_key):
            continue
        r = rollout_of(matrix, ds_key)
        if r is None or not r.stuck or not (r.old_nodes or r.state == "invalid"):
            continue
        nodes = [b.node for b in r.blocked_by]
        sample = sorted(nodes, key=natural_key)[:NODES_PER_EXCEPTION]
        headline = r.headline(limit=3)
        if len(headline) > REASON_CHARS:
            headline = headline[: REASON_CHARS - 1] + "…"
        namespace, _, name = ds_key.partition("/")
        out.append([namespace, name, r.state, sample, len(nodes), headline])
        if len(out) >= MAX_EXCEPTIONS:
            break
    return out


def _static_codes(col: StaticColumn, order: list[str]) -> str:
    return "".join(CODES[_INDEX[c.state]] if (c := col.cells.get(n)) else "-" for n in order)


def _static_exceptions(statics: list[StaticColumn]) -> list[list[Any]]:
    """Exception lines of static-pod problems: (namespace, "name (static)", state code,
    sample nodes, count, reason), one per (column, state)."""
    lines = []
    for col in statics:
        by_state: dict[State, list[str]] = {}
        for node, cell in col.cells.items():
            if cell.state.is_problem:
                by_state.setdefault(cell.state, []).append(node)
        for state, nodes in by_state.items():
            nodes.sort(key=natural_key)
            reason = col.cells[nodes[0]].reason
            if len(reason) > REASON_CHARS:
                reason = reason[: REASON_CHARS - 1] + "…"
            sample = nodes[:NODES_PER_EXCEPTION]
            lines.append(
                [
                    col.namespace,
                    f"{col.name} (static)",
                    CODES[_INDEX[state]],
                    sample,
                    len(nodes),
                    reason,
                ]
            )
    return lines


# One aggregate per live matrix (a collector that restarts gets a fresh matrix).
_aggregates: weakref.WeakKeyDictionary[Matrix, WallAggregate] = weakref.WeakKeyDictionary()


def aggregate(matrix: Matrix, configured_label: str = "") -> WallAggregate:
    """The matrix's aggregate, built on first use. Call under the collector's lock."""
    agg = _aggregates.get(matrix)
    if agg is None or agg.configured != configured_label:
        agg = _aggregates[matrix] = WallAggregate(matrix, configured_label)
    return agg


def payload_data(
    matrix: Matrix, delta: Delta | None, headline: dict[str, Any], configured_label: str = ""
) -> dict[str, Any]:
    """The wall's part of a delta payload (or of a first paint, with `delta=None`)."""
    agg = _aggregates.get(matrix)
    if agg is None or agg.configured != configured_label:
        agg = aggregate(matrix, configured_label)  # fresh: it already includes the delta
    elif delta is not None:
        agg.apply(matrix, delta)
    elif agg.revision != matrix.revision:
        agg.rebuild(matrix)  # changed without telling us: recount
    data = agg.snapshot(matrix)
    data["headline"] = headline
    data["revision"] = matrix.revision
    return data
