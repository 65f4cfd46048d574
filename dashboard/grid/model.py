"""What the grid shows: filters, label selectors, grouping and sorting, as plain Python.

Views and the websocket fragments both ask this module which columns and rows a client
sees, so the page and the pushes agree. Nothing here touches HTTP or templates; it works
on a `Matrix` the caller holds the collector's lock for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, TypedDict
from urllib.parse import urlencode

from django.conf import settings

from dashboard.coverage.access import daemonset_access
from dashboard.coverage.cells import Cell, NodeHealth
from dashboard.coverage.grouping import (
    ZONE_LABEL,
    default_group_label,
    natural_key,
    node_pool,
    node_role,
    proportion_bucket,
)
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import DaemonSet, Node
from dashboard.coverage.rollout import ColumnRollout, column_rollout
from dashboard.coverage.selectors import Requirement, SelectorError, parse_selector
from dashboard.coverage.states import State
from dashboard.coverage.static import StaticColumn, columns_of
from dashboard.coverage.summary import DaemonSetSummary, daemonset_summary
from dashboard.coverage.tax import compact, node_tax

NO_GROUP = "-"  # ?group=- : one flat list
# Above this many nodes, healthy groups start collapsed (the page must stay light).
BIG_CLUSTER_NODES = 500
# How many rows a collapsed big grid renders at most (split among groups).
DEFAULT_ROW_BUDGET = 400
MIN_GROUP_ROWS = 25


@lru_cache(maxsize=65536)
def dom_id(name: str) -> str:
    """A short, stable, CSS-safe token for a Kubernetes name (names contain dots)."""
    return hashlib.blake2s(name.encode(), digest_size=6).hexdigest()


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class GridFilters:
    """The grid's URL query, parsed. Unknown or malformed values are ignored, not fatal."""

    namespace: str = ""
    daemonset: str = ""  # "ns/name", or a bare name matching in any namespace
    selector: str = ""  # kubectl label selector over node labels
    state: str = ""  # "" | "problems" | a State value
    q: str = ""  # node name substring
    group: str = ""  # node label key to group by; "" = the default; "-" = none
    sort: str = "name"  # name | problems
    expand: tuple[str, ...] = ()  # ids of collapsed groups the user opened ("*" = all)
    static: str = ""  # "" shows the static-pod columns, "hide" leaves them out

    FIELDS = ("namespace", "daemonset", "selector", "state", "q", "group", "sort", "static")

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> GridFilters:
        def get(name: str) -> str:
            value = query.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        state = get("state")
        if state not in ("", "problems") and state not in State._value2member_map_:
            state = ""
        sort = get("sort") if get("sort") in ("name", "problems") else "name"
        static = "hide" if get("static") == "hide" else ""
        expand = query.getlist("expand") if hasattr(query, "getlist") else []
        return cls(
            namespace=get("namespace"),
            daemonset=get("daemonset"),
            selector=get("selector"),
            state=state,
            q=get("q"),
            group=get("group"),
            sort=sort,
            expand=tuple(e for e in expand if e),
            static=static,
        )

    def query_items(self, *, with_expand: bool = True) -> list[tuple[str, str]]:
        items = [(f, getattr(self, f)) for f in self.FIELDS if getattr(self, f)]
        items = [(k, v) for k, v in items if not (k == "sort" and v == "name")]
        if with_expand:
            items += [("expand", e) for e in self.expand]
        return items

    def querystring(self, **overrides: Any) -> str:
        return urlencode(replace(self, **overrides).query_items())

    @property
    def active(self) -> bool:
        return bool(self.namespace or self.daemonset or self.selector or self.state or self.q)

    # ---------------------------------------------------------------- predicates

    def column_visible(self, ds_key: str) -> bool:
        namespace, _, name = ds_key.partition("/")
        if self.namespace and namespace != self.namespace:
            return False
        if self.daemonset:
            return ds_key == self.daemonset if "/" in self.daemonset else name == self.daemonset
        return True

    def static_visible(self, key: str) -> bool:
        """A static column follows the namespace and name filters like a DaemonSet's."""
        return self.static != "hide" and self.column_visible(key)

    def requirements(self) -> tuple[Requirement, ...]:
        return parse_selector(self.selector) if self.selector else ()

    def node_visible(
        self, name: str, labels: Mapping[str, str], reqs: Iterable[Requirement] | None = None
    ) -> bool:
        """Name search and label selector: what a row needs regardless of its cells."""
        if self.q and self.q.lower() not in name.lower():
            return False
        reqs = self.requirements() if reqs is None else reqs
        return all(r.matches(labels) for r in reqs)

    def cell_matches_state(self, cell: Cell) -> bool:
        if self.state == "problems":
            return cell.state.is_problem
        return not self.state or cell.state.value == self.state


