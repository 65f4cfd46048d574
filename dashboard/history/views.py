"""Coverage history pages (sign-in required, like every dashboard page): gap-minutes per
DaemonSet for a cluster, and a timeline per DaemonSet and per node. See dashboard/history/recorder.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from dashboard.coverage.timefmt import utcnow
from dashboard.history import charts
from dashboard.history import timeline as history
from dashboard.models import Cluster

WINDOWS = (1, 6, 24, 72, 168)  # hours offered; any ?hours= within retention is accepted


def _hours(request: HttpRequest) -> float:
    try:
        hours = float(request.GET.get("hours", "24"))
    except ValueError:
        hours = 24.0
    if hours != hours:  # NaN
        hours = 24.0
    return min(max(hours, 0.1), 24.0 * max(1, settings.DAEMONVIZ_HISTORY_DAYS))


def _fmt(td: timedelta) -> str:
    s = int(td.total_seconds())
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _bars(tl: history.Timeline, by: str, url: Callable[[str], str]) -> list[dict]:
    """One lane per node (DaemonSet page) or DaemonSet (node page): segments positioned in
    percent of the window, for a CSS-only timeline."""
    span = (tl.end - tl.start).total_seconds() or 1.0
    lanes: dict[str, list[dict]] = {}
    no_data = _no_data_segment(tl.start, tl.end, tl.recorded_from)
    for e in tl.episodes:
        a = max(e.start, tl.start)
        b = min(e.end or tl.end, tl.end)
        lanes.setdefault(getattr(e, by), []).append(
            {
                "left": round(100 * (a - tl.start).total_seconds() / span, 3),
                "width": max(0.3, round(100 * (b - a).total_seconds() / span, 3)),
                "state": e.state,
                "title": f"{e.label}: {a:%H:%M:%S} → {'now' if e.end is None else f'{b:%H:%M:%S}'}",
            }
        )
    order = sorted(lanes, key=lambda k: (-tl.gap_seconds.get(k, 0.0), k))
    return [
        {
            "name": k,
            "segments": ([no_data] if no_data else []) + lanes[k],
            "gap": tl.gap_minutes.get(k, 0.0),
            "url": url(k),
        }
        for k in order
    ]


def _no_data_segment(start: datetime, end: datetime, recorded: datetime | None) -> dict | None:
    """The part of a window before recording started, drawn hatched: unknown, not healthy."""
    until = end if recorded is None else recorded
    if until <= start:
        return None
    span = (end - start).total_seconds() or 1.0
    return {
        "left": 0.0,
        "width": round(100 * (until - start).total_seconds() / span, 3),
        "state": "nodata",
        "title": f"no data: nothing was recorded {start:%H:%M} → {until:%H:%M} (no collector ran)",
    }


def _episodes(tl: history.Timeline) -> list[dict]:
    return [
        {"e": e, "duration": _fmt(e.duration(tl.end)), "ongoing": e.end is None}
        for e in tl.episodes
    ]


def _context(
    request: HttpRequest, cluster: Cluster, tl: history.Timeline, hours: float, **extra: Any
) -> dict:
    return {
        "cluster": cluster,
        "hours": hours,
        "windows": WINDOWS,
        "timeline": tl,
        "episodes": _episodes(tl),
        "total_gap_minutes": round(sum(tl.gap_seconds.values()) / 60.0, 1),
        "retention_days": settings.DAEMONVIZ_HISTORY_DAYS,
        "recording": settings.DAEMONVIZ_HISTORY,
        **extra,
    }


@login_required
def daemonset_history(request: HttpRequest, slug: str, namespace: str, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, slug=slug)
    hours = _hours(request)
    ds_key = f"{namespace}/{name}"
    tl = history.timeline(cluster, daemonset=ds_key, hours=hours)
    ctx = _context(request, cluster, tl, hours, ds_key=ds_key, namespace=namespace, name=name)
    ctx["lanes"] = _bars(tl, "node", lambda n: reverse("node-history", args=[slug, n]))
    ctx["lane_kind"] = "nodes"
    return render(request, "dashboard/history_daemonset.html", ctx)


@login_required
def node_history(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, slug=slug)
    hours = _hours(request)
    tl = history.timeline(cluster, node=name, hours=hours)
    ctx = _context(request, cluster, tl, hours, name=name)
    ctx["lanes"] = _bars(
        tl, "daemonset", lambda k: reverse("daemonset-history", args=[slug, *k.split("/", 1)])
    )
    ctx["lane_kind"] = "DaemonSets"
    return render(request, "dashboard/history_node.html", ctx)


@login_required
def cluster_history(request: HttpRequest, slug: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, slug=slug)
    hours = _hours(request)
    now = utcnow()
    timelines = history.daemonset_timelines(cluster, hours=hours, now=now)
    gaps = {k: round(sum(t.gap_seconds.values()) / 60.0, 1) for k, t in timelines.items()}
    rows = sorted(gaps.items(), key=lambda kv: (-kv[1], kv[0]))
    longest = max(gaps.values(), default=0.0)
    recorded = history.recorded_from(cluster, hours=hours, now=now)
    return render(
        request,
        "dashboard/history_cluster.html",
        {
            "cluster": cluster,
            "hours": hours,
            "windows": WINDOWS,
            "rows": [
                {"key": k, "ns": k.split("/", 1)[0], "name": k.split("/", 1)[1], "minutes": m}
                for k, m in rows
            ],
            "charts": [charts.chart(k, timelines[k], longest) for k, _ in rows],
            "axis": charts.ticks(now - timedelta(hours=hours), now),
            "recorded_from": recorded,
            "window_start": now - timedelta(hours=hours),
            "retention_days": settings.DAEMONVIZ_HISTORY_DAYS,
            "recording": settings.DAEMONVIZ_HISTORY,
        },
    )
