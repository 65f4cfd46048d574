"""Template contexts for the drill-down pages (cell, DaemonSet, node) and overview cards.

Callers hold the collector's lock; everything returned is immutable records or fresh
lists, so templates can render after the lock is released.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from dashboard.collect.registry import Collector, registry
from dashboard.coverage.access import daemonset_access
from dashboard.coverage.eligibility import describe_taint, describe_term, describe_toleration
from dashboard.coverage.event_records import Note
from dashboard.coverage.exits import exit_key
from dashboard.coverage.grouping import ZONE_LABEL, natural_key, node_pool, node_role
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.quantity import format_milli
from dashboard.coverage.records import Pod
from dashboard.coverage.rollout import cell_revision, revision_numbers, revisions_of, rollout_of
from dashboard.coverage.states import State
from dashboard.coverage.summary import (
    ClusterSummary,
    cluster_summary,
    daemonset_summary,
    node_summary,
)
from dashboard.coverage.tax import (
    NodeTax,
    format_size,
    largest_daemon,
    node_tax,
    parse_size,
    pool_taxes,
)
from dashboard.coverage.timefmt import ago, duration, utcnow
from dashboard.grid.fleet import FleetColumn, fleet_column
from dashboard.grid.logs import log_request
from dashboard.kube.connection import ConnectionState
from dashboard.models import Cluster


def kubectl(*args: str, context: str = "") -> str:
    """A command line safe to paste into a shell, whatever the names contain; with the
    cluster's kubeconfig context when it has one, so it runs against the right cluster."""
    head = ["--context", context] if context else []
    return "kubectl " + " ".join(shlex.quote(a) for a in [*head, *args])


def pod_commands(pod: Pod, context: str = "") -> list[str]:
    """The kubectl commands that fit the pod's state: logs only of a container that ran,
    `--previous` only after a restart (never for an image that was never pulled)."""
    ns, name = pod.namespace, pod.name
    cmds = [kubectl("-n", ns, "describe", "pod", name, context=context)]
    if pod.restarts > 0 or pod.last_termination is not None:
        cmds.append(kubectl("-n", ns, "logs", name, "--previous", context=context))
    if pod.status_word == "Running":
        cmds.append(kubectl("-n", ns, "logs", name, context=context))
    cmds.append(
        kubectl(
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name={name}",
            context=context,
        )
    )
    return cmds


def pod_view(
    pod: Pod, current_hash: str | None, now: datetime, context: str = ""
) -> dict[str, Any]:
    t = pod.last_termination
    if pod.revision_hash and current_hash:
        revision = "current" if pod.revision_hash == current_hash else "outdated"
    else:
        revision = "unknown"
    return {
        "pod": pod,
        "age": ago(pod.created, now),
        "termination": t,
        "termination_ago": ago(t.finished_at, now) if t else "",
        "revision": revision,
        "commands": pod_commands(pod, context),
        "log": log_request(pod),
    }


def node_facts(matrix: Matrix, name: str) -> dict[str, Any]:
    node = matrix.nodes[name]
    health = matrix.health[name]
    labels = node.labels
    conditions = [("Ready", node.ready or "missing", node.ready_reason, node.ready_message)]
    conditions += [(p, "True", "", "") for p in health.pressures]
    if node.network_unavailable:
        conditions.append(("NetworkUnavailable", "True", "", ""))
    return {
        "node": node,
        "health": health,
        "labels": sorted(labels.items()),
        "taints": [describe_taint(t) for t in node.taints],
        "conditions": conditions,
        "pool": node_pool(labels),
        "zone": labels.get(ZONE_LABEL, ""),
        "role": node_role(labels),
        "age": ago(node.created, utcnow()),
    }


def cell_detail(matrix: Matrix, node: str, ds_key: str, context: str = "") -> dict[str, Any] | None:
    cell = matrix.cells.get((node, ds_key))
    ds = matrix.daemonsets.get(ds_key)
    if cell is None or ds is None or node not in matrix.nodes:
        return None
    now = utcnow()
    current = matrix.current_hash(ds_key)
    elig = matrix.eligibility(node, ds_key)
    pods = sorted(matrix.pods_in_cell(node, ds_key), key=lambda p: (p.created or "", p.name))
    commands = []
    if cell.state in (State.MISSING, State.NOT_TARGETED, State.UNSCHEDULABLE):
        commands.append(kubectl("-n", ds.namespace, "describe", "ds", ds.name, context=context))
    numbers = revision_numbers(matrix, ds_key)
    return {
        "revision": cell_revision(matrix, numbers, ds_key, cell.pod),
        "current_revision": numbers.get(current or ""),
        "cell": cell,
        "ds": ds,
        "ds_key": ds_key,
        "node_name": node,
        "rule": elig.reason if elig is not None and elig.reason else "",
        "current_hash": current or "",
        "pods": [
            {**pod_view(p, current, now, context), "number": numbers.get(p.revision_hash)}
            for p in pods
        ],
        "ds_commands": commands,
        "reach": matrix.access_of(node, ds_key, settings.DAEMONVIZ_CLUSTER_DOMAIN),
        "events": [{"note": n, "ago": ago(n.last_seen, now)} for n in cell.events],
        "same_exit": same_exit(matrix, node, ds_key),
        **node_facts(matrix, node),
    }


