"""Render a matrix as a terminal table or as the stable JSON document of the `coverage` CLI.

The JSON schema is documented in the README ("coverage JSON schema"); its `schema` field
names the version, and fields are only ever added within a version.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from .cells import Cell
from .matrix import Matrix
from .records import Termination
from .states import STATE_INFO, State
from .summary import Counts, cluster_summary, daemonset_summary, node_summary

SCHEMA = "daemonviz.coverage/v1"


def _counts_json(c: Counts) -> dict[str, Any]:
    return {
        "targeted": c.targeted,
        "healthy": c.healthy,
        "outdated": c.outdated,
        "missing": c.missing,
        "failing": c.failing,
        "crash_looping": c.crash_looping,
        "progressing": c.progressing,
        "misscheduled": c.misscheduled,
        "coverage": c.coverage,
        "states": c.states,
    }


def _termination_json(t: Termination | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "container": t.container,
        "reason": t.reason,
        "exit_code": t.exit_code,
        "signal": t.signal,
        "finished_at": t.finished_at,
    }


def cell_json(node: str, ds_key: str, cell: Cell) -> dict[str, Any]:
    return {
        "node": node,
        "daemonset": ds_key,
        "state": cell.state.value,
        "reason": cell.reason,
        "should_run": cell.should_run,
        "pod": cell.pod or None,
        "pods": cell.pods,
        "status": cell.status_word or None,
        "ready": cell.ready_containers or None,
        "restarts": cell.restarts,
        "last_termination": _termination_json(cell.last_termination),
        "updated": cell.updated,
    }


def to_json(
    matrix: Matrix, *, daemonset: str | None = None, generated_at: datetime | None = None
) -> dict:
    ds_keys = [k for k in sorted(matrix.daemonsets) if daemonset is None or k == daemonset]
    summary = cluster_summary(matrix)
    daemonsets = []
    for key in ds_keys:
        s = daemonset_summary(matrix, key)
        ds = matrix.daemonsets[key]
        daemonsets.append(
            {
                "namespace": s.namespace,
                "name": s.name,
                "strategy": s.strategy,
                **_counts_json(s.counts),
                "status": {
                    "desired": s.desired,
                    "current": s.current,
                    "ready": s.ready,
                    "updated": s.updated,
                    "available": s.available,
                    "misscheduled": ds.status.numberMisscheduled,
                    "observed_generation": ds.status.observedGeneration,
                    "generation": ds.generation,
                },
                "status_lag": s.status.lagging or None,
                "status_mismatches": s.status.mismatches,
            }
        )
    nodes = []
    for name in sorted(matrix.nodes):
        h = matrix.health[name]
        nodes.append(
            {
                "name": name,
                "status": h.word,
                "ready": h.ready or None,
                "cordoned": h.cordoned,
                "pressures": list(h.pressures),
                "network_unavailable": h.network_unavailable,
                **_counts_json(node_summary(matrix, name)),
            }
        )
    cells = [
        cell_json(node, key, matrix.cells[(node, key)])
        for node in sorted(matrix.nodes)
        for key in ds_keys
        if (node, key) in matrix.cells
    ]
    return {
        "schema": SCHEMA,
        "generated_at": generated_at.isoformat() if generated_at else None,
        "summary": {
            "nodes": summary.nodes,
            "daemonsets": summary.daemonsets,
            "pods": summary.pods,
            "nodes_not_ready": summary.nodes_not_ready,
            **_counts_json(summary.counts),
        },
        "daemonsets": daemonsets,
        "nodes": nodes,
        "cells": cells,
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def to_table(matrix: Matrix, *, daemonset: str | None = None) -> str:
    """Nodes × DaemonSets, one symbol per cell; then the legend and every problem's reason."""
    ds_keys = [k for k in sorted(matrix.daemonsets) if daemonset is None or k == daemonset]
    nodes = sorted(matrix.nodes)
    out: list[str] = []
    if not ds_keys or not nodes:
        out.append(f"{len(nodes)} nodes, {len(ds_keys)} DaemonSets: nothing to show.")
        return "\n".join(out) + "\n"

    # Columns are numbered: DaemonSet names are far too wide to head a grid.
    out.append("DaemonSets:")
    for i, key in enumerate(ds_keys, 1):
        s = daemonset_summary(matrix, key)
        c = s.counts
        extra = f"  [{s.status.lagging}]" if s.status.lagging else ""
        out.append(
            f"  {i:>2}  {key:<48} coverage {_pct(c.coverage):>6}  targeted {c.targeted:>4}  "
            f"healthy {c.healthy:>4}  missing {c.missing:>3}  failing {c.failing:>3}  "
            f"outdated {c.outdated:>3}{extra}"
        )
    out.append("")
    width = max(len(n) for n in nodes)
    status_width = max(len(matrix.health[n].word) for n in nodes)
    header = " ".join(f"{i:>2}" for i in range(1, len(ds_keys) + 1))
    out.append(f"{'NODE':<{width}}  {'STATUS':<{status_width}}  {header}")
    for node in nodes:
        symbols = " ".join(
            f"{matrix.cells[(node, k)].symbol:>2}" if (node, k) in matrix.cells else " ?"
            for k in ds_keys
        )
        out.append(f"{node:<{width}}  {matrix.health[node].word:<{status_width}}  {symbols}")
    out.append("")
    out.append(
        "Legend: " + "  ".join(f"{info.symbol} {info.label}" for info in STATE_INFO.values())
    )

    problems: list[str] = []
    untargeted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in ds_keys:
        for node in nodes:
            cell = matrix.cells.get((node, key))
            if cell is None or cell.state is State.HEALTHY:
                continue
            if cell.state is State.NOT_TARGETED:
                untargeted[(key, cell.reason)].append(node)
                continue
            pod = f" pod {cell.pod}" if cell.pod else ""
            problems.append(
                f"  {cell.symbol} {key} on {node}: {cell.state.label}{pod} — {cell.reason}"
            )
    out.append("")
    out.append(f"Problems ({len(problems)}):" if problems else "Problems: none")
    out.extend(problems)
    if untargeted:
        out.append("")
        out.append("Not targeted (why the cell is empty):")
        for (key, reason), names in untargeted.items():
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            out.append(f"  · {key} on {len(names)} node(s) [{shown}]: {reason}")
    cs = cluster_summary(matrix)
    out.append("")
    out.append(
        f"Cluster: {cs.nodes} nodes, {cs.daemonsets} DaemonSets, {cs.pods} daemon pods; "
        f"coverage {_pct(cs.counts.coverage)}, missing {cs.counts.missing}, failing {cs.counts.failing} "
        f"({cs.counts.crash_looping} crash-looping), outdated {cs.counts.outdated}, "
        f"misscheduled {cs.counts.misscheduled}; {cs.nodes_not_ready} node(s) not Ready"
    )
    return "\n".join(out) + "\n"


def below(
    matrix: Matrix, threshold: float, daemonset: str | None = None
) -> list[tuple[str, float]]:
    """DaemonSets whose coverage is under `threshold` percent (those targeting nothing excluded)."""
    low = []
    for key in sorted(matrix.daemonsets):
        if daemonset is not None and key != daemonset:
            continue
        cov = daemonset_summary(matrix, key).counts.coverage
        if cov is not None and cov < threshold:
            low.append((key, cov))
    return low
