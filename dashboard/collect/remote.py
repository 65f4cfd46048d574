"""Scale-out web workers: clusters read from the collectors' snapshots and reports in
Redis (keys in locks.py), with the attributes the pages use of an embedded collector."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import msgspec
import redis
from django.conf import settings

from dashboard.clusters.config import ClusterConfig
from dashboard.coverage.matrix import Matrix
from dashboard.kube.connection import ConnectionState

from .collector import ClusterCollector
from .locks import ClusterLock, key, redis_client
from .registry import WatchCounts, registry
from .snapshots import decode_matrix, decode_steps
from .status import ConnectionStatus, RuntimeStatus, SkippedSummary

log = logging.getLogger(__name__)

# A re-read on the event loop gives the loop back after this much work, for as long (a
# step of snapshots.decode_steps is a few milliseconds): it takes at most half the loop.
LOOP_SLICE_SECONDS = 0.01


# --------------------------------------------------------------------------- reports


class SnapshotMeta(msgspec.Struct):
    epoch: str
    revision: int
    token: int
    written_at: float


class WatchReport(msgspec.Struct):
    lists: int = 0
    watches: int = 0
    events: int = 0
    errors: int = 0
    last_event_at: float = 0.0
    history_resets: int = 0
    streamed_lists: int = 0  # added later: a report from an older collector lacks it


class CollectorReport(msgspec.Struct):
    """What the holder says about a cluster every second (`status:<slug>`)."""

    holder: str
    token: int
    heartbeat: float  # time.time()
    state: ConnectionState
    message: str = ""
    since: datetime | None = None
    last_sync: datetime | None = None
    last_update: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    nodes: int = 0
    daemonsets: int = 0
    pods: int = 0
    revision: int = 0
    # Cluster configuration the pages need (never the kubeconfig).
    name: str = ""
    source: str = ""
    group_by_label: str = ""
    watch: dict[str, WatchReport] = {}
    skipped: SkippedSummary = msgspec.field(default_factory=SkippedSummary)


# Built here, at import, on one thread. `msgspec.json.decode(data, type=T)` works out T's
# decoding plan on first use, and several web-worker threads doing that at once for the
# first time crashed the process (a segfault in msgspec's struct decoding, at the first
# websocket connections of the scale-out bench); a Decoder works it out when constructed.
_meta_decoder = msgspec.json.Decoder(SnapshotMeta)
_report_decoder = msgspec.json.Decoder(CollectorReport)


def watch_report(collector: ClusterCollector) -> dict[str, WatchReport]:
    """The kube reflectors' counters of a collector, by resource ({} for simulated ones)."""
    return {
        resource: WatchReport(
            s.lists,
            s.watches,
            s.events,
            s.errors,
            s.last_event_at,
            s.history_resets,
            s.streamed_lists,
        )
        for resource, s in collector.watch_stats().items()
    }


def report_for(collector: ClusterCollector, lock: ClusterLock) -> CollectorReport:
    rt = collector.runtime_status()
    return CollectorReport(
        holder=lock.owner,
        token=lock.token or 0,
        heartbeat=time.time(),
        state=rt.state,
        message=rt.message,
        since=rt.since,
        last_sync=rt.last_sync,
        last_update=rt.last_update,
        last_error=rt.last_error,
        last_error_at=rt.last_error_at,
        nodes=rt.nodes,
        daemonsets=rt.daemonsets,
        pods=rt.pods,
        revision=collector.matrix.revision,
        name=collector.cluster.name,
        source=collector.cluster.source,
        group_by_label=collector.cluster.group_by_label,
        watch=watch_report(collector),
        skipped=rt.skipped,
    )