# --------------------------------------------------------------------------- grouping


def effective_group_label(filters: GridFilters, matrix: Matrix, configured: str = "") -> str:
    if filters.group == NO_GROUP:
        return ""
    return filters.group or configured or default_group_label(matrix.nodes.values())


# --------------------------------------------------------------------------- the grid model


@dataclass
class Column:
    key: str
    namespace: str
    name: str
    id: str
    summary: DaemonSetSummary
    access: str = ""  # how clients reach it, one line for the header's tooltip
    exits: str = ""  # its commonest identical exit, for the tooltip ("same exit (137, …")
    html: str = ""  # filled by the view (fragments.render_colhead)
    # The revision map in one line and, during a rollout, what holds it (coverage/rollout.py)
    rollout: ColumnRollout | None = None


STATIC_NOTE = (
    "static pod: managed by the kubelet from a manifest file on the node, not by a "
    "DaemonSet; the API cannot create or fix it"
)


@dataclass
class StaticCol:
    """A static-pod column (coverage/static.py): mirror pods of one manifest, per node."""

    key: str  # namespace/component
    namespace: str
    name: str
    id: str
    cells: dict[str, Cell]  # node -> cell, every node
    present: int
    problems: int
    images: tuple[str, ...]
    html: str = ""  # filled by the view (fragments.render_static_colhead)

    @property
    def title(self) -> str:
        images = f"; image {', '.join(self.images)}" if self.images else ""
        problems = f", {self.problems} with problems" if self.problems else ""
        return (
            f"{self.key} — {STATIC_NOTE}. Runs on {self.present} of {len(self.cells)} "
            f"nodes{problems}{images}"
        )


def static_cell_key(key: str) -> str:
    """What a static column's cells are named by in element ids (never a DaemonSet's)."""
    return f"static:{key}"


def static_col(col: StaticColumn) -> StaticCol:
    problems = sum(1 for c in col.cells.values() if c.state.is_problem)
    return StaticCol(
        col.key,
        col.namespace,
        col.name,
        dom_id(static_cell_key(col.key)),
        col.cells,
        len(col.pods),
        problems,
        col.images,
    )


def visible_static_columns(matrix: Matrix, filters: GridFilters) -> list[StaticCol]:
    if filters.static == "hide" or not matrix.static_pods:
        return []
    return [static_col(c) for c in columns_of(matrix) if filters.static_visible(c.key)]


@dataclass
class Row:
    name: str
    id: str
    node: Node
    health: NodeHealth
    cells: list[tuple[Column, Cell | None]] | None  # None until the row is to be rendered
    worst: int  # highest cell severity among the visible columns
    problems: int
    group: str
    html: str = ""  # filled by fragments.attach_html
    static_cells: list[tuple[StaticCol, Cell | None]] = field(default_factory=list)
    tax: str = ""  # the DaemonSet tax in a word ("9%") and in a sentence, for the row head
    tax_title: str = ""
    node_events: str = ""  # how many of the node's own events are kept, and the newest
    node_event: str = ""

    @property
    def pool(self) -> str:
        return node_pool(self.node.labels)

    @property
    def zone(self) -> str:
        return self.node.labels.get(ZONE_LABEL, "")

    @property
    def role(self) -> str:
        return node_role(self.node.labels)

    @property
    def problem(self) -> bool:
        return self.problems > 0 or not self.health.healthy or self.health.cordoned


