"""HTML of the wall display rendered on the server: each cluster's headline block, for the
page and the pushes alike (the rest is drawn by static/js/wall.js from plain data)."""

from __future__ import annotations

from typing import Any

from dashboard.grid.fragments import template
from dashboard.grid.model import dom_id
from dashboard.kube.connection import ConnectionState


def render_wall_cluster(
    slug: str, name: str, numbers: dict[str, Any] | None, status: Any = None, oob: bool = False
) -> str:
    """One cluster's headline block on a wall display (page and pushes). Rendered without
    a request, so without the context processors: ConnectionState is passed here."""
    return template("wall/_cluster.html").render(
        {
            "ConnectionState": ConnectionState,
            "id": "w-" + dom_id("cluster:" + slug),
            "slug": slug,
            "name": name,
            "h": numbers,
            "status": status,
            "oob": oob,
        }
    )
