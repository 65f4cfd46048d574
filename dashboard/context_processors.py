"""What every template rendered for a request gets (TEMPLATES in daemonviz/settings.py)."""

from __future__ import annotations

from django.http import HttpRequest

from dashboard.kube.connection import ConnectionState


def connection_states(request: HttpRequest) -> dict[str, object]:
    """`ConnectionState`, so templates write `status.state == ConnectionState.SYNCED`."""
    return {"ConnectionState": ConnectionState}
