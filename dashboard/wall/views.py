"""The wall display page, `/wall/<token>/`, and the per-cluster data its socket sends.

Reached by a secret token without sign-in (dashboard/access.py): unknown, revoked and
rotated tokens all get the same 404 (a page saying the URL no longer works, so a TV that
reloads shows something readable). The token is never turned into a session, so it opens
this page and its socket, nothing else.

The page is a shell: each cluster's header is rendered here (escaped by the template), and
the matrix, proportions and exceptions are drawn by static/js/wall.js from the same
snapshot data the socket then keeps sending (dashboard/wall/aggregate.py), updated in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from dashboard import access
from dashboard.collect.registry import registry
from dashboard.coverage.summary import cluster_summary, headline
from dashboard.kube.connection import ConnectionState
from dashboard.wall import aggregate as wall
from dashboard.wall.fragments import render_wall_cluster


def cluster_data(slug: str) -> dict[str, Any] | None:
    """A cluster's wall snapshot now, or None when no collector runs it here."""
    collector = registry.get(slug)
    if collector is None:
        return None
    with collector.lock:
        matrix = collector.matrix
        numbers = headline(cluster_summary(matrix))
        return wall.payload_data(
            matrix, None, numbers, getattr(collector.cluster, "group_by_label", "") or ""
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def cluster_status(slug: str) -> dict[str, Any]:
    """A cluster's collector state for the wall: the state and since when, the last change.
    Not the message: error texts name servers and addresses a TV in a shared room need not
    show (the admin has them)."""
    collector = registry.get(slug)
    if collector is None:
        return {"state": "absent", "since": None, "last_update": None}
    status = collector.status
    return {
        "state": status.state,
        "since": _iso(status.since),
        "last_update": _iso(collector.last_update),
    }


def _no_store(response: HttpResponse) -> HttpResponse:
    # The URL is the credential: keep it out of caches and Referer headers.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def wall_page(request: HttpRequest, token: str) -> HttpResponse:
    display = access.wall_for_token(token)
    if display is None:
        return _no_store(render(request, "wall/revoked.html", status=404))
    clusters: list[dict[str, Any]] = []
    for c in access.wall_clusters(display):
        data = cluster_data(c.slug)
        status = cluster_status(c.slug)
        shell = render_wall_cluster(c.slug, c.name, data["headline"] if data else None, None)
        clusters.append(
            {"slug": c.slug, "name": c.name, "data": data, "status": status, "html": shell}
        )
    initial = {
        "clusters": [{k: c[k] for k in ("slug", "name", "data", "status")} for c in clusters],
        "states": wall.state_table(),
        "connection_states": ConnectionState.names(),  # what static/js/wall.js compares with
        "rotation": display.rotation_seconds,
        "animations": display.animations,
    }
    response = render(
        request,
        "wall/page.html",
        {
            "wall": display,
            "blocks": [mark_safe(c["html"]) for c in clusters],  # template output, escaped
            "initial": initial,
            "ws_url": f"/ws/wall/{token}/",
        },
    )
    return _no_store(response)