@dataclass
class Proportion:
    """One column of a collapsed group's summary row."""

    healthy: int = 0
    outdated: int = 0
    progressing: int = 0
    bad: int = 0  # failing, missing, misscheduled
    idle: int = 0

    @property
    def total(self) -> int:
        return self.healthy + self.outdated + self.progressing + self.bad + self.idle

    def pct(self, n: int) -> float:
        return round(100.0 * n / self.total, 1) if self.total else 0.0

    @property
    def pct_healthy(self) -> float:
        return self.pct(self.healthy)

    @property
    def pct_outdated(self) -> float:
        return self.pct(self.outdated)

    @property
    def pct_progressing(self) -> float:
        return self.pct(self.progressing)

    @property
    def pct_bad(self) -> float:
        return self.pct(self.bad)

    @property
    def title(self) -> str:
        parts = [
            (self.healthy, "healthy"),
            (self.outdated, "outdated"),
            (self.progressing, "progressing"),
            (self.bad, "failing/missing"),
            (self.idle, "not targeted"),
        ]
        return ", ".join(f"{n} {w}" for n, w in parts if n) or "no nodes"


@dataclass
class Group:
    value: str  # the label value; "" for nodes without the label
    id: str
    rows: list[Row] = field(default_factory=list)  # rows to render
    total: int = 0  # matching rows in the group, rendered or not
    problem_rows: int = 0
    collapsed: bool = False
    hidden_rows: int = 0  # rows left out while collapsed
    hidden_problems: int = 0  # of which problem rows (over the row budget)
    proportions: list[Proportion] = field(default_factory=list)
    expand_query: str = ""  # the grid's query with this group opened


@dataclass
class GridView:
    columns: list[Column]
    groups: list[Group]
    group_label: str
    filters: GridFilters
    nodes_total: int
    rows_matching: int
    rows_rendered: int
    big: bool
    capped: bool = False  # some problem rows were left out too (row budget)
    error: str = ""
    matching_nodes: list[str] = field(default_factory=list)  # every row the filters let in
    static_columns: list[StaticCol] = field(default_factory=list)  # after the DaemonSets

    @property
    def all_columns(self) -> int:
        return len(self.columns) + len(self.static_columns)


def access_title(matrix: Matrix, ds: DaemonSet) -> str:
    """The column head's access paths: Services (DNS name, ports → container ports), host
    ports, and how many running daemons their Service's clients miss."""
    a = daemonset_access(matrix.access, ds, matrix.daemonsets, settings.DAEMONVIZ_CLUSTER_DOMAIN)
    if a.empty:
        return ""
    parts = []
    for s in a.services:
        ports = ", ".join(
            f"{p.port}→{p.target}"
            + (f" ({p.container_port})" if isinstance(p.target, str) and p.container_port else "")
            for p in s.ports
        )
        kind = "headless" if s.headless else s.type
        local = ", internalTrafficPolicy Local" if s.internal_traffic_policy == "Local" else ""
        parts.append(f"Service {s.dns} ({kind}{local}) {ports}".rstrip())
    if a.host_ports:
        parts.append("host ports " + ", ".join(f"{p.protocol}/{p.port}" for p in a.host_ports))
    if a.host_network:
        parts.append("hostNetwork")
    counts = matrix.ds_counts.get(ds.key)
    out = counts["out-of-endpoints"] if counts else 0
    if out:
        parts.append(f"{out} running daemon(s) out of their Service's endpoints")
    parts += a.notes
    return "; ".join(parts)


def exit_title(matrix: Matrix, ds_key: str) -> str:
    """The column's commonest identical exit, when more than one node shares it:
    `same exit (137, OOMKilled) of agent on 12 nodes`. From the matrix's running counts."""
    exits = matrix.ds_exits.get(ds_key)
    if not exits:
        return ""
    key, n = max(exits.items(), key=lambda item: (item[1], item[0]))
    return f"same {key.words} of {key.container} on {n} nodes" if n > 1 else ""


