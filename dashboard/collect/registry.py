"""The collectors this process can show, by cluster slug, and what every kind of collector
offers the pages: the embedded `ClusterCollector`, and the `RemoteCollector` a scale-out
web worker reads from the snapshots in Redis (dashboard/collect/remote.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from dashboard.clusters.config import ClusterConfig
from dashboard.coverage.matrix import Matrix

from .status import ConnectionStatus, RuntimeStatus, SkippedSummary


class WatchCounts(Protocol):
    """One resource's list/watch counters (the reflector's stats, or their report)."""

    lists: int
    watches: int
    events: int
    errors: int
    last_event_at: float
    history_resets: int
    streamed_lists: int


class Collector(Protocol):
    """What views, consumers and /metrics use of a cluster's collector."""

    cluster: ClusterConfig
    matrix: Matrix
    remote: bool  # True: the collector runs in another process (scale-out)

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held while reading the matrix (read-only here: any context manager will do)."""
        ...

    @property
    def status(self) -> ConnectionStatus: ...
    @property
    def last_update(self) -> datetime | None: ...
    @property
    def heartbeat_age(self) -> float | None:
        """Seconds since a remote collector last reported (None: in this process)."""
        ...

    @property
    def fresh(self) -> bool:
        """The matrix is current: always in this process; for a remote collector, its
        report is younger than DAEMONVIZ_STALE_SECONDS."""
        ...

    def runtime_status(self) -> RuntimeStatus: ...
    def watch_stats(self) -> Mapping[str, WatchCounts]: ...
    def skipped_summary(self) -> SkippedSummary:
        """Objects left out right now (cannot be decoded or classified)."""
        ...


class Registry:
    """The collectors running in this process, by cluster slug."""

    def __init__(self) -> None:
        self._collectors: dict[str, Collector] = {}
        self._guard = threading.Lock()
        # Scale-out web workers run no collector: `get` falls back to read-only snapshots
        # from Redis (remote.SnapshotReader, installed by DashboardConfig.ready).
        self.fallback: Callable[[str], Collector | None] | None = None
        # The event loop that serves this process's pages and sockets, once one has run
        # (embedded.py notes it): web workers re-read big snapshots on it, in steps.
        self.loop: asyncio.AbstractEventLoop | None = None

    def register(self, collector: Collector) -> Collector:
        with self._guard:
            self._collectors[collector.cluster.slug] = collector
        return collector

    def unregister(self, slug: str) -> Collector | None:
        with self._guard:
            return self._collectors.pop(slug, None)

    def get(self, slug: str) -> Collector | None:
        collector = self._collectors.get(slug)
        if collector is None and self.fallback is not None:
            return self.fallback(slug)
        return collector

    def all(self) -> list[Collector]:
        return list(self._collectors.values())

    def clear(self) -> None:
        with self._guard:
            self._collectors.clear()


registry = Registry()
