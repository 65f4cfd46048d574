"""HTML fragments shared by the first paint and the websocket pushes.

`delta_payload` runs once per coalesced delta on the collector (under its lock) and renders
every changed cell once, whatever the number of browsers; the result is plain JSON-able
data so it can cross Redis. `client_frame` then runs per browser in its consumer: it only
selects and concatenates the pre-rendered pieces its filters show, so N clients cost N
string joins, not N renders.

Frame format (htmx ws extension, every top-level element is an out-of-band swap):
  <div id="live-rev" data-revision data-base data-epoch>   always first: gap detection
  <a id="c-<node>-<ds>" class="c s-<state>" hx-swap-oob="true">…</a>   changed cells
  <div hx-swap-oob="beforeend:#gr-<group>"><div id="r-<node>" class="grow">…</div></div>  joins
  <div id="r-<node>" hx-swap-oob="delete"></div>                      removed rows
  <div id="rh-<node>" …>, <div id="h-<ds>" …>, <div id="summary" …>   row/column heads, summary
Element ids are blake2s hashes of the Kubernetes names (`grid.dom_id`): names contain dots.
"""

from __future__ import annotations

import secrets
import weakref
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from dashboard import wall
from dashboard.coverage.cells import Cell
from dashboard.coverage.matrix import Delta, Matrix
from dashboard.coverage.summary import cluster_summary, daemonset_summary

from .grid import (
    NO_GROUP,
    ZONE_LABEL,
    Column,
    GridFilters,
    GridView,
    Row,
    dom_id,
    make_row,
    node_pool,
    node_role,
)

# A matrix is a revision space of its own: when a collector restarts with a fresh matrix,
# revisions start again at 0, and a page from the old one must re-sync rather than wait.
_epochs: weakref.WeakKeyDictionary[Matrix, str] = weakref.WeakKeyDictionary()


def epoch(matrix: Matrix) -> str:
    token = _epochs.get(matrix)
    if token is None:
        token = _epochs[matrix] = secrets.token_hex(4)
    return token


@lru_cache(maxsize=16)
def _template(name: str):
    return get_template(name)


@lru_cache(maxsize=64)
def _cell_base(slug: str) -> str:
    return reverse("cell", args=[slug]) + "?"


# --------------------------------------------------------------------------- cells


# Rendering `_cell.html` through Django costs ~90 µs; 20,000 cells would take seconds. The
# template is rendered once per distinct (state, reason, restarts) with marker strings for
# the per-cell values, which are then substituted already escaped, exactly as autoescape
# would have. Markers are control characters no escaped value can contain.
_MARKS = {"id": "\x00I\x00", "node": "\x00N\x00", "ds": "\x00D\x00", "href": "\x00H\x00"}


@lru_cache(maxsize=8192)
def _cell_skeleton(state, reason: str, restarts: int, oob: bool) -> str:
    cell = None if state is None else Cell(state, reason, True, restarts=restarts)
    return _template("dashboard/_cell.html").render({**_MARKS, "cell": cell, "oob": oob})


@lru_cache(maxsize=65536)
def _quoted(value: str) -> str:
    return quote(value, safe="")


def render_cell(slug: str, node: str, ds_key: str, cell: Cell | None, oob: bool = False) -> str:
    """`dashboard/_cell.html` for one (node, DaemonSet): the page and the pushes both use it."""
    if cell is None:
        html = _cell_skeleton(None, "", 0, oob)
    else:
        html = _cell_skeleton(cell.state, cell.reason, cell.restarts, oob)
    href = f"{_cell_base(slug)}node={_quoted(node)}&ds={_quoted(ds_key)}"
    return (
        html.replace(_MARKS["id"], f"c-{dom_id(node)}-{dom_id(ds_key)}")
        .replace(_MARKS["node"], escape(node))
        .replace(_MARKS["ds"], escape(ds_key))
        .replace(_MARKS["href"], escape(href))
    )


def row_context(slug: str, row: Row) -> dict[str, Any]:
    labels = row.node.labels
    return {
        "slug": slug,
        "name": row.name,
        "id": row.id,
        "health": row.health,
        "pool": node_pool(labels),
        "zone": labels.get(ZONE_LABEL, ""),
        "role": node_role(labels),
        "problems": row.problems,
    }