# --------------------------------------------------------------------------- reader


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class RemoteCollector:
    """A cluster as web workers see it in scale-out: the same attributes the views use of
    a ClusterCollector (`lock`, `matrix`, `status`, `cluster`, `last_update`,
    `runtime_status()`), read-only, from the snapshot and report in Redis."""

    remote = True

    def __init__(
        self, cluster: ClusterConfig, matrix: Matrix, meta: SnapshotMeta, stale_after: float
    ) -> None:
        self.cluster = cluster
        self.matrix = matrix
        self.meta = meta
        self.lock = threading.RLock()  # nothing mutates this matrix; kept for the views
        self.stale_after = stale_after
        self.report: CollectorReport | None = None

    @property
    def heartbeat_age(self) -> float | None:
        return None if self.report is None else max(0.0, time.time() - self.report.heartbeat)

    @property
    def fresh(self) -> bool:
        age = self.heartbeat_age
        return age is not None and age <= self.stale_after

    @property
    def last_update(self) -> datetime | None:
        return self.report.last_update if self.report else None

    @property
    def status(self) -> ConnectionStatus:
        r = self.report
        if r is None:
            return ConnectionStatus(
                ConnectionState.STALE, "no collector has reported for this cluster"
            )
        if not self.fresh:
            return ConnectionStatus(
                ConnectionState.STALE,
                "the collector stopped reporting; showing the last known state",
                _dt(r.heartbeat),
            )
        return ConnectionStatus(r.state, r.message, r.since)

    def watch_stats(self) -> Mapping[str, WatchCounts]:
        return self.report.watch if self.report is not None else {}

    def skipped_summary(self) -> SkippedSummary:
        return self.report.skipped if self.report is not None else SkippedSummary()

    def runtime_status(self) -> RuntimeStatus:
        r = self.report
        status = self.status
        return RuntimeStatus(
            state=status.state,
            message=(status.message + " (collector in another process)").strip(),
            since=status.since,
            last_sync=r.last_sync if r else None,
            last_update=r.last_update if r else None,
            last_error=r.last_error if r else "",
            last_error_at=r.last_error_at if r else None,
            nodes=r.nodes if r else len(self.matrix.nodes),
            daemonsets=r.daemonsets if r else len(self.matrix.daemonsets),
            pods=r.pods if r else len(self.matrix.pods),
            skipped=self.skipped_summary(),
        )


