"""Collectors: one per enabled cluster. Each runs its source (a real cluster through
`dashboard.kube`, or the in-process simulator), feeds the coverage matrix, coalesces
changes (~250 ms) and publishes one delta per window to the channel-layer group
`cluster.<slug>`. The matrix itself is the snapshot pages render from and late joiners
re-sync against.

Threads: the kube source's reflectors run in threads of their own (the official client
blocks), and views render in Django's sync thread pool, while ticks run on the ASGI
event loop. So the matrix is only touched under `collector.lock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from asgiref.sync import async_to_sync

from dashboard import gcfreeze
from dashboard.coverage.matrix import DELETED, Delta, Matrix
from dashboard.coverage.records import KINDS, DaemonSet, DecodeError, Node, Record, decode
from dashboard.coverage.timefmt import utcnow

log = logging.getLogger(__name__)

# Matrix kinds by API resource plural (what sources speak in).
KIND_OF_RESOURCE = {
    "nodes": "Node",
    "daemonsets": "DaemonSet",
    "pods": "Pod",
    "controllerrevisions": "ControllerRevision",
}
# Re-classify clock-dependent cells (minReadySeconds, "node joined 20s ago") this often.
TIMED_REFRESH_SECONDS = 10.0


def group_name(slug: str) -> str:
    return f"cluster.{slug}"


@dataclass(frozen=True)
class ClusterConfig:
    """What a collector needs to know of a Cluster row, detached from the ORM."""

    slug: str
    name: str
    source: str = "simulated"  # simulated | kubeconfig | in-cluster
    scenario: str = "demo"
    nodes: int | None = None
    daemonsets: int | None = None
    seed: int = 1
    churn: float | None = None
    kubeconfig_path: str = ""
    context: str = ""
    group_by_label: str = ""
    # The uploaded kubeconfig, still encrypted: decrypted only when the source starts, and
    # kept out of repr() so logging a config can never print it.
    kubeconfig_encrypted: str = field(default="", repr=False)
    namespaces_include: tuple[str, ...] = ()
    namespaces_exclude: tuple[str, ...] = ()
    daemonset_selector: str = ""

    @property
    def single_namespace(self) -> str | None:
        """The one namespace to list and watch, when the scope is exactly one namespace:
        the API server then does the filtering (and RBAC may be namespace-scoped)."""
        included = [n for n in self.namespaces_include if n not in self.namespaces_exclude]
        return included[0] if len(self.namespaces_include) == 1 and included else None

    @classmethod
    def from_model(cls, cluster: Any, churn: float | None = None) -> ClusterConfig:
        from dashboard.models import split_names

        return cls(
            slug=cluster.slug,
            name=cluster.name,
            source=cluster.source,
            scenario=cluster.scenario,
            nodes=cluster.sim_nodes,
            daemonsets=cluster.sim_daemonsets,
            seed=cluster.sim_seed,
            churn=churn,
            kubeconfig_path=cluster.kubeconfig_path,
            context=cluster.context,
            group_by_label=cluster.group_by_label,
            kubeconfig_encrypted=cluster.kubeconfig_encrypted,
            namespaces_include=split_names(cluster.namespaces_include),
            namespaces_exclude=split_names(cluster.namespaces_exclude),
            daemonset_selector=cluster.daemonset_selector.strip(),
        )


class Scope:
    """What of a cluster the dashboard shows: namespaces included/excluded and the
    DaemonSet label selector.

    Applied to records before they reach the matrix, for every source alike: a DaemonSet
    outside the scope is treated as absent (an event for one that left the scope — its
    labels changed — becomes a deletion), and pods and revisions of excluded namespaces are
    dropped (a DaemonSet only owns objects of its own namespace). Pods of DaemonSets that
    the selector excludes are kept: they reach no cell, and dropping them would lose them
    if the DaemonSet's labels later bring it back into scope.
    """

    def __init__(self, config: ClusterConfig):
        from dashboard.grid import SelectorError, parse_selector

        self.include = frozenset(config.namespaces_include)
        self.exclude = frozenset(config.namespaces_exclude)
        self.error = ""
        try:
            self.selector = parse_selector(config.daemonset_selector)
        except SelectorError as exc:
            # Forms validate it; an invalid one in the database shows nothing, and says why.
            self.selector, self.error = (), f"DaemonSet label selector: {exc}"
        self.active = bool(self.include or self.exclude or self.selector or self.error)

    def namespace_shown(self, namespace: str) -> bool:
        if self.include and namespace not in self.include:
            return False
        return namespace not in self.exclude

    def shows(self, record: Record) -> bool:
        if isinstance(record, Node):
            return True
        if not self.namespace_shown(record.namespace):
            return False
        if isinstance(record, DaemonSet):
            return not self.error and all(r.matches(record.labels) for r in self.selector)
        return True

    def filter(self, items: list[Item]) -> list[Item]:
        if not self.active:
            return items
        out: list[Item] = []
        for item in items:
            if item[0] == "replace":
                out.append((item[0], item[1], [r for r in item[2] if self.shows(r)]))
            elif self.shows(item[2]):
                out.append(item)
            elif isinstance(item[2], DaemonSet):
                out.append(("apply", DELETED, item[2]))  # a no-op if it was never shown
        return out


@dataclass(frozen=True)
class RuntimeStatus:
    """What the admin shows of a running collector."""

    state: str
    message: str
    since: datetime | None
    last_sync: datetime | None  # the last time the collector saw itself in sync
    last_update: datetime | None  # the last change applied to the matrix
    last_error: str
    last_error_at: datetime | None
    nodes: int
    daemonsets: int
    pods: int


@dataclass(frozen=True)
class ConnectionStatus:
    state: str  # connecting | synced | stale | failed
    message: str = ""
    since: datetime | None = None


# Items a source hands to the collector: ("apply", event_type, record) or
# ("replace", kind, records) after a full (re)list.
Item = tuple[str, str, Any]


class Source(Protocol):
    def start(self) -> None: ...
    def drain(self) -> list[Item]: ...
    def status(self) -> ConnectionStatus: ...
    def stop(self) -> None: ...


class SimulatedSource:
    """Follows a simulator's object store directly: the same raw objects an API server
    would serve, without HTTP. A gap in the store's history (410) means a full replace,
    exactly like a relist."""

    def __init__(self, config: ClusterConfig):
        from dashboard.simulator import Simulator

        self.simulator = Simulator.from_scenario(
            config.scenario,
            seed=config.seed,
            nodes=config.nodes,
            daemonsets=config.daemonsets,
            churn=config.churn,
        )
        self._rv: int | None = None
        self._since = utcnow()
        self.bad_objects = 0

    def start(self, run_clock: bool = True) -> None:
        if run_clock:
            self.simulator.start()

    def drain(self) -> list[Item]:
        from dashboard.simulator.store import Expired

        store = self.simulator.store
        if self._rv is not None:
            try:
                events = store.events_since(self._rv)
            except Expired:
                log.info("simulated store history expired: replacing everything")
            else:
                items: list[Item] = []
                for ev in events:
                    self._rv = ev.rv
                    kind = KIND_OF_RESOURCE.get(ev.resource)
                    record = self._decode(kind, ev.data) if kind else None
                    if record is not None:
                        items.append(("apply", ev.type, record))
                return items
        # The lists of the four resources may straddle writes: remember the version from
        # before the first one and replay what came after it next time (re-applying an
        # event whose result a list already showed is harmless).
        self._rv = store.resource_version
        items = []
        for resource, kind in KIND_OF_RESOURCE.items():
            objs, _ = store.list(resource)
            items.append(("replace", kind, self._decode_all(kind, objs)))
        return items

    def _decode_all(self, kind: str, objs) -> list[Record]:
        return [r for _, data in objs if (r := self._decode(kind, data)) is not None]

    def _decode(self, kind: str, data: bytes) -> Record | None:
        try:
            return decode(kind, data)
        except DecodeError as exc:
            # One bad object must not stall the cluster: skip it, say which.
            self.bad_objects += 1
            log.warning("simulated %s skipped: %s", kind, exc)
            return None

    def status(self) -> ConnectionStatus:
        return ConnectionStatus("synced", "simulated cluster", self._since)

    def stop(self) -> None:
        self.simulator.stop()


class KubeSource:
    """A real API server through `dashboard.kube`: reflector threads push into a queue."""

    def __init__(self, config: ClusterConfig):
        self.config = config
        self._queue: deque[Item] = deque()
        self._watch = None
        self._status = ConnectionStatus("connecting", "starting", utcnow())
        self._secrets: set[str] = set()

    def start(self) -> None:
        from dashboard.crypto import DecryptionError, decrypt
        from dashboard.kube.clients import (
            KubeconfigError,
            client_from_kubeconfig,
            client_from_kubeconfig_content,
            client_in_cluster,
        )
        from dashboard.kube.reflector import ClusterWatch
        from dashboard.redact import kubeconfig_secrets

        context = self.config.context or None
        try:
            if self.config.source == "in-cluster":
                api = client_in_cluster()
            elif self.config.source == "uploaded":
                content = decrypt(self.config.kubeconfig_encrypted)
                self._secrets = kubeconfig_secrets(content)
                # Exec plugins stay off for uploads: they would run commands on this host.
                api = client_from_kubeconfig_content(content, context)
            else:
                self._secrets = _file_secrets(self.config.kubeconfig_path)
                api = client_from_kubeconfig(self.config.kubeconfig_path, context)
        except (KubeconfigError, DecryptionError) as exc:
            self._status = ConnectionStatus("failed", self._scrub(str(exc)), utcnow())
            return
        self._watch = ClusterWatch(api, self._sink, namespace=self.config.single_namespace)

    def _scrub(self, message: str) -> str:
        # Messages are built without request data already; this is the second line.
        from dashboard.redact import scrub

        return scrub(message, self._secrets) if self._secrets else message

    def _sink(self, resource: str, event: Any) -> None:
        # Called on reflector threads; deque appends are atomic, so no lock is needed.
        from dashboard.kube.reflector import Change, Replace

        kind = KIND_OF_RESOURCE.get(resource)
        if kind is None:
            return
        if isinstance(event, Replace):
            self._queue.append(("replace", kind, list(event.records)))
        elif isinstance(event, Change):
            self._queue.append(("apply", event.type, event.record))

    def drain(self) -> list[Item]:
        items = []
        while self._queue:
            items.append(self._queue.popleft())
        return items

    def status(self) -> ConnectionStatus:
        if self._watch is None:
            return self._status
        s = self._watch.status
        message = self._scrub(str(s.problem)) if s.problem is not None else ""
        return ConnectionStatus(s.state, message, datetime.fromtimestamp(s.since, UTC))

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()


def _file_secrets(path: str) -> set[str]:
    from dashboard.redact import kubeconfig_secrets

    try:
        with open(path, encoding="utf-8") as f:
            return kubeconfig_secrets(f.read())
    except (OSError, UnicodeDecodeError, ValueError):
        return set()  # the client reports the unreadable file itself


def make_source(config: ClusterConfig) -> Source:
    if config.source == "simulated":
        return SimulatedSource(config)
    return KubeSource(config)


class ClusterCollector:
    def __init__(self, cluster: ClusterConfig, channel_layer: Any = None, coalesce: float = 0.25):
        self.cluster = cluster
        self.lock = threading.RLock()
        self.matrix = Matrix()
        self.coalesce = coalesce
        self.channel_layer = channel_layer
        self.last_update: datetime | None = None
        self._source: Source | None = None
        self._task: asyncio.Task | None = None
        self._last_timed_refresh = 0.0
        self.scope = Scope(cluster)
        # Runtime status the admin shows (see runtime_status()).
        self.last_sync: datetime | None = None
        self.last_error = self.scope.error
        self.last_error_at: datetime | None = utcnow() if self.scope.error else None
        # Called with (collector, delta) under the lock after every non-empty delta, in the
        # thread that computed it: coverage history (dashboard/history.py) listens here.
        self.listeners: list[Callable[[ClusterCollector, Delta], None]] = []
        self._frozen = False  # see dashboard/gcfreeze.py

    # ------------------------------------------------------------------ source

    @property
    def simulator(self):
        return getattr(self._source, "simulator", None)

    def start_source(self, run_clock: bool = True) -> None:
        self._source = make_source(self.cluster)
        if isinstance(self._source, SimulatedSource):
            self._source.start(run_clock=run_clock)
        else:
            self._source.start()

    @property
    def status(self) -> ConnectionStatus:
        if self._source is None:
            return ConnectionStatus("connecting", "not started")
        return self._source.status()

    def observe_status(self) -> ConnectionStatus:
        """Remember when the source was last in sync and its last error (called each tick)."""
        status = self.status
        if status.state == "synced":
            self.last_sync = utcnow()
        elif status.state in ("stale", "failed") and status.message:
            if status.message != self.last_error or self.last_error_at is None:
                self.last_error_at = status.since or utcnow()
            self.last_error = status.message
        return status

    def runtime_status(self) -> RuntimeStatus:
        status = self.observe_status()
        with self.lock:
            matrix = self.matrix
            if self.scope.selector:
                # Pods of DaemonSets the selector hides stay in the matrix (see Scope).
                shown = {ds.uid for ds in matrix.daemonsets.values()}
                pods = sum(1 for p in matrix.pods.values() if p.owner_uid in shown)
            else:
                pods = len(matrix.pods)
            counts = (len(matrix.nodes), len(matrix.daemonsets), pods)
        return RuntimeStatus(
            state=status.state,
            message=status.message,
            since=status.since,
            last_sync=self.last_sync,
            last_update=self.last_update,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            nodes=counts[0],
            daemonsets=counts[1],
            pods=counts[2],
        )

    # ------------------------------------------------------------------ ticks

    def tick(self) -> Delta | None:
        """Apply what the source produced since the last tick; publish one delta."""
        delta, payload = self._compute()
        if payload is not None:
            self._publish(payload)
        self.observe_status()
        return delta

    def refresh_timed(self) -> None:
        payload = self._compute_timed()
        if payload is not None:
            self._publish(payload)

    def _compute(self) -> tuple[Delta | None, dict | None]:
        """Drain the source into the matrix and render the delta. Safe to run in a worker
        thread: it takes the lock, and publishing is left to the caller."""
        if self._source is None:
            return None, None
        items = self.scope.filter(self._source.drain())
        if not items:
            return None, None
        with self.lock:
            base = self.matrix.revision
            delta = self._apply(items)
            if delta.empty:
                return delta, None
            self.last_update = utcnow()
            self._notify(delta)
            return delta, self._payload(delta, base)

    def _compute_timed(self) -> dict | None:
        with self.lock:
            base = self.matrix.revision
            delta = self.matrix.refresh_timed()
            if delta.empty:
                return None
            self._notify(delta)
            return self._payload(delta, base)

    def _notify(self, delta: Delta) -> None:
        for listener in self.listeners:
            try:
                listener(self, delta)
            except Exception:  # a listener must never stall the matrix
                log.exception("collector listener failed for cluster %s", self.cluster.slug)

    def _apply(self, items: list[Item]) -> Delta:
        total = Delta(self.matrix.revision)
        batch: list[tuple[str, Record]] = []
        replaces: dict[str, list[Record]] = {}
        for item in items:
            # Keep order between replaces and events: flush whichever kind was pending.
            if item[0] == "apply":
                if replaces:
                    total.merge(self.matrix.replace_all(replaces))
                    replaces = {}
                batch.append((item[1], item[2]))
            else:
                if batch:
                    total.merge(self.matrix.apply_many(batch))
                    batch = []
                replaces[item[1]] = item[2]
        if replaces:
            total.merge(self.matrix.replace_all(replaces))
        if batch:
            total.merge(self.matrix.apply_many(batch))
        return total

    def _payload(self, delta: Delta, base: int) -> dict:
        from dashboard import fragments

        payload = fragments.delta_payload(self.cluster, self.matrix, delta)
        payload.setdefault("revision", delta.revision)
        payload.setdefault("base", base)
        return payload

    async def _send(self, payload: dict) -> None:
        if self.channel_layer is not None:
            from dashboard.frames import delta_message

            await self.channel_layer.group_send(
                group_name(self.cluster.slug), delta_message(payload)
            )

    def _publish(self, payload: dict) -> None:
        """Publish from synchronous code (tests, management commands)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(self._send)(payload)
        else:
            loop.create_task(self._send(payload))

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Tick forever. Decoding, classifying and rendering run in a worker thread, so a
        large initial sync (seconds of CPU) never stalls the event loop that serves pages
        and sockets; publishing happens back on the loop, where the channel layer lives."""
        await asyncio.to_thread(self.start_source)
        loop = asyncio.get_running_loop()
        try:
            next_tick = loop.time()
            while True:
                # A fixed cadence: a slow tick shortens the next wait instead of adding to it.
                next_tick = max(next_tick + self.coalesce, loop.time())
                await asyncio.sleep(next_tick - loop.time())
                _, payload = await asyncio.to_thread(self._compute)
                if payload is not None:
                    await self._send(payload)
                if self.observe_status().state == "synced" and not self._frozen:
                    # The synced matrix (and a simulator's cluster) lives as long as the
                    # process: keep it out of the garbage collector's full passes.
                    self._frozen = True
                    await asyncio.to_thread(
                        gcfreeze.freeze_long_lived, f"the first sync of {self.cluster.slug}"
                    )
                if loop.time() - self._last_timed_refresh > TIMED_REFRESH_SECONDS:
                    self._last_timed_refresh = loop.time()
                    payload = await asyncio.to_thread(self._compute_timed)
                    if payload is not None:
                        await self._send(payload)
        finally:
            # Stopping a kube source joins its reflector threads (up to ~2 s): off the loop,
            # so disabling a cluster in the admin does not stall every page and socket.
            try:
                await asyncio.shield(asyncio.to_thread(self.stop_source))
            except (asyncio.CancelledError, RuntimeError):
                self.stop_source()  # the loop or its executor is shutting down

    def start(self) -> asyncio.Task:
        self._task = asyncio.get_running_loop().create_task(
            self.run(), name=f"collector:{self.cluster.slug}"
        )
        return self._task

    def stop_source(self) -> None:
        if self._source is not None:
            self._source.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Registry:
    """The collectors running in this process, by cluster slug."""

    def __init__(self) -> None:
        self._collectors: dict[str, ClusterCollector] = {}
        # Scale-out web workers run no collector: `get` falls back to read-only snapshots
        # from Redis (dashboard.scaleout.SnapshotReader, installed by DashboardConfig.ready).
        self.fallback: Callable[[str], Any] | None = None

    def register(self, collector: ClusterCollector) -> ClusterCollector:
        self._collectors[collector.cluster.slug] = collector
        return collector

    def unregister(self, slug: str) -> ClusterCollector | None:
        return self._collectors.pop(slug, None)

    def get(self, slug: str) -> ClusterCollector | None:
        collector = self._collectors.get(slug)
        if collector is None and self.fallback is not None:
            return self.fallback(slug)
        return collector

    def all(self) -> list[ClusterCollector]:
        return list(self._collectors.values())

    def clear(self) -> None:
        self._collectors.clear()


registry = Registry()

__all__ = [
    "KINDS",
    "ClusterCollector",
    "ClusterConfig",
    "ConnectionStatus",
    "RuntimeStatus",
    "Scope",
    "registry",
    "group_name",
]