SAME_EXIT_NAMED = 12  # nodes named in the cell detail; the DaemonSet page lists them all


def same_exit(matrix: Matrix, node: str, ds_key: str) -> dict[str, Any] | None:
    """The other nodes whose cell of this DaemonSet ended with the very same exit: one
    problem on many nodes (a memory limit, a bad flag), not many problems."""
    key = exit_key(matrix.cells[(node, ds_key)])
    exits = matrix.ds_exits.get(ds_key)
    if key is None or exits is None or exits[key] < 2:
        return None
    group = next(g for g in matrix.exit_groups(ds_key) if g.key == key)
    others = [n for n in sorted(group.nodes, key=natural_key) if n != node]
    return {
        "words": group.words,
        "container": key.container,
        "others": others[:SAME_EXIT_NAMED],
        "more": max(0, len(others) - SAME_EXIT_NAMED),
    }


def daemonset_detail(matrix: Matrix, ds_key: str) -> dict[str, Any] | None:
    ds = matrix.daemonsets.get(ds_key)
    if ds is None:
        return None
    rows = []
    for name in matrix.nodes:
        cell = matrix.cells.get((name, ds_key))
        if cell is not None:
            reach = matrix.access_of(name, ds_key) if cell.pod else None
            rows.append((name, cell, matrix.health[name], reach.addresses if reach else ()))
    rows.sort(key=lambda r: (-r[1].state.severity, r[0]))
    # Identical cells (same state and reason) are one line with their nodes: 34 nodes that
    # cannot pull the same image are one problem, not 34. A crash's reason carries its age
    # and restart count, which differ from node to node: those are grouped by the exit
    # itself ("same exit (137, OOMKilled) on 12 nodes").
    grouped: dict[tuple[State, str], list[str]] = {}
    for name, cell, *_ in rows:
        ek = exit_key(cell)
        reason = f"same {ek.words} of container {ek.container}" if ek else cell.reason
        grouped.setdefault((cell.state, reason), []).append(name)
    groups = [
        {"state": st, "reason": reason, "nodes": sorted(names, key=natural_key)}
        for (st, reason), names in grouped.items()
    ]
    spec = {
        "node_name": ds.node_name,
        "node_selector": sorted(ds.node_selector.items()),
        "affinity": None
        if ds.required_terms is None
        else [describe_term(t) for t in ds.required_terms],
        "tolerations": [describe_toleration(t) for t in ds.tolerations],
        "strategy": ds.strategy,
        "max_unavailable": ds.max_unavailable,
        "max_surge": ds.max_surge,
        "min_ready_seconds": ds.min_ready_seconds,
        "images": ds.images,
        "host_network": ds.host_network,
        "priority_class": ds.priority_class,
    }
    return {
        "groups": groups,
        "exits": [g for g in matrix.exit_groups(ds_key) if len(g.nodes) > 1],
        "spec": spec,
        "ds": ds,
        "ds_key": ds_key,
        "summary": daemonset_summary(matrix, ds_key),
        "current_hash": matrix.current_hash(ds_key) or "",
        "rows": rows,
        "command": kubectl("-n", ds.namespace, "describe", "ds", ds.name),
        "access": daemonset_access(
            matrix.access, ds, matrix.daemonsets, settings.DAEMONVIZ_CLUSTER_DOMAIN
        ),
        "out_of_endpoints": (c := matrix.ds_counts.get(ds_key)) and c["out-of-endpoints"],
        **rollout_context(matrix, ds_key),
    }


def rollout_context(matrix: Matrix, ds_key: str) -> dict[str, Any]:
    """The DaemonSet page's rollout and revisions parts (docs/revisions.md)."""
    rollout = rollout_of(matrix, ds_key)
    rmap, diffs = revisions_of(matrix, ds_key)
    now = utcnow()
    return {
        "rollout": rollout,
        "rollout_headline": rollout.headline(limit=50) if rollout is not None else "",
        "rollout_since": duration(rollout.since_progress)
        if rollout is not None and rollout.since_progress is not None
        else "",
        "revision_map": [
            {"info": r, "ago": ago(r.created, now), "nodes": sorted(r.nodes, key=natural_key)}
            for r in reversed(rmap.revisions)
        ],
        "unknown_revision_nodes": rmap.unknown_nodes,
        "revision_diffs": diffs,
        "old_nodes": sorted(rmap.old_nodes, key=natural_key),
        "delete_command": kubectl(
            "-n", matrix.daemonsets[ds_key].namespace, "delete", "pod", "<pod on the node>"
        ),
    }


