"""The wall's coverage sparklines: `/wall/<token>/sparklines/`, JSON per cluster.

Wiring between the wall (token access) and history (the recorded cell states): the two
packages do not import each other (docs/architecture.md). The wall's script fetches this
once at load and every minute, and draws each cluster's line into an inline SVG it builds
itself (static/js/wall.js) — no inline script or style, so the page's CSP stays as is.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import access
from dashboard.history import charts
from dashboard.history.timeline import timeline
from dashboard.wall.views import _no_store


def sparklines_data(display: Any, hours: float = charts.SPARK_HOURS) -> dict[str, Any]:
    return {
        c.slug: charts.sparkline(timeline(c, whole=True, hours=hours))
        for c in access.wall_clusters(display)
    }


def wall_sparklines(request: HttpRequest, token: str) -> HttpResponse:
    display = access.wall_for_token(token)
    if display is None:  # the same answer as the page for unknown and revoked tokens
        return _no_store(JsonResponse({"error": "not found"}, status=404))
    return _no_store(
        JsonResponse({"hours": charts.SPARK_HOURS, "clusters": sparklines_data(display)})
    )
