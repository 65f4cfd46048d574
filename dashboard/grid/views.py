"""Pages. Thin: they find the cluster's collector, hold its lock while reading the matrix
(the collector mutates it on another thread), and hand the work to `grid`/`fragments`/
`details`. Every page requires a signed-in user; the wall display, which requires its token
instead, lives in `wall_views` (tests/integration/test_access.py enumerates the URLs)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.gzip import gzip_page
from django_htmx.middleware import HtmxDetails

from dashboard.collect.registry import Collector, registry
from dashboard.coverage.states import State
from dashboard.coverage.summary import view_summary
from dashboard.grid import details, fleet, fragments, logs
from dashboard.grid import export as view_export
from dashboard.grid.model import (
    NO_GROUP,
    GridFilters,
    GridView,
    build_grid,
    effective_group_label,
)
from dashboard.models import Cluster


class HtmxHttpRequest(HttpRequest):
    """A request as django_htmx's HtmxMiddleware (settings.MIDDLEWARE) hands it on."""

    htmx: HtmxDetails


class ServerTiming:
    """Where a grid response's server time went, sent as a `Server-Timing` header (browsers'
    developer tools show it beside the request; bench/scaleout_bench.py reads it): finding
    the collector (on a scale-out worker, reading the Redis snapshot when it changed),
    building the view under the collector's lock, rendering, and the total."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started

    def header(self) -> str:
        total = time.perf_counter() - self.started
        parts = [f"{name};dur={secs * 1000:.1f}" for name, secs in self.phases.items()]
        return ", ".join([*parts, f"total;dur={total * 1000:.1f}"])

    def send(self, response: HttpResponse) -> HttpResponse:
        response["Server-Timing"] = self.header()
        return response


def _cluster(slug: str) -> Cluster:
    return get_object_or_404(Cluster, slug=slug)


def _group_setting(cluster: Cluster, collector: Collector) -> str:
    return collector.cluster.group_by_label or cluster.group_by_label


# --------------------------------------------------------------------------- overview


def _overview(request: HttpRequest) -> dict[str, Any]:
    """Cards, and with several clusters the fleet matrix (?sort=worst|name) and the search
    across clusters (?find=)."""
    sort = "name" if request.GET.get("sort") == "name" else "worst"
    columns = details.fleet_columns()
    return {
        "cards": details.cluster_cards(),
        "fleet": {"columns": columns, "rows": fleet.fleet_rows(columns, sort), "sort": sort},
        "found": fleet.search(columns, request.GET.get("find", "")),
    }


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/overview.html", _overview(request))


@login_required
def overview_cards(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/_cards.html", _overview(request))


# --------------------------------------------------------------------------- grid


def _summary_html(slug: str, collector: Collector, view: GridView) -> str:
    """The tiles for this view: filtered numbers with the cluster's beside, or the
    cluster's alone. Called with the collector's lock held."""
    matrix = collector.matrix
    shown = None
    if view.filters.active:
        shown = view_summary(matrix, view.matching_nodes, [c.key for c in view.columns])
    return fragments.render_summary(slug, matrix, shown=shown, no_data=details.no_data(collector))


def _grid_body(
    request: HttpRequest,
    cluster: Cluster,
    collector: Collector,
    filters: GridFilters,
    timing: ServerTiming,
) -> dict:
    """Render the #grid element. Only building the view holds the collector's lock: the view
    is a snapshot of immutable records, and rendering it (most of the time, ~0.3 s for
    20,000 cells) happens outside, so collector ticks do not wait for page loads."""
    with timing.phase("view"), collector.lock:
        matrix = collector.matrix
        view = build_grid(matrix, filters, _group_setting(cluster, collector))
        revision, epoch = matrix.revision, matrix.epoch
        status, no_data = collector.status, details.no_data(collector)
    with timing.phase("render"):
        grid_html = _render_grid(request, cluster, filters, view, revision, epoch, status, no_data)
    return {"view": view, "grid_html": grid_html}


def _render_grid(
    request: HttpRequest,
    cluster: Cluster,
    filters: GridFilters,
    view: GridView,
    revision: int,
    epoch: str,
    status: Any,
    no_data: Any,
) -> str:
    fragments.attach_html(cluster.slug, view)
    for col in view.columns:
        col.html = mark_safe(fragments.render_colhead(cluster.slug, col))  # template output
    for static in view.static_columns:
        static.html = mark_safe(fragments.render_static_colhead(static))  # template output
    body_base = reverse("grid-body", args=[cluster.slug])
    grid_html = render_to_string(
        "dashboard/_grid.html",
        {
            "cluster": cluster,
            "view": view,
            "revision": revision,
            "epoch": epoch,
            "body_base": body_base,
            "body_url": f"{body_base}?{filters.querystring()}",
            "summary_url": reverse("grid-summary", args=[cluster.slug])
            + f"?{filters.querystring(expand=())}",
            "status": status,
            "no_data": no_data,
        },
        request=request,
    )
    return mark_safe(grid_html)  # template output


# The grid is megabytes of highly repetitive HTML: gzip cuts it ~10x on the wire. (BREACH:
# the only secret on these pages is the CSRF token, which Django masks per response.)
@login_required
@gzip_page
def grid(request: HttpRequest, slug: str) -> HttpResponse:
    timing = ServerTiming()
    cluster = _cluster(slug)
    filters = GridFilters.from_query(request.GET)
    with timing.phase("snapshot"):
        collector = registry.get(slug)
    ctx: dict = {"cluster": cluster, "filters": filters, "running": collector is not None}
    # "absent" is a static-pod word only: the state filter and legend list the others.
    ctx["states"] = [s for s in State if s is not State.ABSENT]
    if collector is None:
        return render(request, "dashboard/grid.html", ctx)
    ctx.update(_grid_body(request, cluster, collector, filters, timing))
    with timing.phase("view"), collector.lock:
        matrix = collector.matrix
        ctx["status"] = collector.status
        ctx["last_update"] = collector.last_update
        ctx["skipped"] = collector.skipped_summary()
        ctx["summary_html"] = mark_safe(_summary_html(slug, collector, ctx["view"]))
        ctx["namespaces"] = sorted({ds.namespace for ds in matrix.daemonsets.values()})
        ctx["ds_keys"] = sorted(matrix.daemonsets)
        ctx["label_keys"] = sorted({k for n in matrix.nodes.values() for k in n.labels})
        group = effective_group_label(GridFilters(), matrix, _group_setting(cluster, collector))
        ctx["default_group"] = group
    # The socket learns the page's filters, with the grouping resolved, so its pushes match
    # what this page drew (new rows go into the right group).
    ws_query = filters.querystring(group=ctx["view"].group_label or NO_GROUP, expand=())
    ctx["ws_url"] = f"/ws/clusters/{slug}/grid/?{ws_query}"
    with timing.phase("render"):
        response = render(request, "dashboard/grid.html", ctx)
    return timing.send(response)


@login_required
@gzip_page
def grid_body(request: HttpRequest, slug: str) -> HttpResponse:
    """The #grid element alone: re-sync after a gap or reconnect, and group expansion."""
    timing = ServerTiming()
    cluster = _cluster(slug)
    with timing.phase("snapshot"):
        collector = registry.get(slug)
    if collector is None:
        raise Http404("no collector for this cluster")
    ctx = _grid_body(request, cluster, collector, GridFilters.from_query(request.GET), timing)
    return timing.send(HttpResponse(ctx["grid_html"]))


