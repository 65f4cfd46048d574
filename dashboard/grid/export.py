"""The grid's current view (its filters applied) as a coverage JSON document or as CSV,
for spreadsheets and tickets.

The view is cut out of the live matrix as a matrix of its own: the nodes the filters let
through (name search, label selector), the DaemonSets they show (namespace, DaemonSet),
and the pods and revisions of those. A cell depends only on its node, its DaemonSet and
their pods, so every cell of the cut-out equals the grid's; its summaries are the view's
(what `coverage --snapshot` would say of a dump of just those objects). The state filter
("problems only", one state) then narrows the cells listed, not the counters.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import Record
from dashboard.coverage.report import to_json
from dashboard.coverage.selectors import SelectorError
from dashboard.coverage.snapshot import build_matrix

from .model import GridFilters

CSV_COLUMNS = (
    "cluster",
    "node",
    "node_status",
    "daemonset",
    "state",
    "reason",
    "should_run",
    "pod",
    "pods",
    "status",
    "ready",
    "restarts",
    "last_exit_container",
    "last_exit_reason",
    "last_exit_code",
    "updated",
)
# A spreadsheet runs a cell that starts with one of these as a formula: names, labels
# and reasons come from the cluster, so they are quoted into plain text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def view_records(matrix: Matrix, filters: GridFilters) -> list[Record]:
    """The records of the view, copied under the caller's hold of the collector's lock."""
    try:
        reqs = filters.requirements()
    except SelectorError:
        reqs = ()  # the grid shows the error and every node; so does the export
    nodes = [n for name, n in matrix.nodes.items() if filters.node_visible(name, n.labels, reqs)]
    daemonsets = [ds for key, ds in matrix.daemonsets.items() if filters.column_visible(key)]
    names = {n.name for n in nodes}
    uids = {ds.uid for ds in daemonsets}
    pods = [p for p in matrix.pods.values() if p.owner_uid in uids and p.node in names]
    revisions = [r for r in matrix.revisions.values() if r.owner_uid in uids]
    return [*nodes, *daemonsets, *pods, *revisions]


def view_document(
    records: Iterable[Record], filters: GridFilters, *, cluster: str, generated_at: datetime
) -> dict[str, Any]:
    """The coverage JSON document (README, `daemonviz.coverage/v1`) of the view, with the
    filters it was cut with; `cells` lists only those matching the state filter."""
    view = build_matrix(records, Matrix(clock=lambda: generated_at))
    doc = to_json(view, generated_at=generated_at)
    if filters.state:
        keep = {
            (node, key)
            for (node, key), cell in view.cells.items()
            if filters.cell_matches_state(cell)
        }
        doc["cells"] = [c for c in doc["cells"] if (c["node"], c["daemonset"]) in keep]
    doc["cluster"] = cluster
    doc["filters"] = dict(filters.query_items(with_expand=False))
    return doc


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def document_csv(doc: dict[str, Any]) -> str:
    """One row per listed cell of a view document (header first)."""
    status = {n["name"]: n["status"] for n in doc["nodes"]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for cell in doc["cells"]:
        last = cell["last_termination"] or {}
        row = {
            **cell,
            "cluster": doc["cluster"],
            "node_status": status.get(cell["node"], ""),
            "last_exit_container": last.get("container"),
            "last_exit_reason": last.get("reason"),
            "last_exit_code": last.get("exit_code"),
        }
        writer.writerow([_plain(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()
