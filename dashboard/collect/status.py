"""What a collector says about itself: its connection, and the runtime figures the admin,
the pages and /metrics show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from dashboard.kube.connection import ConnectionState


@dataclass(frozen=True)
class ConnectionStatus:
    state: ConnectionState
    message: str = ""
    since: datetime | None = None


@dataclass(frozen=True)
class Crash:
    """The last failure of a collector's task (it restarts after `retry_in` seconds)."""

    cause: str  # "OverflowError: date value out of range", never a traceback
    at: datetime
    restarts: int  # how many times in a row it failed
    retry_in: float

    @property
    def message(self) -> str:
        again = "restart" if self.restarts == 1 else f"restart {self.restarts} in a row"
        return f"collector crashed: {self.cause} ({again}, next attempt after {self.retry_in:g} s)"


EXAMPLES = 5  # skipped objects named in the status line, the admin and the report


@dataclass(frozen=True)
class SkippedSummary:
    """Objects a collector leaves out right now: undecodable (kube layer, simulator) or
    unclassifiable (the matrix). Counted by kind; the first few named."""

    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    examples: tuple[str, ...] = ()  # "Pod ns/name: why"

    @classmethod
    def of(cls, items: Iterable[tuple[str, str]]) -> SkippedSummary:
        """From (kind, description) pairs."""
        pairs = sorted(items)
        kinds = Counter(kind for kind, _ in pairs)
        return cls(len(pairs), dict(kinds), tuple(text for _, text in pairs[:EXAMPLES]))

    @property
    def words(self) -> str:
        noun = "object" if self.total == 1 else "objects"
        return f"{self.total} {noun} left out (cannot be read or classified)"


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
    skipped: SkippedSummary = field(default_factory=SkippedSummary)