@login_required
def grid_summary(request: HttpRequest, slug: str) -> HttpResponse:
    """The tiles of a filtered grid (its page fetches them when a push moved the counts)."""
    cluster = _cluster(slug)
    collector = _running(slug)
    filters = GridFilters.from_query(request.GET)
    with collector.lock:
        view = build_grid(collector.matrix, filters, _group_setting(cluster, collector))
        html = _summary_html(slug, collector, view)
    return HttpResponse(html)


@login_required
def grid_status(request: HttpRequest, slug: str) -> HttpResponse:
    cluster = _cluster(slug)
    collector = registry.get(slug)
    ctx: dict[str, Any] = {"cluster": cluster, "status": None, "last_update": None}
    if collector is not None:
        with collector.lock:
            ctx["status"], ctx["last_update"] = collector.status, collector.last_update
        ctx["skipped"] = collector.skipped_summary()
    return render(request, "dashboard/_status.html", ctx)


# --------------------------------------------------------------------------- drill-downs


def _running(slug: str) -> Collector:
    collector = registry.get(slug)
    if collector is None:
        raise Http404("no collector for this cluster")
    return collector


@login_required
def cell(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    cluster = _cluster(slug)
    collector = _running(slug)
    node, ds_key = request.GET.get("node", ""), request.GET.get("ds", "")
    with collector.lock:
        ctx = details.cell_detail(collector.matrix, node, ds_key, context=cluster.context)
    if ctx is None:
        raise Http404("no such cell")
    ctx["cluster"] = cluster
    template = "dashboard/_cell_detail.html" if request.htmx else "dashboard/cell.html"
    return render(request, template, ctx)


@login_required
def cell_log(request: HttpRequest, slug: str) -> HttpResponse:
    """The crash-loop log panel of one daemon pod of a cell (grid/logs.py). Read now, for
    this signed-in user; only when an admin allowed logs for the cluster, and only for a
    pod the cell shows whose container terminated."""
    cluster = _cluster(slug)
    if not cluster.allow_logs:
        return HttpResponse(
            "Logs are off for this cluster: an admin can switch them on.", status=403
        )
    collector = _running(slug)
    node, ds_key, name = (request.GET.get(k, "") for k in ("node", "ds", "pod"))
    with collector.lock:
        pods = collector.matrix.pods_in_cell(node, ds_key)
    pod = next((p for p in pods if p.name == name), None)
    want = logs.log_request(pod) if pod is not None else None
    if want is None:
        raise Http404("no crashed daemon pod of this cell by that name")
    ctx = {
        "want": want,
        "panel": logs.read_panel(cluster, want),
        "tail_lines": logs.DEFAULT_TAIL_LINES,
        "limit_kb": logs.DEFAULT_LIMIT_BYTES // 1024,
        "timeout": f"{logs.DEFAULT_TIMEOUT:g}",
    }
    response = render(request, "dashboard/_cell_log.html", ctx)
    response["Cache-Control"] = "no-store"  # a log may hold what should not sit in caches
    return response


@login_required
def daemonset(request: HttpRequest, slug: str, namespace: str, name: str) -> HttpResponse:
    cluster = _cluster(slug)
    collector = _running(slug)
    with collector.lock:
        ctx = details.daemonset_detail(collector.matrix, f"{namespace}/{name}")
    if ctx is None:
        raise Http404("no such DaemonSet")
    ctx["cluster"] = cluster
    return render(request, "dashboard/daemonset.html", ctx)


@login_required
def node(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    cluster = _cluster(slug)
    collector = _running(slug)
    size_text = request.GET.get("size", "").strip()
    with collector.lock:
        ctx = details.node_detail(collector.matrix, name, size_text)
    if ctx is None:
        raise Http404("no such node")
    ctx["cluster"] = cluster
    return render(request, "dashboard/node.html", ctx)


# --------------------------------------------------------------------------- export

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _export(cluster: Cluster, collector: Collector, filters: GridFilters, fmt: str) -> HttpResponse:
    if fmt not in EXPORT_TYPES:
        raise Http404("export formats: csv, json")
    with collector.lock:  # copy the view's records; the rebuild runs outside the lock
        records = view_export.view_records(collector.matrix, filters)
    now = timezone.now()
    doc = view_export.view_document(records, filters, cluster=cluster.slug, generated_at=now)
    if fmt == "csv":
        body = view_export.document_csv(doc)
    else:
        body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    response = HttpResponse(body, content_type=EXPORT_TYPES[fmt])
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = (
        f'attachment; filename="daemonviz-{cluster.slug}-{stamp}.{fmt}"'
    )
    return response


@login_required
def export(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    """The grid's view (its filters from the query string) as CSV or coverage JSON."""
    cluster = _cluster(slug)
    return _export(cluster, _running(slug), GridFilters.from_query(request.GET), fmt)


@login_required
def daemonset_export(
    request: HttpRequest, slug: str, namespace: str, name: str, fmt: str
) -> HttpResponse:
    """A DaemonSet page's column, every node (plus any grid filters given), as a file."""
    cluster = _cluster(slug)
    collector = _running(slug)
    key = f"{namespace}/{name}"
    with collector.lock:
        if key not in collector.matrix.daemonsets:
            raise Http404("no such DaemonSet")
    filters = replace(GridFilters.from_query(request.GET), namespace="", daemonset=key)
    return _export(cluster, collector, filters, fmt)
