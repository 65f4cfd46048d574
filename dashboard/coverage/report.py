"""Render a matrix as a terminal table or as the stable JSON document of the `coverage` CLI.

The JSON schema is documented in the README ("coverage JSON schema"); its `schema` field
names the version, and fields are only ever added within a version.
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .access import DEFAULT_CLUSTER_DOMAIN, DaemonSetAccess, daemonset_access
from .capacity import shortage_json
from .cells import Cell
from .exits import exits_json
from .grouping import natural_key
from .matrix import Matrix
from .records import Termination
from .rollout import cell_revision, revision_numbers, revisions_json, rollout_of
from .rollout import revisions_of as ds_revisions
from .states import STATE_INFO, State
from .static import STATIC_KIND, StaticColumn, columns_of, duplicates
from .summary import Counts, cluster_summary, counts_from, daemonset_summary, node_summary
from .tax import amounts_json, format_size, largest_daemon, node_tax, pool_taxes

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


def cell_json(
    node: str,
    ds_key: str,
    cell: Cell,
    static: bool = False,
    addresses: tuple[str, ...] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "node": node,
        "daemonset": ds_key,
        "state": cell.state.value,
        "reason": cell.reason,
        "should_run": None if static else cell.should_run,
        "pod": cell.pod or None,
        "pods": cell.pods,
        "status": cell.status_word or None,
        "ready": cell.ready_containers or None,
        "restarts": cell.restarts,
        "last_termination": _termination_json(cell.last_termination),
        "updated": cell.updated,
        # Newest first, a few at most (dashboard/coverage/why.py); [] when none explain it.
        "events": [
            {
                "about": n.about,
                "type": n.type,
                "reason": n.reason,
                "message": n.message,
                "count": n.count,
                "first_seen": n.first_seen,
                "last_seen": n.last_seen,
                "source": n.source,
            }
            for n in cell.events
        ],
    }
    if cell.pod:
        out["addresses"] = list(addresses)
        out["in_service_endpoints"] = cell.in_service_endpoints
        out["out_of_endpoints"] = cell.out_of_endpoints
    if cell.access_note:
        out["access_note"] = cell.access_note
    if cell.capacity:
        # Pending for lack of a resource: the numbers the reason gives, from the same
        # computation (coverage/capacity.py). `capacity` is the first resource the
        # scheduler named, `shortages` every one of them.
        out["capacity"] = shortage_json(cell.capacity[0])
        out["shortages"] = [shortage_json(s) for s in cell.capacity]
    if cell.port_holders:
        # Pending on a host port: who holds it, with what preemption weighs.
        out["port_holders"] = [
            {"pod": h.pod, "ports": list(h.ports), "priority": h.priority, "static": h.static}
            for h in cell.port_holders
        ]
    if cell.preemption:
        # Whether a PriorityClass would let it in (coverage/preemption.py); the reason
        # ends with it too.
        out["preemption"] = cell.preemption
    return out


def access_json(a: DaemonSetAccess) -> dict[str, Any]:
    return {
        "services": [
            {
                "namespace": s.namespace,
                "name": s.name,
                "type": s.type,
                "headless": s.headless,
                "dns": s.dns,
                "ports": [
                    {
                        "name": p.name or None,
                        "port": p.port,
                        "protocol": p.protocol,
                        "target_port": p.target,
                        "container_port": p.container_port,
                    }
                    for p in s.ports
                ],
                "internal_traffic_policy": s.internal_traffic_policy,
            }
            for s in a.services
        ],
        "host_ports": [
            {"port": p.port, "protocol": p.protocol, "container": p.container} for p in a.host_ports
        ],
        "host_network": a.host_network,
    }


def static_counts(col: StaticColumn) -> Counts:
    """A static column counts the nodes that run it (and those "missing" one by role) as
    targeted: there is no desired set, absent nodes count for nothing."""
    c: Counter[str] = Counter()
    for cell in col.cells.values():
        c[cell.state.value] += 1
        if cell.state is not State.ABSENT:
            c["targeted"] += 1
    return counts_from(c)


def _statics(matrix: Matrix, only: str | None) -> list[StaticColumn]:
    return [c for c in columns_of(matrix) if only is None or c.key == only]


def to_json(
    matrix: Matrix,
    *,
    daemonset: str | None = None,
    generated_at: datetime | None = None,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    daemon_size: Mapping[str, int] | None = None,
) -> dict:
    ds_keys = [k for k in sorted(matrix.daemonsets) if daemonset is None or k == daemonset]
    statics = _statics(matrix, daemonset)
    twice = duplicates(statics, matrix.daemonsets, _pods_on(matrix, statics))
    summary = cluster_summary(matrix)
    daemonsets = []
    for key in ds_keys:
        s = daemonset_summary(matrix, key)
        ds = matrix.daemonsets[key]
        access = daemonset_access(matrix.access, ds, matrix.daemonsets, cluster_domain)
        counts: Mapping[str, int] = matrix.ds_counts.get(key, {})
        daemonsets.append(
            {
                "namespace": s.namespace,
                "name": s.name,
                "kind": "DaemonSet",
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
                "access": access_json(access),
                "access_notes": [*access.notes, *(t for t in twice if f" {key} " in t)],
                "out_of_endpoints": counts.get("out-of-endpoints", 0),
                "host_port_conflicts": counts.get("host-port-conflict", 0),
                "rollout": r.as_json() if (r := rollout_of(matrix, key)) is not None else None,
                "revisions": revisions_json(*ds_revisions(matrix, key)),
                # Failing cells grouped by identical exit, commonest first (exits.py).
                "exits": exits_json(matrix.exit_groups(key)),
            }
        )
    for col in statics:
        daemonsets.append(
            {
                "namespace": col.namespace,
                "name": col.name,
                "kind": STATIC_KIND,
                "strategy": None,
                **_counts_json(static_counts(col)),
                "images": list(col.images),
                "access": {"services": [], "host_ports": [], "host_network": None},
                "access_notes": [t for t in twice if t.startswith(f"{col.name} runs twice")],
            }
        )
    nodes = []
    for name in sorted(matrix.nodes):
        h = matrix.health[name]
        tax = node_tax(matrix, name)
        nodes.append(
            {
                "name": name,
                "status": h.word,
                "ready": h.ready or None,
                "cordoned": h.cordoned,
                "pressures": list(h.pressures),
                "network_unavailable": h.network_unavailable,
                **_counts_json(node_summary(matrix, name)),
                # The DaemonSet tax (coverage/tax.py): what its daemon pods request.
                "pool": tax.pool,
                "allocatable": amounts_json(tax.allocatable),
                "daemon_requests": amounts_json(tax.daemon_requests),
                "daemon_pods": tax.daemon_pods,
            }
        )
    size = dict(daemon_size) if daemon_size else largest_daemon(matrix)
    pools = [
        {
            "pool": p.pool,
            "nodes": len(p.nodes),
            "allocatable": amounts_json(p.allocatable),
            "daemon_requests": amounts_json(p.daemon_requests),
            "room": amounts_json({r: max(v, 0) for r, v in p.room.items()}),
            "nodes_without_room": p.without_room,
        }
        for p in pool_taxes(matrix, size)
    ]
    cells = []
    numbers = {key: revision_numbers(matrix, key) for key in ds_keys}
    for node in sorted(matrix.nodes):
        for key in ds_keys:
            cell = matrix.cells.get((node, key))
            if cell is None:
                continue
            reach = matrix.access_of(node, key, cluster_domain) if cell.pod else None
            out = cell_json(node, key, cell, addresses=reach.addresses if reach else ())
            out["revision"] = cell_revision(matrix, numbers[key], key, cell.pod)
            cells.append(out)
    cells += [
        cell_json(node, col.key, col.cells[node], static=True)
        for col in statics
        for node in sorted(col.cells)
        if col.cells[node].state is not State.ABSENT
    ]
    return {
        "schema": SCHEMA,
        "generated_at": generated_at.isoformat() if generated_at else None,
        "summary": {
            "nodes": summary.nodes,
            "daemonsets": summary.daemonsets,
            "static_pods": len(matrix.static_pods),
            "pods": summary.pods,
            "nodes_not_ready": summary.nodes_not_ready,
            **_counts_json(summary.counts),
        },
        "daemonsets": daemonsets,
        "nodes": nodes,
        # One more daemon of `daemon_size` (--daemon-size, else the largest daemon pod):
        # the nodes of each pool where it would not fit.
        "daemon_size": format_size(size) or None,
        "pools": pools,
        "cells": cells,
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def _pods_on(matrix: Matrix, statics: list[StaticColumn]) -> dict[tuple[str, str], list]:
    return {
        (node, key): matrix.pods_in_cell(node, key)
        for col in statics
        for node in col.pods
        for key in matrix.daemonsets
        if (node, key) in matrix.cells
    }


# ANSI colours per summary bucket, for a terminal (the symbols alone already carry the
# state: colour is a help, never the only cue).
_ANSI = {
    "healthy": "32",
    "outdated": "34",
    "progressing": "33",
    "failing": "31;1",
    "missing": "31;1",
    "misscheduled": "35",
    "idle": "2",
}


def _paint(text: str, state: State | None, color: bool) -> str:
    if not color or state is None:
        return text
    return f"\x1b[{_ANSI[state.bucket]}m{text}\x1b[0m"


def _fit(text: str, room: int) -> str:
    """Cut to `room` characters with an ellipsis (a full name is one `-o wide` away)."""
    return text if len(text) <= room else text[: max(1, room - 1)] + "…"


def _names(names: list[str], room: int | None) -> str:
    """A list of node names, as many as fit in `room` characters, then "+N more"."""
    if room is None:
        return ", ".join(names)
    shown: list[str] = []
    used = 0
    for i, name in enumerate(names):
        rest = len(names) - i - 1
        tail = len(f", +{rest} more") if rest else 0
        if shown and used + len(name) + 2 + tail > room:
            return ", ".join(shown) + f", +{len(names) - len(shown)} more"
        shown.append(name)
        used += len(name) + 2
    return ", ".join(shown)


def to_table(
    matrix: Matrix,
    *,
    daemonset: str | None = None,
    width: int | None = None,
    color: bool = False,
    include_static: bool = False,
) -> str:
    """Nodes × DaemonSets, one symbol per cell; then the legend and the problems, grouped
    by (DaemonSet, state, reason) with their nodes. Nodes in natural order (node-2 before
    node-10). `width`: fit the lines to a terminal that wide (None: never cut, `-o wide`);
    `color`: ANSI colours on the symbols. Static columns (kubelet-managed mirror pods)
    follow the DaemonSets with `include_static`."""
    ds_keys = [k for k in sorted(matrix.daemonsets) if daemonset is None or k == daemonset]
    statics = _statics(matrix, daemonset) if include_static else []
    nodes = sorted(matrix.nodes, key=natural_key)
    out: list[str] = []
    if (not ds_keys and not statics) or not nodes:
        out.append(f"{len(nodes)} nodes, {len(ds_keys)} DaemonSets: nothing to show.")
        return "\n".join(out) + "\n"

    # Columns are numbered: DaemonSet names are far too wide to head a grid.
    out.append("DaemonSets:")
    key_width = max((len(k) for k in ds_keys), default=12)
    summaries = [daemonset_summary(matrix, key) for key in ds_keys]
    full = [
        f"coverage {_pct(s.counts.coverage):>6}  targeted {s.counts.targeted:>4}  "
        f"healthy {s.counts.healthy:>4}  missing {s.counts.missing:>3}  "
        f"failing {s.counts.failing:>3}  outdated {s.counts.outdated:>3}"
        for s in summaries
    ]
    numbers, shown_width = full, key_width
    if width is not None and full and 8 + key_width + max(map(len, full)) > width:
        # A narrow terminal: the short spelling of the numbers, then the names give way.
        numbers = [
            f"{_pct(s.counts.coverage):>6} {f'{s.counts.healthy}/{s.counts.targeted}':>9} ok"
            f" {s.counts.missing:>3} missing {s.counts.failing:>3} failing"
            f" {s.counts.outdated:>3} outdated"
            for s in summaries
        ]
        shown_width = min(key_width, max(12, width - 8 - max(map(len, numbers))))
    for i, (key, s, nums) in enumerate(zip(ds_keys, summaries, numbers, strict=True), 1):
        extra = f"  [{s.status.lagging}]" if s.status.lagging else ""
        line = f"  {i:>2}  {_fit(key, shown_width):<{shown_width}}  {nums}{extra}"
        out.append(line if width is None else _fit(line, width))
        rollout = rollout_of(matrix, key)
        if rollout is not None and rollout.stuck and rollout.old_nodes:
            # Only rollouts under way: a broken pod on its own is in the problems below.
            text = f"      {rollout.headline()}; {rollout.progress_text()}"
            out.extend(
                [text] if width is None else textwrap.wrap(text, width, subsequent_indent=" " * 8)
            )
    for i, col in enumerate(statics, len(ds_keys) + 1):
        c = static_counts(col)
        name = _fit(col.key + " (static)", max(shown_width, 12))
        line = (
            f"  {i:>2}  {name:<{max(shown_width, 12)}}  runs on {c.targeted - c.missing:>4}  "
            f"healthy {c.healthy:>4}  missing {c.missing:>3}  failing {c.failing:>3}"
        )
        out.append(line if width is None else _fit(line, width))
    out.append("")
    status_width = max(len(matrix.health[n].word) for n in nodes)
    columns = len(ds_keys) + len(statics)
    cols_width = 3 * columns
    name_width = max(len(n) for n in nodes)
    if width is not None:
        name_width = max(12, min(name_width, width - status_width - 4 - cols_width))
    header = " ".join(f"{i:>2}" for i in range(1, columns + 1))
    out.append(f"{'NODE':<{name_width}}  {'STATUS':<{status_width}}  {header}")
    for node in nodes:
        symbols = " ".join(
            _paint(f"{matrix.cells[(node, k)].symbol:>2}", matrix.cells[(node, k)].state, color)
            if (node, k) in matrix.cells
            else " ?"
            for k in ds_keys
        )
        if statics:
            symbols += " " + " ".join(f"{col.cells[node].symbol:>2}" for col in statics)
        name = _fit(node, name_width)
        out.append(f"{name:<{name_width}}  {matrix.health[node].word:<{status_width}}  {symbols}")
    out.append("")
    legend = "  ".join(
        f"{_paint(info.symbol, state, color)} {info.label}" for state, info in STATE_INFO.items()
    )
    if width is None:
        out.append("Legend: " + legend)
    else:  # wrapped between entries, by visible width (colour codes take no column)
        entries = [f"{_paint(i.symbol, st, color)} {i.label}" for st, i in STATE_INFO.items()]
        line, used = "Legend:", len("Legend:")
        for entry, st in zip(entries, STATE_INFO, strict=True):
            visible = len(STATE_INFO[st].symbol) + 1 + len(STATE_INFO[st].label)
            if used + 2 + visible > width:
                out.append(line)
                line, used = "       ", 7
            line, used = line + "  " + entry, used + 2 + visible
        out.append(line)

    # Problems grouped by (DaemonSet, state, reason): 34 nodes with the same image pull
    # error are one line with their names, not 34 lines.
    groups: dict[tuple[str, State, str], list[tuple[str, Cell]]] = defaultdict(list)
    untargeted: dict[tuple[str, str], list[str]] = defaultdict(list)
    cells = 0
    for key in ds_keys:
        for node in nodes:
            cell = matrix.cells.get((node, key))
            if cell is None or cell.state is State.HEALTHY:
                continue
            if cell.state is State.NOT_TARGETED:
                untargeted[(key, cell.reason)].append(node)
                continue
            groups[(key, cell.state, cell.reason)].append((node, cell))
            cells += 1
    ordered = sorted(groups.items(), key=lambda kv: (-kv[0][1].severity, kv[0][0], -len(kv[1])))
    # Access and static-pod problems: one line each, after the daemons' groups.
    flagged: list[str] = []
    for key in ds_keys:
        for node in nodes:
            cell = matrix.cells.get((node, key))
            if cell is not None and (cell.out_of_endpoints or cell.port_conflict):
                flagged.append(f"  ! {key} on {node}: {cell.access_note}")
    for col in statics:
        for node in nodes:
            cell = col.cells[node]
            if cell.state.is_problem:
                pod = f" pod {cell.pod}" if cell.pod else ""
                flagged.append(
                    f"  {cell.symbol} {col.key} (static) on {node}: {cell.state.label}{pod} — "
                    f"{cell.reason}"
                )
    flagged += [
        f"  ! {t}" for t in duplicates(statics, matrix.daemonsets, _pods_on(matrix, statics))
    ]
    cells += len(flagged)
    out.append("")
    out.append(f"Problems ({cells}):" if cells else "Problems: none")
    for (key, state, reason), members in ordered:
        symbol = _paint(state.symbol, state, color)
        if width is None:  # one line each, for grep
            if len(members) == 1:
                node, cell = members[0]
                pod = f" pod {cell.pod}" if cell.pod else ""
                out.append(f"  {symbol} {key} on {node}: {state.label}{pod} — {reason}")
            else:
                names = ", ".join(n for n, _ in members)
                out.append(f"  {symbol} {key} on {len(members)} nodes: {state.label} — {reason}")
                out.append(f"      {names}")
            continue
        # On a terminal: the nodes that fit, and the reason wrapped below (never cut).
        # State and count first: on a narrow terminal the DaemonSet's name gives way.
        if len(members) == 1:
            node, cell = members[0]
            pod = f" (pod {cell.pod})" if cell.pod else ""
            head = f"{state.label} on {node}: {key}{pod}"
        else:
            head = f"{state.label} on {len(members)} nodes: {key}"
        out.append(f"  {symbol} " + _fit(head, width - 4))
        if len(members) > 1:
            out.append("      " + _names([n for n, _ in members], max(20, width - 6)))
        out.extend(
            textwrap.wrap(reason, width, initial_indent="      ", subsequent_indent="      ")
        )
    out.extend(flagged if width is None else [_fit(line, width) for line in flagged])
    if untargeted:
        out.append("")
        out.append("Not targeted (why the cell is empty):")
        for (key, reason), idle in untargeted.items():
            first = ", ".join(idle[:3]) + (f" and {len(idle) - 3} more" if len(idle) > 3 else "")
            line = f"  · {key} on {len(idle)} node(s) [{first}]: {reason}"
            if width is None:
                out.append(line)
            else:
                out.extend(
                    textwrap.wrap(line, width, subsequent_indent="      ", break_on_hyphens=False)
                )
    cs = cluster_summary(matrix)
    out.append("")
    summary_line = (
        f"Cluster: {cs.nodes} nodes, {cs.daemonsets} DaemonSets, {cs.pods} daemon pods; "
        f"coverage {_pct(cs.counts.coverage)}, missing {cs.counts.missing}, failing {cs.counts.failing} "
        f"({cs.counts.crash_looping} crash-looping), outdated {cs.counts.outdated}, "
        f"misscheduled {cs.counts.misscheduled}; {cs.nodes_not_ready} node(s) not Ready"
    )
    if width is None:
        out.append(summary_line)
    else:
        out.extend(textwrap.wrap(summary_line, width, subsequent_indent="  "))
    out.append("")
    return "\n".join(out)


def below(
    matrix: Matrix, threshold: float, daemonset: str | None = None, include_static: bool = False
) -> list[tuple[str, float]]:
    """DaemonSets whose coverage is under `threshold` percent (those targeting nothing excluded);
    with `include_static`, static columns too (healthy among the nodes that run one, or miss
    one by their role)."""
    low = []
    for key in sorted(matrix.daemonsets):
        if daemonset is not None and key != daemonset:
            continue
        cov = daemonset_summary(matrix, key).counts.coverage
        if cov is not None and cov < threshold:
            low.append((key, cov))
    if include_static:
        for col in _statics(matrix, daemonset):
            cov = static_counts(col).coverage
            if cov is not None and cov < threshold:
                low.append((f"{col.key} (static)", cov))
    return low


def judged(matrix: Matrix, daemonset: str | None = None) -> list[str]:
    """DaemonSets that have a coverage to judge (they target at least one node)."""
    return [
        key
        for key in sorted(matrix.daemonsets)
        if (daemonset is None or key == daemonset)
        and daemonset_summary(matrix, key).counts.coverage is not None
    ]
