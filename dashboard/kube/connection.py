"""The states a cluster connection is in, one spelling for Python, templates and scripts."""

from __future__ import annotations

from enum import StrEnum


class ConnectionState(StrEnum):
    CONNECTING = "connecting"  # no complete list yet
    SYNCED = "synced"  # every resource listed, watches running
    STALE = "stale"  # was synced; a watch or relist is failing: showing the last state
    FAILED = "failed"  # never synced, and the last attempt failed
    STOPPED = "stopped"  # the collector is not running