def visible_columns(matrix: Matrix, filters: GridFilters) -> list[Column]:
    return [
        Column(
            key,
            ds.namespace,
            ds.name,
            dom_id(key),
            daemonset_summary(matrix, key),
            access_title(matrix, ds),
            exit_title(matrix, key),
            rollout=column_rollout(matrix, key),
        )
        for key, ds in sorted(matrix.daemonsets.items())
        if filters.column_visible(key)
    ]


# Plain dict lookups: the row scan runs 150,000 times on a 5,000 × 30 grid.
_SEVERITY = {s: s.severity for s in State}
_PROBLEM = frozenset(s for s in State if s.is_problem)
_STATE_VALUES = tuple((s, s.value) for s in State)
_BUCKET = {s: proportion_bucket(s) for s in State}


def make_row(matrix: Matrix, name: str, columns: list[Column], group: str = "") -> Row:
    get = matrix.cells.get
    cells = [(col, get((name, col.key))) for col in columns]
    worst = problems = 0
    for _, c in cells:
        if c is not None:
            state = c.state
            worst = max(worst, _SEVERITY[state])
            problems += state in _PROBLEM
    return Row(
        name=name,
        id=dom_id(name),
        node=matrix.nodes[name],
        health=matrix.health[name],
        cells=cells,
        worst=worst,
        problems=problems,
        group=group,
        **_tax(matrix, name),
    )


class _RowTax(TypedDict):
    tax: str
    tax_title: str
    node_events: str
    node_event: str


def _tax(matrix: Matrix, name: str) -> _RowTax:
    tax = node_tax(matrix, name)
    events = matrix.events.of(("Node", "", name))
    newest = f"{events[0].reason}: {events[0].message}" if events else ""
    return {
        "tax": compact(tax),
        "tax_title": tax.summary(),
        "node_events": str(len(events)) if events else "",
        "node_event": newest[:300],
    }


def _row_from_counters(matrix: Matrix, name: str, group: str) -> Row:
    counts: Mapping[str, int] = matrix.node_counts.get(name, {})
    present = [s for s, v in _STATE_VALUES if counts.get(v)]
    return Row(
        name=name,
        id=dom_id(name),
        node=matrix.nodes[name],
        health=matrix.health[name],
        cells=None,
        worst=max((_SEVERITY[s] for s in present), default=0),
        problems=sum(counts[s.value] for s in present if s in _PROBLEM),
        group=group,
        **_tax(matrix, name),
    )


def _tally_proportions(
    matrix: Matrix, columns: list[Column], groups: dict[str, Group], member: dict[str, str]
) -> None:
    index = {col.key: i for i, col in enumerate(columns)}
    tallies = {value: [[0] * 5 for _ in columns] for value in groups}
    per_node = {node: tallies[value] for node, value in member.items()}
    bucket = _BUCKET
    for (node, ds_key), cell in matrix.cells.items():
        tally = per_node.get(node)
        if tally is not None:
            i = index.get(ds_key)
            if i is not None:
                tally[i][bucket[cell.state]] += 1
    for value, group in groups.items():
        group.proportions = [Proportion(*t) for t in tallies[value]]