def render_rowhead(slug: str, row: Row, oob: bool = False) -> str:
    return _template("dashboard/_rowhead.html").render({**row_context(slug, row), "oob": oob})


def render_row(slug: str, row: Row, cells_html: list[str] | None = None) -> SafeString:
    if cells_html is None:
        cells_html = [render_cell(slug, row.name, col.key, cell) for col, cell in row.cells]
    return _template("dashboard/_row.html").render(
        {
            "id": row.id,
            "name": row.name,
            "problem": row.problem,
            "head": mark_safe(render_rowhead(slug, row)),  # rendered (escaped) by a template
            "cells": mark_safe("".join(cells_html)),
        }
    )


def render_colhead(slug: str, column: Column, oob: bool = False) -> str:
    return _template("dashboard/_colhead.html").render({"slug": slug, "col": column, "oob": oob})


def render_summary(slug: str, matrix: Matrix, oob: bool = False, summary=None) -> str:
    summary = cluster_summary(matrix) if summary is None else summary
    return _template("dashboard/_summary.html").render(
        {"slug": slug, "summary": summary, "oob": oob}
    )


def headline(summary) -> dict[str, Any]:
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


def render_wall_cluster(
    slug: str, name: str, numbers: dict[str, Any] | None, status: Any = None, oob: bool = False
) -> str:
    """One cluster's headline block on a wall display (page and pushes)."""
    return _template("wall/_cluster.html").render(
        {
            "id": "w-" + dom_id("cluster:" + slug),
            "slug": slug,
            "name": name,
            "h": numbers,
            "status": status,
            "oob": oob,
        }
    )


def attach_html(slug: str, view: GridView) -> GridView:
    """Render every row of a grid view (the page template only concatenates)."""
    for group in view.groups:
        for row in group.rows:
            row.html = render_row(slug, row)
    return view


# --------------------------------------------------------------------------- pushes


def delta_payload(cluster: Any, matrix: Matrix, delta: Delta) -> dict[str, Any]:
    """The message the collector publishes for one coalesced delta (call under its lock)."""
    slug = cluster.slug
    removed = set(delta.removed_nodes)
    added = set(delta.added_nodes)
    cells = []
    for (node, ds_key), cell in delta.cells.items():
        # Cells of added/removed rows travel with their row; a None cell left with its
        # row or column (a removed column re-syncs the client).
        if cell is None or node in added or node in removed or ds_key not in matrix.daemonsets:
            continue
        html = render_cell(slug, node, ds_key, cell, oob=True)
        cells.append([node, ds_key, cell.state.value, html])

    all_columns = [
        Column(k, ds.namespace, ds.name, dom_id(k), daemonset_summary(matrix, k))
        for k, ds in sorted(matrix.daemonsets.items())
    ]
    rows_added = []
    for name in delta.added_nodes:
        if name not in matrix.nodes:
            continue
        row = make_row(matrix, name, all_columns)
        rows_added.append(
            {
                "node": name,
                "labels": dict(row.node.labels),
                "problem": row.problem,
                "head": render_rowhead(slug, row),
                "cells": [
                    [
                        col.key,
                        cell.state.value if cell else "",
                        render_cell(slug, name, col.key, cell),
                    ]
                    for col, cell in row.cells
                ],
            }
        )
    rows_changed = [
        {"node": name, "head": render_rowhead(slug, make_row(matrix, name, []), oob=True)}
        for name in delta.changed_nodes
        if name in matrix.nodes and name not in added
    ]
    by_key = {c.key: c for c in all_columns}
    columns_changed = [
        [key, render_colhead(slug, by_key[key], oob=True)]
        for key in delta.changed_daemonsets
        if key in by_key
    ]
    # Any cell change can move the counters; the summary is cheap (O(DaemonSets)).
    touched = cells or rows_added or delta.removed_nodes or columns_changed
    summary = cluster_summary(matrix) if touched else None
    # The wall display's bounded view of the cluster after this delta (dashboard/wall.py):
    # maintained incrementally, so it costs O(touched rows), rendered by the wall page.
    wall_data = wall.payload_data(
        matrix,
        delta,
        headline(summary if summary is not None else cluster_summary(matrix)),
        getattr(cluster, "group_by_label", "") or "",
    )
    return {
        "slug": slug,
        "epoch": epoch(matrix),
        "revision": delta.revision,
        "cells": cells,
        "rows_added": rows_added,
        "rows_removed": list(delta.removed_nodes),
        "rows_changed": rows_changed,
        "columns_changed": columns_changed,
        # A new or removed column changes every row's layout: simpler and safer to re-fetch.
        "resync": bool(delta.added_daemonsets or delta.removed_daemonsets),
        "summary": render_summary(slug, matrix, oob=True, summary=summary) if touched else "",
        "headline": headline(summary) if summary is not None else None,
        "wall": wall_data,
    }


