"""Where a collector's events come from: a real API server through `dashboard.kube`, or
the in-process simulator. Both hand the collector the engine's event currency
(dashboard/coverage/events.py), and ring the collector's doorbell (coalescing.py) when
they have news, so the collector drains when there is something to drain."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from django.conf import settings

from dashboard.clusters.config import ClusterConfig
from dashboard.clusters.crypto import DecryptionError
from dashboard.clusters.redact import scrub
from dashboard.clusters.target import Target
from dashboard.coverage.event_records import EventRecord
from dashboard.coverage.events import Change, Replace, SourceEvent
from dashboard.coverage.records import (
    DecodeError,
    Record,
    Skipped,
    decode,
    record_key,
    skipped,
    tombstone,
)
from dashboard.coverage.timefmt import utcnow
from dashboard.coverage.why import EVENT_STREAMS, stream_of
from dashboard.kube.clients import KubeconfigError
from dashboard.kube.connection import ConnectionState
from dashboard.kube.reflector import ClusterWatch, Event, WatchStats
from dashboard.kube.resources import RESOURCES
from dashboard.simulator import Simulator
from dashboard.simulator.store import Expired

from .coalescing import Doorbell
from .status import ConnectionStatus

log = logging.getLogger(__name__)

# Matrix kinds by API resource plural (what sources speak in).
KIND_OF_RESOURCE = {
    "nodes": "Node",
    "daemonsets": "DaemonSet",
    "pods": "Pod",
    "controllerrevisions": "ControllerRevision",
    "services": "Service",
    "endpointslices": "EndpointSlice",
    "events": "Event",
    "priorityclasses": "PriorityClass",
}


class Source(Protocol):
    def start(self) -> None: ...
    def drain(self) -> list[SourceEvent]: ...
    def pending(self) -> bool:
        """Events are waiting to be drained (a list may still be arriving)."""
        ...

    def status(self) -> ConnectionStatus: ...
    def watch_stats(self) -> dict[str, WatchStats]: ...
    def skipped(self) -> list[Skipped]:
        """Objects left out right now because they cannot be decoded."""
        ...

    def stop(self) -> None: ...


# Optional on a source: `set_doorbell(bell)` — ring `bell` whenever drain() would return
# something new. A source without it (tests' hand-fed ones) is drained on every heartbeat
# of the collector instead, as the fixed tick did.


class SimulatedSource:
    """Follows a simulator's object store directly: the same raw objects an API server
    would serve, without HTTP. A gap in the store's history (410) means a full replace,
    exactly like a relist."""

    def __init__(self, config: ClusterConfig):
        self.simulator = Simulator.from_scenario(
            config.scenario,
            seed=config.seed,
            nodes=config.nodes,
            daemonsets=config.daemonsets,
            churn=config.churn,
            # Anchored at the present: ages and "last exit 3 m ago" must read as real time.
            start=utcnow(),
        )
        self._rv: int | None = None
        self._since = utcnow()
        self._skipped: dict[tuple[str, str], Skipped] = {}
        self._last_skipped: Skipped | None = None
        self._bell: Doorbell | None = None

    def set_doorbell(self, bell: Doorbell | None) -> None:
        store = self.simulator.store
        if self._bell is not None:
            store.unsubscribe(self._bell.ring)
        self._bell = bell
        if bell is not None:
            store.subscribe(bell.ring)

    def start(self, run_clock: bool = True) -> None:
        if run_clock:  # False: tests step the simulator by hand
            self.simulator.start()

    def drain(self) -> list[SourceEvent]:
        # Read the store between two of the simulator's steps, never in the middle of one:
        # a step writes a whole instant (a pod deleted and its replacement created, a
        # rollout's batch), and half of it is a state the cluster never settled in (a
        # "missing" cell for a pod that is being replaced). A step's writes span ~14 ms
        # (p95 32 ms) on an idle machine and pause whenever its thread is descheduled on a
        # busy one: adaptive coalescing's 10 ms quiet window and 50 ms settle cap would
        # cut such steps in two. Only the reads happen under the lock; decoding after.
        store = self.simulator.store
        if self._rv is not None:
            try:
                with self.simulator.lock:
                    events = store.events_since(self._rv)
            except Expired:
                log.info("simulated store history expired: replacing everything")
            else:
                out: list[SourceEvent] = []
                for ev in events:
                    self._rv = ev.rv
                    kind = KIND_OF_RESOURCE.get(ev.resource)
                    if kind is None:
                        continue
                    record = self._decode(kind, ev.data)
                    if record is not None:
                        out.append(Change(ev.type, record))
                    elif self._last_skipped is not None and self._last_skipped.key:
                        # Unreadable now: drop an older copy, as a relist would.
                        item = self._last_skipped
                        if ev.type == "DELETED":
                            self._skipped.pop((kind, item.key), None)
                        out.append(Change("DELETED", tombstone(item)))
                return out
        # The simulator's lock keeps its steps out of the lists; writes straight to the
        # store (tests do) may still straddle them: remember the version from before the
        # first list and replay what came after it next time (re-applying an event whose
        # result a list already showed is harmless).
        with self.simulator.lock:
            self._rv = store.resource_version
            listed = {resource: store.list(resource)[0] for resource in KIND_OF_RESOURCE}
        self._skipped = {}
        replaces: list[SourceEvent] = []
        for resource, kind in KIND_OF_RESOURCE.items():
            records = self._decode_all(kind, (data for _, data in listed[resource]))
            if kind == "Event":
                # As the kube source's event streams hand them over (one per selector).
                streams: dict[str, list[Record]] = {s: [] for s in EVENT_STREAMS}
                for record in records:
                    stream = stream_of(record) if isinstance(record, EventRecord) else None
                    if stream is not None:
                        streams[stream].append(record)
                replaces += [Replace(s, recs) for s, recs in streams.items()]
                continue
            replaces.append(Replace(kind, records))
        return replaces

    def pending(self) -> bool:
        return False  # drained synchronously: nothing is ever half-delivered

    def _decode_all(self, kind: str, blobs: Iterable[bytes]) -> list[Record]:
        return [r for data in blobs if (r := self._decode(kind, data)) is not None]

    def _decode(self, kind: str, data: bytes) -> Record | None:
        try:
            record = decode(kind, data)
        except DecodeError as exc:
            # One bad object must not stall the cluster: skip it, say which (once).
            item = self._last_skipped = skipped(kind, data, str(exc))
            if (kind, item.key) not in self._skipped:
                log.warning("simulated object skipped: %s", item.describe())
            self._skipped[(kind, item.key)] = item
            return None
        if self._skipped:
            self._skipped.pop((kind, record_key(record)), None)
        return record

    def skipped(self) -> list[Skipped]:
        return list(self._skipped.values())

    def status(self) -> ConnectionStatus:
        return ConnectionStatus(ConnectionState.SYNCED, "simulated cluster", self._since)

    def watch_stats(self) -> dict[str, WatchStats]:
        return {}

    def stop(self) -> None:
        self.simulator.stop()
        self.set_doorbell(None)


class KubeSource:
    """A real API server through `dashboard.kube`: reflector threads push into a queue."""

    def __init__(self, config: ClusterConfig, **watch_options: Any):
        """`watch_options` go to the `ClusterWatch` (e.g. `backoff_base`/`backoff_cap`: the
        fault suite retries in milliseconds where production waits seconds)."""
        self.config = config
        self._watch_options = watch_options
        self._queue: deque[SourceEvent] = deque()
        self._watch: ClusterWatch | None = None
        self._status = ConnectionStatus(ConnectionState.CONNECTING, "starting", utcnow())
        self._secrets: set[str] = set()
        self._bell: Doorbell | None = None

    def set_doorbell(self, bell: Doorbell | None) -> None:
        self._bell = bell

    def start(self) -> None:
        try:
            target = Target.of(self.config)
            self._secrets = target.secrets()
            api = target.client()
        except (KubeconfigError, DecryptionError) as exc:
            self._status = ConnectionStatus(ConnectionState.FAILED, self._scrub(str(exc)), utcnow())
            return
        self._watch = ClusterWatch(
            api,
            self._sink,
            namespace=target.namespace,
            **{"watch_list": settings.DAEMONVIZ_WATCH_LIST, **self._watch_options},
        )

    def _scrub(self, message: str) -> str:
        # Messages are built without request data already; this is the second line.
        return scrub(message, self._secrets) if self._secrets else message

    def _sink(self, resource: str, event: Event) -> None:
        # Called on reflector threads; deque appends are atomic, so no lock is needed.
        if resource in RESOURCES and isinstance(event, Replace | Change):
            self._queue.append(event)
            bell = self._bell
            if bell is not None:
                bell.ring()

    def drain(self) -> list[SourceEvent]:
        events = []
        while self._queue:
            events.append(self._queue.popleft())
        return events

    def pending(self) -> bool:
        return bool(self._queue)

    def status(self) -> ConnectionStatus:
        if self._watch is None:
            return self._status
        s = self._watch.status
        # Synced after the server's history went back (an etcd restore): say so; and what
        # a synced cluster does not show (node events a namespaced Role cannot reach).
        told = s.problem if s.problem is not None else s.reset
        message = told.message if told is not None else ""
        if s.state == ConnectionState.SYNCED:
            message = "; ".join(filter(None, (message, *self._watch.notes)))
        message = self._scrub(message) if message else ""
        return ConnectionStatus(s.state, message, datetime.fromtimestamp(s.since, UTC))

    def skipped(self) -> list[Skipped]:
        if self._watch is None:
            return []
        return [item for r in self._watch.reflectors.values() for item in r.stats.skipped.values()]

    def watch_stats(self) -> dict[str, WatchStats]:
        """The reflectors' counters, by resource."""
        if self._watch is None:
            return {}
        return {resource: r.stats for resource, r in self._watch.reflectors.items()}

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()


def make_source(config: ClusterConfig) -> Source:
    if config.source == "simulated":
        return SimulatedSource(config)
    return KubeSource(config)
