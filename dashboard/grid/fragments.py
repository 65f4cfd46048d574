"""HTML fragments shared by the first paint and the websocket pushes.

`delta_payload` runs once per coalesced delta on the collector (under its lock) and renders
every changed piece once, whatever the number of browsers; the result is plain data (it
crosses Redis in the scale-out setup). `dashboard.grid.frames` turns it into each browser's
websocket frame. Element ids are blake2s hashes of the Kubernetes names (`grid.dom_id`):
names contain dots.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from dashboard.coverage.cells import Cell
from dashboard.coverage.grouping import ZONE_LABEL, node_pool, node_role
from dashboard.coverage.matrix import Delta, Matrix
from dashboard.coverage.rollout import column_rollout
from dashboard.coverage.states import State
from dashboard.coverage.summary import (
    ClusterSummary,
    cluster_summary,
    daemonset_summary,
    headline,
)
from dashboard.grid.model import (
    STATIC_NOTE,
    Column,
    GridFilters,
    GridView,
    Row,
    StaticCol,
    access_title,
    dom_id,
    exit_title,
    make_row,
    static_cell_key,
    visible_static_columns,
)

if TYPE_CHECKING:  # a stub-only Protocol: what get_template returns, whatever the backend
    from django.template.backends.base import _EngineTemplate


@lru_cache(maxsize=16)
def template(name: str) -> _EngineTemplate:
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
def _cell_skeleton(state: State | None, reason: str, restarts: int, flag: bool = False) -> str:
    # `flag`: out of its Service's endpoints, or a host port taken (coverage/access.py).
    cell = (
        None
        if state is None
        else Cell(state, reason, True, restarts=restarts, out_of_endpoints=flag)
    )
    return template("dashboard/_cell.html").render({**_MARKS, "cell": cell})


@lru_cache(maxsize=1024)
def _static_skeleton(state: State | None, reason: str, restarts: int) -> str:
    cell = None if state is None else Cell(state, reason, False, restarts=restarts)
    return template("dashboard/_static_cell.html").render({**_MARKS, "cell": cell})


def render_static_cell(node: str, key: str, cell: Cell | None) -> str:
    """A static-pod column's cell: not a link (there is no DaemonSet cell to open), its
    state, reason, restarts and last exit in the tooltip."""
    if cell is None:
        skeleton = _static_skeleton(None, "", 0)
    else:
        reason = cell.reason
        if cell.last_termination is not None and "last " not in reason:
            t = cell.last_termination
            reason += f"; last exit {t.reason or 'Error'} (code {t.exit_code})"
        skeleton = _static_skeleton(cell.state, reason, cell.restarts)
    return (
        skeleton.replace(_MARKS["id"], cell_id(node, static_cell_key(key)))
        .replace(_MARKS["node"], escape(node))
        .replace(_MARKS["ds"], escape(key))
    )


def render_static_colhead(col: StaticCol) -> str:
    return template("dashboard/_static_colhead.html").render({"col": col, "note": STATIC_NOTE})


def _flag(cell: Cell) -> bool:
    return cell.out_of_endpoints or cell.port_conflict


@lru_cache(maxsize=65536)
def _quoted(value: str) -> str:
    return quote(value, safe="")


def cell_id(node: str, ds_key: str) -> str:
    return f"c-{dom_id(node)}-{dom_id(ds_key)}"


def render_cell(slug: str, node: str, ds_key: str, cell: Cell | None) -> str:
    """`dashboard/_cell.html` for one (node, DaemonSet): the page and the pushes both use it."""
    if cell is None:
        skeleton = _cell_skeleton(None, "", 0)
    else:
        skeleton = _cell_skeleton(cell.state, cell.reason, cell.restarts, _flag(cell))
    return fill_cell(skeleton, _cell_base(slug), node, ds_key)


def fill_cell(skeleton: str, cell_url: str, node: str, ds_key: str) -> str:
    """A cell skeleton with its markers filled in, escaped as autoescape would (the page's
    script does the same for pushed cells: static/js/daemonviz.js `cellHtml`)."""
    href = f"{cell_url}node={_quoted(node)}&ds={_quoted(ds_key)}"
    return (
        skeleton.replace(_MARKS["id"], cell_id(node, ds_key))
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
        "tax": row.tax,
        "tax_title": row.tax_title,
        "node_events": row.node_events,
        "node_event": row.node_event,
    }


def render_rowhead(slug: str, row: Row, oob: bool = False) -> str:
    return template("dashboard/_rowhead.html").render({**row_context(slug, row), "oob": oob})


def render_row(slug: str, row: Row, cells_html: list[str] | None = None) -> SafeString:
    if cells_html is None:
        assert row.cells is not None  # build_grid fills the cells of every row it keeps
        cells_html = [render_cell(slug, row.name, col.key, cell) for col, cell in row.cells]
        cells_html += [render_static_cell(row.name, c.key, cell) for c, cell in row.static_cells]
    return row_html(row.id, row.name, row.problem, render_rowhead(slug, row), cells_html)


def row_html(
    rid: str, name: str, problem: bool, head: str, cells_html: list[str], new: bool = False
) -> SafeString:
    """`_row.html` around an already rendered (escaped) head and cells."""
    html = template("dashboard/_row.html").render(
        {
            "id": rid,
            "name": name,
            "problem": problem,
            "head": mark_safe(head),
            "cells": mark_safe("".join(cells_html)),
            "new": new,
        }
    )
    return mark_safe(html)  # template output (already a SafeString: typed as str)


def render_colhead(slug: str, column: Column, oob: bool = False) -> str:
    return template("dashboard/_colhead.html").render({"slug": slug, "col": column, "oob": oob})


# (key, label, where the number lives, how a non-zero value is marked); the overview
# cards show the same classes (details.cluster_cards).
TILES = (
    ("coverage", "coverage", "", ""),
    ("missing", "missing", "counts", "bad"),
    ("failing", "failing", "counts", "bad"),
    ("crash_looping", "crash-looping", "counts", "bad"),
    ("progressing", "progressing", "counts", "warn"),
    ("outdated", "outdated", "counts", "warn"),
    ("misscheduled", "misscheduled", "counts", "warn"),
    ("nodes_not_ready", "nodes not ready", "summary", "bad"),
    ("nodes", "nodes", "summary", "dim"),
    ("daemonsets", "DaemonSets", "summary", "dim"),
)


def _coverage_text(value: float | None) -> str:
    return "–" if value is None else f"{value}%"


def summary_tiles(
    shown: ClusterSummary, cluster: ClusterSummary, *, no_data: bool = False
) -> list[dict[str, Any]]:
    """The tiles of the grid: `shown` (the filtered view) with `cluster`'s number beside.
    Before the first sync every tile says "–": zero would claim nothing is missing."""
    tiles = []
    for key, label, where, mark in TILES:
        if key == "coverage":
            value, total = shown.counts.coverage, cluster.counts.coverage
            text, beside = _coverage_text(value), f"cluster {_coverage_text(total)}"
            level = ""
        else:
            src_shown = shown.counts if where == "counts" else shown
            src_cluster = cluster.counts if where == "counts" else cluster
            value, total = getattr(src_shown, key), getattr(src_cluster, key)
            text, beside = str(value), f"of {total} in cluster"
            level = mark if (value or mark == "dim") else ""
        if no_data:
            text, beside, level = "–", "", "dim"
        tiles.append({"key": key, "label": label, "value": text, "beside": beside, "level": level})
    return tiles


def render_summary(
    slug: str,
    matrix: Matrix,
    oob: bool = False,
    summary: ClusterSummary | None = None,
    shown: ClusterSummary | None = None,
    no_data: bool = False,
) -> str:
    """The tiles: the cluster's (`summary`), or a filtered view's (`shown`) beside them."""
    summary = cluster_summary(matrix) if summary is None else summary
    tiles = summary_tiles(shown or summary, summary, no_data=no_data)
    return template("dashboard/_summary.html").render(
        {
            "slug": slug,
            "summary": summary,
            "tiles": tiles,
            "filtered": shown is not None and not no_data,
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


def delta_payload(
    slug: str, matrix: Matrix, delta: Delta, summary: ClusterSummary
) -> dict[str, Any]:
    """The grid's part of the message the collector publishes for one coalesced delta
    (called under its lock; dashboard/pipeline.py adds the wall's part). `summary` is the
    cluster's summary after the delta."""
    removed = set(delta.removed_nodes)
    added = set(delta.added_nodes)
    # Changed cells as (names, element id, skeleton index): the page rebuilds each from the
    # skeleton (`_cell.html` rendered once per distinct state, reason and restarts) and the
    # names it already holds, so a 1,000-cell rollout frame is ~40 KB, not ~0.5 MB of
    # repeated names and links (dashboard/grid/frames.py, static/js/daemonviz.js).
    cells = []
    skeletons: dict[str, int] = {}
    for (node, ds_key), cell in delta.cells.items():
        # Cells of added/removed rows travel with their row; a None cell left with its
        # row or column (a removed column re-syncs the client).
        if cell is None or node in added or node in removed or ds_key not in matrix.daemonsets:
            continue
        skeleton = _cell_skeleton(cell.state, cell.reason, cell.restarts, _flag(cell))
        index = skeletons.setdefault(skeleton, len(skeletons))
        cells.append([node, ds_key, cell_id(node, ds_key), index])

    def column(k: str, head: bool = True) -> Column:
        ds = matrix.daemonsets[k]
        return Column(
            k,
            ds.namespace,
            ds.name,
            dom_id(k),
            daemonset_summary(matrix, k),
            access_title(matrix, ds),
            exit_title(matrix, k),
            rollout=column_rollout(matrix, k) if head else None,
        )

    # A joining row's cells need every column, but not the columns' rollouts (only a column
    # head shows one, and a rollout walks its column's pods: building every column's for
    # every delta made each frame of a rollout O(pods of the cluster)).
    rows_columns = [column(k, head=False) for k in sorted(matrix.daemonsets)] if added else []
    rows_added = []
    statics = visible_static_columns(matrix, GridFilters()) if delta.added_nodes else []
    for name in delta.added_nodes:
        if name not in matrix.nodes:
            continue
        row = make_row(matrix, name, rows_columns)
        assert row.cells is not None  # make_row fills them
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
                # Static-pod columns after the DaemonSets' (frames.oob_html keeps the
                # visible ones).
                "static_cells": [
                    [
                        col.key,
                        cell.state.value if (cell := col.cells.get(name)) else "",
                        render_static_cell(name, col.key, cell),
                    ]
                    for col in statics
                ],
            }
        )
    rows_changed = [
        {"node": name, "head": render_rowhead(slug, make_row(matrix, name, []), oob=True)}
        for name in delta.changed_nodes
        if name in matrix.nodes and name not in added
    ]
    columns_changed = [
        [key, render_colhead(slug, column(key), oob=True)]
        for key in delta.changed_daemonsets
        if key in matrix.daemonsets
    ]
    # Any cell change can move the counters.
    # A node's health (rows_changed) moves "nodes not ready" without any cell changing.
    touched = bool(cells or rows_added or delta.removed_nodes or columns_changed or rows_changed)
    return {
        "slug": slug,
        "epoch": matrix.epoch,
        "revision": delta.revision,
        "cells": cells,
        "skeletons": list(skeletons),
        "cell_url": _cell_base(slug),
        "rows_added": rows_added,
        "rows_removed": list(delta.removed_nodes),
        "rows_changed": rows_changed,
        "columns_changed": columns_changed,
        # A new or removed column changes every row's layout: simpler and safer to re-fetch.
        "resync": bool(delta.added_daemonsets or delta.removed_daemonsets),
        # A mirror pod changed: its column's cells are derived on demand, the page re-fetches
        # the grid if it shows static columns (they change when a kubelet restarts one).
        "static": bool(delta.static_changed),
        "summary": render_summary(slug, matrix, oob=True, summary=summary) if touched else "",
        "headline": headline(summary) if touched else None,
    }