def tax_rows(tax: NodeTax) -> list[dict[str, str]]:
    """The node page's DaemonSet tax table: one row per resource."""
    rows = []
    for r in tax.resources:
        share = tax.share(r)
        rows.append(
            {
                "resource": r,
                "allocatable": format_milli(r, tax.allocatable.get(r, 0)),
                "daemons": format_milli(r, tax.daemon_requests.get(r, 0)),
                "share": f"{share:.1f}%" if share is not None else "–",
                "others": format_milli(r, tax.requested.get(r, 0) - tax.daemon_requests.get(r, 0)),
                "free": format_milli(r, max(tax.free(r), 0)),
            }
        )
    return rows


def pool_context(matrix: Matrix, pool: str, size_text: str) -> dict[str, Any]:
    """The node's pool and every pool's room for one more daemon of a size (the ?size=
    asked, else the largest daemon pod running)."""
    error = ""
    size: dict[str, int] = {}
    if size_text:
        try:
            size = parse_size(size_text)
        except ValueError as exc:
            error = str(exc)
    if not size:
        size = largest_daemon(matrix)
    pools = pool_taxes(matrix, size)
    return {
        "pool_tax": next((p for p in pools if p.pool == pool), None),
        "pools": [
            {
                "pool": p.pool,
                "nodes": len(p.nodes),
                "cpu_share": _share(p.share("cpu")),
                "memory_share": _share(p.share("memory")),
                "without_room": p.without_room,
            }
            for p in pools
        ],
        "size": format_size(size),
        "size_asked": size_text,
        "size_error": error,
    }


def _share(value: float | None) -> str:
    return f"{value:.1f}%" if value is not None else "–"


def node_events(matrix: Matrix, name: str) -> list[dict[str, Any]]:
    """The node's own events (kubelet, node controller), newest first."""
    now = utcnow()
    return [
        {"note": note, "ago": ago(note.last_seen, now)}
        for note in (
            Note("node", e.type, e.reason, e.message, e.count, e.first_seen, e.last_seen, e.source)
            for e in matrix.events.of(("Node", "", name))
        )
    ]


def node_detail(matrix: Matrix, name: str, size_text: str = "") -> dict[str, Any] | None:
    if name not in matrix.nodes:
        return None
    tax = node_tax(matrix, name)
    cells = [
        (key, matrix.cells[(name, key)])
        for key in sorted(matrix.daemonsets)
        if (name, key) in matrix.cells
    ]
    return {
        "name": name,
        "cells": cells,
        "counts": node_summary(matrix, name),
        "command": kubectl("describe", "node", name),
        **node_facts(matrix, name),
        "events": node_events(matrix, name),
        "tax": tax,
        "tax_rows": tax_rows(tax),
        **pool_context(matrix, tax.pool, size_text),
    }


def no_data(collector: Collector) -> bool:
    """Never synced (connecting, failed, …): an empty matrix then means *unknown*, not
    "nothing is missing", and no page may show a tick or a zero for it. A stale cluster
    keeps its last known matrix, which is data. Called with the collector's lock held."""
    matrix = collector.matrix
    return (
        collector.status.state not in (ConnectionState.SYNCED, ConnectionState.STALE)
        and not matrix.nodes
        and not matrix.daemonsets
    )


@dataclass
class ClusterCard:
    cluster: Any
    running: bool
    status: Any = None
    summary: ClusterSummary | None = None
    last_update: Any = None
    no_data: bool = False


def fleet_columns() -> list[FleetColumn]:
    """Every running cluster's column of the fleet matrix, in the overview's order."""
    columns = []
    for cluster in Cluster.objects.filter(enabled=True):
        collector = registry.get(cluster.slug)
        if collector is None:
            continue
        with collector.lock:
            columns.append(
                fleet_column(cluster.slug, cluster.name, collector.matrix, no_data(collector))
            )
    return columns


def cluster_cards() -> list[ClusterCard]:
    cards = []
    for cluster in Cluster.objects.filter(enabled=True):
        collector = registry.get(cluster.slug)
        if collector is None:
            cards.append(ClusterCard(cluster, False))
            continue
        with collector.lock:
            cards.append(
                ClusterCard(
                    cluster,
                    True,
                    collector.status,
                    cluster_summary(collector.matrix),
                    collector.last_update,
                    no_data(collector),
                )
            )
    return cards