def build_grid(
    matrix: Matrix,
    filters: GridFilters,
    configured_group: str = "",
    big_threshold: int = BIG_CLUSTER_NODES,
) -> GridView:
    """Columns, grouped and sorted rows, and which groups start collapsed."""
    columns = visible_columns(matrix, filters)
    statics = visible_static_columns(matrix, filters)
    group_label = effective_group_label(filters, matrix, configured_group)
    error = ""
    try:
        reqs = filters.requirements()
    except SelectorError as exc:
        error, reqs = str(exc), ()
    big = len(matrix.nodes) > big_threshold
    groups, member = _group_rows(matrix, filters, columns, group_label, reqs)
    if big:  # proportions are only drawn for collapsed groups: one pass over the cells
        _tally_proportions(matrix, columns, groups, member)

    ordered = sorted(groups.values(), key=lambda g: (g.value == "", natural_key(g.value)))
    row_key = _by_name
    if filters.sort == "problems":
        ordered.sort(key=lambda g: -max((r.worst for r in g.rows), default=0))
        row_key = _problems_first
    rendered = 0
    capped = False
    # A broken big cluster can have thousands of problem rows: share a row budget among
    # the collapsed groups, worst rows first, so the default page stays light.
    share = max(MIN_GROUP_ROWS, DEFAULT_ROW_BUDGET // max(len(ordered), 1))
    for group in ordered:
        group.rows.sort(key=row_key)
        opened = "*" in filters.expand or group.id in filters.expand
        # Big clusters: show problem rows only, unless the user opened the group; the
        # summary row stands for the rest (5,000 × 30 cells would not stay responsive).
        if big and not opened:
            capped = _collapse(group, filters, share) or capped
        rendered += len(group.rows)
        for row in group.rows:
            if row.cells is None:
                row.cells = [(col, matrix.cells.get((row.name, col.key))) for col in columns]
            row.static_cells = [(col, col.cells.get(row.name)) for col in statics]
    return GridView(
        columns=columns,
        groups=ordered,
        group_label=group_label,
        filters=filters,
        nodes_total=len(matrix.nodes),
        rows_matching=sum(g.total for g in ordered),
        rows_rendered=rendered,
        big=big,
        capped=capped,
        error=error,
        matching_nodes=list(member),
        static_columns=statics,
    )


def _group_rows(
    matrix: Matrix,
    filters: GridFilters,
    columns: list[Column],
    group_label: str,
    reqs: tuple[Requirement, ...],
) -> tuple[dict[str, Group], dict[str, str]]:
    """The row scan: every node the filters let through, as a row in the group of its
    `group_label` value; and node -> group value of those rows (for the proportions)."""
    groups: dict[str, Group] = {}
    # With every column shown and no state filter, a row's problems come from the matrix's
    # per-node counters (O(states)); its cells are only looked up if it is rendered.
    from_counters = not filters.state and len(columns) == len(matrix.daemonsets)
    member: dict[str, str] = {}
    for name, node in matrix.nodes.items():
        if not filters.node_visible(name, node.labels, reqs):
            continue
        value = node.labels.get(group_label, "") if group_label else ""
        if from_counters:
            row = _row_from_counters(matrix, name, value)
        else:
            row = make_row(matrix, name, columns, value)
            assert row.cells is not None  # make_row fills them
            if filters.state and not any(
                c is not None and filters.cell_matches_state(c) for _, c in row.cells
            ):
                continue
        group = groups.get(value)
        if group is None:
            group = groups[value] = Group(value, dom_id("group:" + value))
        group.rows.append(row)
        group.total += 1
        group.problem_rows += row.problem
        member[name] = value
    return groups, member


def _by_name(r: Row) -> tuple[Any, ...] | list[Any]:
    return natural_key(r.name)


def _problems_first(r: Row) -> tuple[Any, ...] | list[Any]:
    return (-r.worst, -r.problems, natural_key(r.name))


def _collapse(group: Group, filters: GridFilters, share: int) -> bool:
    """Keep a collapsed group's problem rows only, at most `share` of them (the worst);
    the group's summary row stands for the rest. True when problem rows were left out."""
    kept = [r for r in group.rows if r.problem]
    capped = len(kept) > share
    if capped:
        worst = set(map(id, sorted(kept, key=lambda r: (-r.worst, -r.problems))[:share]))
        kept = [r for r in kept if id(r) in worst]
        group.hidden_problems = group.problem_rows - len(kept)
    group.hidden_rows = len(group.rows) - len(kept)
    group.collapsed = group.hidden_rows > 0
    group.rows = kept
    group.expand_query = replace(filters, expand=(*filters.expand, group.id)).querystring()
    return capped
