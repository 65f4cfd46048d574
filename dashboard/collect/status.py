"""What a collector says about itself: its connection, and the runtime figures the admin,
the pages and /metrics show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboard.kube.connection import ConnectionState


@dataclass(frozen=True)
class ConnectionStatus:
    state: ConnectionState
    message: str = ""
    since: datetime | None = None


@dataclass(frozen=True)
class RuntimeStatus:
    """What the admin shows of a running collector."""

    state: ConnectionState
    message: str
    since: datetime | None
    last_sync: datetime | None  # the last time the collector saw itself in sync
    last_update: datetime | None  # the last change applied to the matrix
    last_error: str
    last_error_at: datetime | None
    nodes: int
    daemonsets: int
    pods: int
