"""`/metrics` (Prometheus text format), `/healthz` and `/readyz`.

Metrics come from a registry of our own (not prometheus_client's global one, which would
add the process collectors of whatever imported it first): custom collectors read the
matrices at scrape time — this process's collectors in the embedded default, the snapshots
in Redis on a scale-out web worker — so every web worker reports the same cluster
numbers. Watch counters (lists, reconnects, events, last event age) come from the kube
reflectors, through the collector's status report in scale-out. Websocket clients are
counted per process (ASGI middleware `count_websockets`).

Access: /metrics is open by default, as Prometheus scrapes without credentials; it shows
cluster, DaemonSet and namespace names and counts, nothing else. Keep it on the internal
network, or set DAEMONVIZ_METRICS_TOKEN to require `Authorization: Bearer <token>`
(Prometheus: `authorization: {credentials: …}`). /healthz and /readyz are always open
(probes) and say nothing about clusters beyond "fresh or not".
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.collect.embedded import ASGIApp, Receive, Scope, Send
from dashboard.collect.locks import redis_client
from dashboard.collect.registry import Collector as RegisteredCollector
from dashboard.collect.registry import registry
from dashboard.coverage.records import KINDS
from dashboard.coverage.states import State
from dashboard.coverage.summary import cluster_summary, daemonset_summary
from dashboard.history import recorder as history
from dashboard.kube.connection import ConnectionState
from dashboard.models import Cluster
from dashboard.pipeline import embedded

REGISTRY = CollectorRegistry(auto_describe=False)

WEBSOCKET_CLIENTS = Gauge(
    "daemonviz_websocket_clients",
    "Open websocket connections in this process, by kind (grid, wall).",
    ["kind"],
    registry=REGISTRY,
)
for _kind in ("grid", "wall"):
    WEBSOCKET_CLIENTS.labels(_kind)


def _enabled_slugs() -> list[str]:
    return list(Cluster.objects.filter(enabled=True).values_list("slug", flat=True))


# Per-DaemonSet and per-cluster cell counters: (metric name part, what the nodes are).
_COUNTS = (
    ("targeted", "targeted by the DaemonSet"),
    ("healthy", "healthy (outdated included)"),
    ("missing", "missing: eligible, no daemon pod"),
    ("crash_looping", "crash-looping"),
    ("failing", "failing (crash loop, image/init/config error, failed, unschedulable)"),
    ("outdated", "healthy but on an older revision"),
)
# Cells in these states get a daemonviz_problem_cell series of their own: targeted, and no
# daemon serving there (the cells history counts as gap-minutes). Healthy, outdated,
# progressing and untargeted cells get none, so the series count follows the problems,
# not the cluster's size.
PROBLEM_STATES = frozenset(
    {
        State.MISSING,
        State.FAILED,
        State.UNSCHEDULABLE,
        State.INIT_ERROR,
        State.IMAGE_ERROR,
        State.CONFIG_ERROR,
        State.CRASH_LOOPING,
        State.NOT_READY,
        State.MISSCHEDULED,
    }
)


class ProblemClock:
    """When this process first saw each problem cell in its current state, so that
    daemonviz_problem_cell can say for how long. The matrix keeps no per-cell timestamp;
    the first scrape that sees a cell starts its clock, and a cell that leaves the state
    (or the cluster) is forgotten at the next scrape. A restarted web worker starts from
    zero: alert rules use `for:` on top, which Prometheus keeps across scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[tuple[str, str, str, str], float] = {}

    def ages(
        self, slug: str, problems: list[tuple[str, str, str]], now: float
    ) -> list[tuple[str, str, str, float]]:
        """(daemonset, node, state, seconds) for one cluster's current problem cells."""
        with self._lock:
            keep = {(slug, *p) for p in problems}
            for key in [k for k in self._since if k[0] == slug and k not in keep]:
                del self._since[key]
            out = []
            for key in sorted(keep):
                since = self._since.setdefault(key, now)
                out.append((key[1], key[2], key[3], now - since))
            return out

    def forget(self, keep_slugs: set[str]) -> None:
        with self._lock:
            for key in [k for k in self._since if k[0] not in keep_slugs]:
                del self._since[key]