def _revision_marker(payload: dict[str, Any], resync: bool) -> str:
    return format_html(
        '<div id="live-rev" hx-swap-oob="true" hidden data-revision="{}" data-base="{}"'
        ' data-epoch="{}"{}></div>',
        payload["revision"],
        payload.get("base", payload["revision"] - 1),
        payload.get("epoch", ""),
        mark_safe(' data-resync="1"') if resync else "",
    )


def hello_frame(matrix: Matrix) -> str:
    """The first frame on a new socket: where the matrix stands now."""
    marker = {"revision": matrix.revision, "base": matrix.revision, "epoch": epoch(matrix)}
    # data-hello tells the page this is a greeting, not a delta to apply.
    return _revision_marker(marker, resync=False).replace("<div ", '<div data-hello="1" ', 1)


def client_frame(payload: dict[str, Any], filters: GridFilters) -> str | None:
    """The text frame one browser gets for a payload, given the filters of its page.

    Columns hidden by the namespace/DaemonSet filters are dropped here. Rows hidden by the
    name search and label selector are dropped when we know the node's labels (joining
    rows); for cells of existing rows we do not ship labels (they would dominate the
    payload), so a cell of a row the page does not show simply finds no target and htmx
    skips it — same data the user may see anyway, only some bytes wasted. The page re-syncs
    when such a miss concerns a *problem* cell while it shows problems only, so a newly
    broken row does appear. The revision marker is always sent, even when nothing else is
    visible: without it the next frame would look like a gap.
    """
    parts = [_revision_marker(payload, payload.get("resync", False))]
    if payload.get("resync"):
        return parts[0]
    try:
        reqs = filters.requirements()
    except ValueError:
        reqs = ()
    q = filters.q.lower()

    for node, ds_key, _state, html in payload.get("cells", ()):
        if filters.column_visible(ds_key) and (not q or q in node.lower()):
            parts.append(html)

    group_label = filters.group if filters.group != NO_GROUP else ""
    for row in payload.get("rows_added", ()):
        if not filters.node_visible(row["node"], row["labels"], reqs):
            continue
        cells = [(k, s, h) for k, s, h in row["cells"] if filters.column_visible(k)]
        if filters.state and not any(
            s and (s == filters.state or (filters.state == "problems" and _is_problem(s)))
            for _, s, _ in cells
        ):
            continue
        rid = dom_id(row["node"])
        group = row["labels"].get(group_label, "") if group_label else ""
        row_html = _template("dashboard/_row.html").render(
            {
                "id": rid,
                "name": row["node"],
                "problem": row["problem"],
                "head": mark_safe(row["head"]),
                "cells": mark_safe("".join(h for _, _, h in cells)),
                "new": True,
            }
        )
        # A stale copy of the row (node left and came back) is removed by the page's script
        # before the append; an oob "delete" here would log a miss on every normal join.
        parts.append(
            format_html(
                '<div hx-swap-oob="beforeend:#gr-{}">{}</div>', dom_id("group:" + group), row_html
            )
        )

    for name in payload.get("rows_removed", ()):
        parts.append(format_html('<div id="r-{}" hx-swap-oob="delete"></div>', dom_id(name)))
    for row in payload.get("rows_changed", ()):
        if not q or q in row["node"].lower():
            parts.append(row["head"])
    for key, html in payload.get("columns_changed", ()):
        if filters.column_visible(key):
            parts.append(html)
    if payload.get("summary"):
        parts.append(payload["summary"])
    return "".join(parts)


def _is_problem(state_value: str) -> bool:
    from dashboard.coverage.states import State

    return State(state_value).is_problem
