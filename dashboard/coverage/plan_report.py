"""The placement preview in the CLI's two shapes: the JSON document with its `plan`
objects, and the table's plan section (docs/plan.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .access import DEFAULT_CLUSTER_DOMAIN
from .plan import DaemonSetPlan, NodeNote, PlanResult
from .report import to_json

# The lists of a plan, as the table names them, in the order it prints them.
SECTIONS = (
    ("would_not_fit", "would not fit"),
    ("stops_on", "stops on"),
    ("kept_on", "kept on"),
    ("replaced_on", "replaced on"),
    ("outdated_on", "stays old on"),
    ("starts_on", "starts on"),
)
# Which list a node of a planned DaemonSet is in, for its cell (`"plan"` of a cell).
CELL_SECTIONS = ("stops_on", "kept_on", "replaced_on", "outdated_on", "starts_on", "targets")


def cell_plans(p: DaemonSetPlan) -> dict[str, tuple[str, str]]:
    """node → (the list it is in, its rule): the first of CELL_SECTIONS it is in; a
    targeted node's rule is why it is targeted, then why it would not fit."""
    out: dict[str, tuple[str, str]] = {}
    for section in CELL_SECTIONS:
        for note in getattr(p, section):
            out.setdefault(note.node, (section, note.rule))
    for note in p.targets:
        section, rule = out[note.node]
        if section in ("starts_on", "replaced_on"):
            out[note.node] = (section, f"{rule}; {note.rule}")
    for note in p.would_not_fit:
        section, rule = out.get(note.node, ("starts_on", ""))
        out[note.node] = (section, f"{rule}; would not fit: {note.rule}")
    return out


def plan_json(
    result: PlanResult,
    *,
    daemonset: str | None = None,
    generated_at: datetime | None = None,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    daemon_size: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The coverage document of the cluster as if the plan were applied, plus `plan`."""
    doc = to_json(
        result.after,
        daemonset=daemonset,
        generated_at=generated_at,
        cluster_domain=cluster_domain,
        daemon_size=daemon_size,
    )
    plans = [p for p in result.plans if daemonset is None or p.key == daemonset]
    by_key = {p.key: p for p in plans}
    for ds in doc["daemonsets"]:
        key = f"{ds['namespace']}/{ds['name']}"
        ds["planned"] = key in result.planned
    for cell in doc["cells"]:
        p = by_key.get(cell["daemonset"])
        if p is None:
            continue
        section, rule = cell_plans(p).get(cell["node"], ("not_targeted", ""))
        cell["predicted"] = {"plan": section, "rule": rule}
    doc["plan"] = [p.to_json() for p in plans]
    doc["patched_nodes"] = [
        {"node": node, "patches": patches} for node, patches in sorted(result.patched_nodes.items())
    ]
    return doc


def _line(p: DaemonSetPlan) -> str:
    c = p.counts()
    return (
        f"PLAN {p.key} ({p.change}, {p.strategy}): targets {c['targets']} nodes; "
        f"starts on {c['starts_on']}, replaced on {c['replaced_on']}, "
        f"stops on {c['stops_on']}, kept on {c['kept_on']}, "
        f"stays old on {c['outdated_on']}, would not fit on {c['would_not_fit']}"
    )


def plan_table(result: PlanResult, *, daemonset: str | None = None, wide: bool = False) -> str:
    """One line per planned DaemonSet, then one line per node that changes (with -o wide
    also the nodes it targets and why not the others)."""
    lines: list[str] = []
    for node, patches in sorted(result.patched_nodes.items()):
        lines.append(f"NODE {node}: {'; '.join(patches)}")
    if result.patched_nodes:
        lines.append("")
    plans = [p for p in result.plans if daemonset is None or p.key == daemonset]
    if not plans:
        lines.append("PLAN: no DaemonSet changes where it runs")
    sections = SECTIONS + ((("targets", "targets"), ("not_targeted", "not on")) if wide else ())
    for p in plans:
        lines.append(_line(p))
        rows: list[tuple[str, NodeNote]] = [
            (label, note) for attr, label in sections for note in getattr(p, attr)
        ]
        width = max((len(n.node) for _, n in rows), default=0)
        lines += [f"  {label:<13} {n.node:<{width}}  {n.rule}" for label, n in rows]
    return "\n".join(lines) + "\n"