problem_clock = ProblemClock()


# The states daemonviz_collector_state has a sample for, in this order (STOPPED has none).
_REPORTED_STATES = (
    ConnectionState.CONNECTING,
    ConnectionState.SYNCED,
    ConnectionState.STALE,
    ConnectionState.FAILED,
    ConnectionState.CRASHED,
)


class _CoverageFamilies:
    """The metric families of one scrape, empty until `add` fills them per cluster; they
    iterate in the order the scrape shows them."""

    def __init__(self) -> None:
        g = GaugeMetricFamily
        ds_labels = ["cluster", "daemonset"]
        self.cov = g(
            "daemonviz_coverage_ratio", "Healthy ÷ targeted nodes (0–1).", labels=ds_labels
        )
        self.per_ds = {
            name: g(
                f"daemonviz_daemonset_{name}_nodes",
                f"Nodes whose cell is {text}.",
                labels=ds_labels,
            )
            for name, text in _COUNTS
        }
        cl = ["cluster"]
        self.cl_cov = g(
            "daemonviz_cluster_coverage_ratio", "Healthy ÷ targeted cells (0–1).", labels=cl
        )
        self.cl_cells = {
            name: g(f"daemonviz_cluster_{name}_cells", f"Cells that are {name}.", labels=cl)
            for name, _ in _COUNTS
        }
        self.sizes = g(
            "daemonviz_cluster_objects", "Objects in the matrix.", labels=["cluster", "kind"]
        )
        self.synced = g("daemonviz_collector_synced", "1 when the collector is in sync.", labels=cl)
        self.state = g(
            "daemonviz_collector_state",
            "The collector's state (1 = current).",
            labels=["cluster", "state"],
        )
        self.revision = g("daemonviz_matrix_revision", "The matrix revision shown.", labels=cl)
        self.skipped = g(
            "daemonviz_skipped_objects",
            "Objects left out because they cannot be decoded or classified (by kind).",
            labels=["cluster", "kind"],
        )
        self.heartbeat = g(
            "daemonviz_collector_heartbeat_age_seconds",
            "Seconds since the collector process last reported (scale-out).",
            labels=cl,
        )
        wl = ["cluster", "resource"]
        counter = CounterMetricFamily
        self.lists = counter("daemonviz_watch_lists", "Full lists (the first included).", labels=wl)
        self.relists = counter("daemonviz_watch_relists", "Lists after the first one.", labels=wl)
        self.streamed_lists = counter(
            "daemonviz_watch_streamed_lists",
            "Lists made as a WatchList stream (sendInitialEvents), included in the lists.",
            labels=wl,
        )
        self.reconnects = counter(
            "daemonviz_watch_reconnects", "Watch requests after the first one.", labels=wl
        )
        self.events = counter("daemonviz_watch_events", "Watch events received.", labels=wl)
        self.errors = counter("daemonviz_watch_errors", "Failed list/watch requests.", labels=wl)
        self.history_resets = counter(
            "daemonviz_watch_history_resets",
            "Lists afresh because the API server's resourceVersion went back (etcd restore).",
            labels=wl,
        )
        self.event_age = g(
            "daemonviz_watch_last_event_age_seconds",
            "Seconds since the last watch event or bookmark (event lag bound).",
            labels=wl,
        )
        self.problem = g(
            "daemonviz_problem_cell",
            "Seconds this problem cell has been in its state (as seen by this process); "
            "one series per problem cell only.",
            labels=["cluster", "daemonset", "node", "state"],
        )
        self.problem_dropped = g(
            "daemonviz_problem_cells_dropped",
            "Problem cells beyond DAEMONVIZ_METRICS_PROBLEM_CELLS, without a series.",
            labels=cl,
        )

    def __iter__(self) -> Iterator[Metric]:
        yield self.cov
        yield from self.per_ds.values()
        yield self.cl_cov
        yield from self.cl_cells.values()
        yield from (self.sizes, self.synced, self.state, self.revision, self.heartbeat)
        yield self.skipped
        yield from (self.lists, self.relists, self.streamed_lists, self.reconnects)
        yield from (self.events, self.errors)
        yield self.history_resets
        yield self.event_age
        yield from (self.problem, self.problem_dropped)

    def add(self, slug: str, collector: RegisteredCollector, now: float) -> None:
        """One cluster's samples: its matrix's counters, read under the collector's lock,
        then the collector's own state and its watches."""
        with collector.lock:
            matrix = collector.matrix
            summary = cluster_summary(matrix)
            ds_rows = [daemonset_summary(matrix, k) for k in sorted(matrix.daemonsets)]
            rev = matrix.revision
            problems = [
                (cell.state, ds_key, node)
                for (node, ds_key), cell in matrix.cells.items()
                if cell.state in PROBLEM_STATES
            ]
        self._add_problems(slug, problems, now)
        for s in ds_rows:
            labels = [slug, s.key]
            c = s.counts
            if c.targeted:
                self.cov.add_metric(labels, c.healthy / c.targeted)
            for name, family in self.per_ds.items():
                family.add_metric(labels, getattr(c, name))
        c = summary.counts
        if c.targeted:
            self.cl_cov.add_metric([slug], c.healthy / c.targeted)
        for name, family in self.cl_cells.items():
            family.add_metric([slug], getattr(c, name))
        for kind, n in (
            ("nodes", summary.nodes),
            ("daemonsets", summary.daemonsets),
            ("pods", summary.pods),
        ):
            self.sizes.add_metric([slug, kind], n)
        self._add_collector(slug, collector, rev, now)

    def _add_problems(self, slug: str, problems: list[tuple[State, str, str]], now: float) -> None:
        """The worst problem cells first (then by name, stable), up to the bound."""
        limit = max(0, settings.DAEMONVIZ_METRICS_PROBLEM_CELLS)
        problems.sort(key=lambda p: (-p[0].info.severity, p[1], p[2]))
        kept = [(ds_key, node, str(state)) for state, ds_key, node in problems[:limit]]
        for ds_key, node, state, age in problem_clock.ages(slug, kept, now):
            self.problem.add_metric([slug, ds_key, node, state], age)
        self.problem_dropped.add_metric([slug], len(problems) - len(kept))

    def _add_collector(
        self, slug: str, collector: RegisteredCollector, rev: int, now: float
    ) -> None:
        status = collector.status
        self.synced.add_metric([slug], 1.0 if status.state == ConnectionState.SYNCED else 0.0)
        for st in _REPORTED_STATES:
            self.state.add_metric([slug, st], 1.0 if status.state == st else 0.0)
        self.revision.add_metric([slug], rev)
        skipped = collector.skipped_summary().by_kind
        for kind in KINDS:  # every kind, zeros included: alert rules need the series
            self.skipped.add_metric([slug, kind], skipped.get(kind, 0))
        age = collector.heartbeat_age
        if age is not None:
            self.heartbeat.add_metric([slug], age)
        for resource, w in sorted(collector.watch_stats().items()):
            labels = [slug, resource]
            self.lists.add_metric(labels, w.lists)
            self.relists.add_metric(labels, max(0, w.lists - 1))
            self.streamed_lists.add_metric(labels, w.streamed_lists)
            self.reconnects.add_metric(labels, max(0, w.watches - 1))
            self.events.add_metric(labels, w.events)
            self.errors.add_metric(labels, w.errors)
            self.history_resets.add_metric(labels, w.history_resets)
            if w.last_event_at:
                self.event_age.add_metric(labels, max(0.0, now - w.last_event_at))


class CoverageCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        families = _CoverageFamilies()
        now = time.time()
        slugs = _enabled_slugs()
        for slug in slugs:
            collector = registry.get(slug)
            if collector is not None:
                families.add(slug, collector, now)
        problem_clock.forget(set(slugs))
        yield from families


class HistoryCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily(
            "daemonviz_history_rows_written", "Coverage history rows written by this process."
        )
        c.add_metric([], history.rows_written())
        yield c


REGISTRY.register(CoverageCollector())
REGISTRY.register(HistoryCollector())


# --------------------------------------------------------------------------- views


def _authorized(request: HttpRequest) -> bool:
    token = settings.DAEMONVIZ_METRICS_TOKEN
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        response = HttpResponse("bearer token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="daemonviz metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and serving (liveness): no dependency checked."""
    return JsonResponse({"status": "ok"})


def _check_db() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    redis_client().ping()
    return "ok"


def _collectors() -> tuple[bool, dict[str, str]]:
    """(ready, state per cluster). Embedded: every enabled cluster has a collector that
    has started; scale-out: reported per cluster, fresh or stale, not fatal (see below)."""
    clusters = {}
    for slug in _enabled_slugs():
        c = registry.get(slug)
        if c is None:
            clusters[slug] = "no collector"
        elif c.remote:
            clusters[slug] = "fresh" if c.fresh else "stale"
        else:
            clusters[slug] = c.status.state
    if settings.DAEMONVIZ_EMBEDDED_COLLECTOR:
        ready = embedded.started and "no collector" not in clusters.values()
    else:
        # A dead collector must not take every web worker out of the Service: the pages
        # keep the last known matrix and say it is stale. Alert on
        # daemonviz_collector_heartbeat_age_seconds instead.
        ready = True
    return ready, clusters


_ready_lock = threading.Lock()


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready to serve: database reachable, Redis reachable (when configured), collectors
    running (embedded) or their snapshots' freshness (scale-out; reported, not fatal)."""
    checks: dict[str, object] = {}
    ok = True
    for name, check in (("database", _check_db), ("redis", _check_redis)):
        try:
            checks[name] = check()
        except Exception as exc:
            checks[name] = f"failed: {type(exc).__name__}"
            ok = False
    if checks.get("database") == "ok":
        try:
            ready, clusters = _collectors()
            checks["collectors"] = clusters
            ok = ok and ready
        except Exception as exc:
            checks["collectors"] = f"failed: {type(exc).__name__}"
            ok = False
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


# --------------------------------------------------------------------------- probe hosts

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ProbeHostMiddleware:
    """Kubelet probes and Prometheus reach a pod by its IP (`Host: 10.1.2.3:8000`), which
    is in no ALLOWED_HOSTS. These three paths build no URL from the Host header, so for
    them alone it is replaced with the first allowed host before Django validates it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in PROBE_PATHS and settings.ALLOWED_HOSTS:
            host = settings.ALLOWED_HOSTS[0].lstrip(".")
            request.META["HTTP_HOST"] = "localhost" if host in ("", "*") else host
        return self.get_response(request)


# --------------------------------------------------------------------------- websockets


def count_websockets(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: the websocket clients gauge, by path (grid or wall)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await app(scope, receive, send)
        gauge = WEBSOCKET_CLIENTS.labels(
            "wall" if scope.get("path", "").startswith("/ws/wall/") else "grid"
        )
        accepted = False

        async def counting_send(message: MutableMapping[str, Any]) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                gauge.inc()
            elif message["type"] == "websocket.close" and accepted:
                accepted = False
                gauge.dec()
            await send(message)

        try:
            return await app(scope, receive, counting_send)
        finally:
            if accepted:
                gauge.dec()

    return wrapped
