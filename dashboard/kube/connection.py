"""The states a cluster connection is in, one spelling for Python, templates and scripts."""

from __future__ import annotations

from enum import StrEnum, nonmember


class ConnectionState(StrEnum):
    """Templates get it from the `connection_states` context processor and compare with
    `ConnectionState.SYNCED`; scripts get `ConnectionState.names()` as JSON in the page."""

    CONNECTING = "connecting"  # no complete list yet
    SYNCED = "synced"  # every resource listed, watches running
    STALE = "stale"  # was synced; a watch or relist is failing: showing the last state
    FAILED = "failed"  # never synced, and the last attempt failed
    STOPPED = "stopped"  # the collector is not running
    CRASHED = "crashed"  # the collector's task failed; it restarts after a back-off

    # Django's templates call what is callable: `ConnectionState.SYNCED` must look the
    # member up, not call the class (as Django's own Choices do).
    do_not_call_in_templates = nonmember(True)

    @classmethod
    def names(cls) -> dict[str, str]:
        """{"SYNCED": "synced", ...}: the constants a script compares states with."""
        return {s.name: s.value for s in cls}