class SnapshotReader:
    """`registry.fallback` in web workers: RemoteCollector per slug, cached per revision.

    A new revision is decoded once per process. Small snapshots are read at once. A big one
    (its last decode took over `background_after` seconds: 5,000 nodes × 30 DaemonSets take
    seconds on a loaded machine) is read on a thread of its own while every caller keeps
    getting the previous matrix with the fresh report, and no sooner than `spacing` times
    its decode time after the previous one: otherwise, under churn, every page, socket and
    wall status tick of every web worker waited for the decode, and decoding took all of a
    worker's time (bench/scaleout_bench.py). Pages rendered from the older matrix catch up
    through their deltas, or re-sync, as after any gap."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        stale_after: float | None = None,
        background_after: float = 0.2,
        spacing: float = 4.0,
    ) -> None:
        self._client = client
        self.stale_after = settings.DAEMONVIZ_STALE_SECONDS if stale_after is None else stale_after
        self.background_after = background_after
        self.spacing = spacing
        self._cache: dict[str, RemoteCollector] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._decode_seconds: dict[str, float] = {}  # slug -> its last decode
        self._next_reload: dict[str, float] = {}  # slug -> monotonic time
        self._reloading: set[str] = set()

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis_client()
        return self._client

    def _slug_lock(self, slug: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(slug, threading.Lock())

    def __call__(self, slug: str) -> RemoteCollector | None:
        return self.get(slug)

    def get(self, slug: str) -> RemoteCollector | None:
        try:
            meta_raw, status_raw = self.client.mget(key("meta", slug), key("status", slug))
        except redis.RedisError as exc:
            log.warning("redis unreachable reading cluster %s: %s", slug, exc)
            cached = self._cache.get(slug)
            if cached is not None:
                cached.report = None  # shows as stale: we cannot tell
            return cached
        if meta_raw is None:
            return None
        meta = _meta_decoder.decode(meta_raw)
        report = _report_decoder.decode(status_raw) if status_raw else None
        cached = self._cache.get(slug)
        if cached is None or not _same(cached.meta, meta):
            if cached is not None and self._decode_seconds.get(slug, 0.0) > self.background_after:
                self._reload_in_background(slug, report)
            else:
                with self._slug_lock(slug):
                    cached = self._cache.get(slug)
                    if cached is None or not _same(cached.meta, meta):
                        loaded = self._timed_load(slug, report)
                        if loaded is not None:
                            self._cache[slug] = cached = loaded
        if cached is None:
            return None
        cached.report = report
        return cached

    def _timed_load(self, slug: str, report: CollectorReport | None) -> RemoteCollector | None:
        started = time.monotonic()
        loaded = self._load(slug, report)
        took = time.monotonic() - started
        self._decode_seconds[slug] = took
        self._next_reload[slug] = time.monotonic() + self.spacing * took
        return loaded

    def _reload_in_background(self, slug: str, report: CollectorReport | None) -> None:
        with self._guard:
            if slug in self._reloading or time.monotonic() < self._next_reload.get(slug, 0.0):
                return
            self._reloading.add(slug)
        loop = registry.loop
        if loop is not None and loop.is_running():
            # On the worker's event loop, in steps, rather than on a thread beside it: the
            # thread held the interpreter lock for the seconds of the decode, and the loop,
            # which gives it up at every socket write and then waits its turn to get it back,
            # fell one second behind every second (bench/scaleout_bench.py, 3 workers, 500
            # sockets: frames of every cluster seconds late while a worker re-read).
            asyncio.run_coroutine_threadsafe(self._reload_on_loop(slug), loop)
            return

        def reload() -> None:
            with self._rereading(slug):
                with self._slug_lock(slug):
                    loaded = self._timed_load(slug, report)
                if loaded is not None:
                    self._install(slug, loaded)

        threading.Thread(target=reload, name=f"snapshot:{slug}", daemon=True).start()

    @contextlib.contextmanager
    def _rereading(self, slug: str) -> Iterator[None]:
        """A background re-read: whatever goes wrong, the old matrix keeps serving and the
        next access tries again."""
        try:
            yield
        except Exception:
            log.exception("reading the snapshot of cluster %s failed", slug)
        finally:
            with self._guard:
                self._reloading.discard(slug)

    def _install(self, slug: str, loaded: RemoteCollector) -> None:
        old = self._cache.get(slug)
        if old is not None:  # not forgotten meanwhile; the report stays the freshest seen
            loaded.report = old.report
            self._cache[slug] = loaded

    async def _reload_on_loop(self, slug: str) -> None:
        with self._rereading(slug):
            started = time.monotonic()
            meta_raw, blob = await asyncio.to_thread(self._read, slug)
            if meta_raw is None or blob is None:
                return
            raw = await asyncio.to_thread(zlib.decompress, blob)  # zlib lets go of the lock
            steps = decode_steps(raw)
            busy, since = 0.0, time.monotonic()
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    matrix: Matrix = done.value
                    break
                now = time.monotonic()
                if now - since > LOOP_SLICE_SECONDS:
                    # Let the sockets have the loop for as long again. `sleep(0)` gave them
                    # one pass of the loop, in which a feed reached a socket or two before
                    # its next await: a delta took seconds to reach all of them.
                    busy += now - since
                    await asyncio.sleep(LOOP_SLICE_SECONDS)
                    since = time.monotonic()
            busy += time.monotonic() - since
            # Paced by the work it took, not by the frames interleaved with it.
            self._decode_seconds[slug] = busy
            self._next_reload[slug] = time.monotonic() + self.spacing * busy
            log.debug("re-read %s on the loop: %.2f s of work in %.2f s", slug, busy,
                      time.monotonic() - started)  # fmt: skip
            self._install(slug, self._collector(slug, meta_raw, matrix, None))

    def _read(self, slug: str) -> tuple[bytes | None, bytes | None]:
        # Snapshot and meta together, atomically (MULTI): they always describe one revision.
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key("meta", slug))
        pipe.get(key("snap", slug))
        meta_raw, blob = pipe.execute()
        return meta_raw, blob

    def _load(self, slug: str, report: CollectorReport | None) -> RemoteCollector | None:
        meta_raw, blob = self._read(slug)
        if meta_raw is None or blob is None:
            return None
        return self._collector(slug, meta_raw, decode_matrix(blob), report)

    def _collector(
        self, slug: str, meta_raw: bytes, matrix: Matrix, report: CollectorReport | None
    ) -> RemoteCollector:
        meta = _meta_decoder.decode(meta_raw)
        # Pages and pushes must agree on the matrix's epoch: the one the collector
        # published its deltas under.
        matrix.epoch = meta.epoch
        config = ClusterConfig(
            slug=slug,
            name=report.name if report and report.name else slug,
            source=report.source if report and report.source else "simulated",
            group_by_label=report.group_by_label if report else "",
        )
        return RemoteCollector(config, matrix, meta, self.stale_after)

    def forget(self, slug: str) -> None:
        self._cache.pop(slug, None)


def _same(a: SnapshotMeta, b: SnapshotMeta) -> bool:
    return (a.epoch, a.revision) == (b.epoch, b.revision)
