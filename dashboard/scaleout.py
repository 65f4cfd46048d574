"""Scale-out: collectors in `manage.py collect`, stateless web workers, Redis in between.

Redis keys, per cluster slug (prefix `daemonviz:`):

* `lock:<slug>`   — `<instance>/<token>`, SET NX PX: the one collector allowed to run the
                    cluster. Renewed every TTL/3; when the holder dies it expires and another
                    `collect` process takes over. `<token>` is a fencing token from
                    `fence:<slug>` (INCR on every acquisition).
* `snap:<slug>`   — the matrix snapshot (dashboard.snapshots), written at most every
                    DAEMONVIZ_SNAPSHOT_SECONDS when it changed,
* `meta:<slug>`   — JSON {epoch, revision, token, written_at} of that snapshot (written in the
                    same script, so the two always match),
* `status:<slug>` — JSON collector report with a heartbeat timestamp, written every second.

Every write of the holder goes through a Lua script that first checks that `lock:<slug>`
still holds the holder's own value (instance and token): a collector that lost its lock
(paused, partitioned, TTL expired and taken over) can no longer overwrite what the new
holder writes. That is the fencing; the token also shows in the report and in /metrics.

Web workers read `meta` + `status` on every access (one MGET) and the big snapshot only
when its epoch or revision changed; the decoded matrix is cached per revision. A report
whose heartbeat is older than DAEMONVIZ_STALE_SECONDS turns the cluster's status `stale`
(the collector died or lost Redis); the last known matrix stays shown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from dashboard.collector import ClusterCollector, ClusterConfig, ConnectionStatus, RuntimeStatus

log = logging.getLogger(__name__)

PREFIX = "daemonviz:"


def key(kind: str, slug: str) -> str:
    return f"{PREFIX}{kind}:{slug}"


def redis_client(url: str | None = None):
    """A synchronous redis-py client (bytes responses) for REDIS_URL."""
    import redis
    from django.conf import settings

    url = url or settings.REDIS_URL
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- lock

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '/' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS[1] = lock; then pairs of (key, value) to SET, only while the lock is ours.
_FENCED_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end
return 1
"""


class ClusterLock:
    """SET NX PX + renewal + fencing token, for one cluster slug."""

    def __init__(self, client, slug: str, owner: str, ttl: float):
        self.client = client
        self.slug = slug
        self.owner = owner
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token: int | None = None
        self.renewed_at = 0.0  # time.monotonic() of the last successful acquire/renew
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._fenced = client.register_script(_FENCED_SET)

    @property
    def value(self) -> str:
        return f"{self.owner}/{self.token}"

    @property
    def held(self) -> bool:
        return self.token is not None

    def acquire(self) -> bool:
        started = time.monotonic()
        token = self._acquire(keys=[key("lock", self.slug), key("fence", self.slug)],
                              args=[self.owner, self.ttl_ms])  # fmt: skip
        if token is None:
            return False
        self.token, self.renewed_at = int(token), started
        return True

    def renew(self) -> bool:
        if self.token is None:
            return False
        started = time.monotonic()
        if self._renew(keys=[key("lock", self.slug)], args=[self.value, self.ttl_ms]):
            self.renewed_at = started
            return True
        self.token = None
        return False

    def expired_locally(self) -> bool:
        """True once the TTL may have run out since the last confirmed renewal (e.g. Redis
        unreachable): from then on another collector may hold the cluster."""
        return time.monotonic() - self.renewed_at > self.ttl_ms / 1000 * 0.9

    def release(self) -> None:
        if self.token is not None:
            try:
                self._release(keys=[key("lock", self.slug)], args=[self.value])
            finally:
                self.token = None

    def fenced_set(self, pairs: dict[str, bytes]) -> bool:
        """SET each key only if the lock is still ours; False if it is not (anymore)."""
        if self.token is None:
            return False
        keys = [key("lock", self.slug), *pairs]
        ok = self._fenced(keys=keys, args=[self.value, *pairs.values()])
        if not ok:
            self.token = None
        return bool(ok)


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


class CollectorReport(msgspec.Struct):
    """What the holder says about a cluster every second (`status:<slug>`)."""

    holder: str
    token: int
    heartbeat: float  # time.time()
    state: str
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


def watch_stats(collector: Any) -> dict[str, WatchReport]:
    """The kube reflectors' counters of a collector, by resource ({} for simulated ones)."""
    watch = getattr(getattr(collector, "_source", None), "_watch", None)
    reflectors = getattr(watch, "reflectors", None) or {}
    out = {}
    for resource, reflector in reflectors.items():
        s = getattr(reflector, "stats", None)
        if s is not None:
            out[resource] = WatchReport(s.lists, s.watches, s.events, s.errors, s.last_event_at)
    return out


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
        watch=watch_stats(collector),
    )


# --------------------------------------------------------------------------- reader


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class RemoteCollector:
    """A cluster as web workers see it in scale-out: the same attributes the views use of
    a ClusterCollector (`lock`, `matrix`, `status`, `cluster`, `last_update`,
    `runtime_status()`), read-only, from the snapshot and report in Redis."""

    remote = True

    def __init__(self, cluster: ClusterConfig, matrix, meta: SnapshotMeta, stale_after: float):
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
            return ConnectionStatus("stale", "no collector has reported for this cluster")
        if not self.fresh:
            return ConnectionStatus(
                "stale",
                "the collector stopped reporting; showing the last known state",
                _dt(r.heartbeat),
            )
        return ConnectionStatus(r.state, r.message, r.since)

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
        )


class SnapshotReader:
    """`registry.fallback` in web workers: RemoteCollector per slug, cached per revision."""

    def __init__(self, client=None, stale_after: float | None = None):
        from django.conf import settings

        self._client = client
        self.stale_after = settings.DAEMONVIZ_STALE_SECONDS if stale_after is None else stale_after
        self._cache: dict[str, RemoteCollector] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def client(self):
        if self._client is None:
            self._client = redis_client()
        return self._client

    def _slug_lock(self, slug: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(slug, threading.Lock())

    def __call__(self, slug: str) -> RemoteCollector | None:
        return self.get(slug)

    def get(self, slug: str) -> RemoteCollector | None:
        import redis

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
        meta = msgspec.json.decode(meta_raw, type=SnapshotMeta)
        report = msgspec.json.decode(status_raw, type=CollectorReport) if status_raw else None
        cached = self._cache.get(slug)
        if cached is None or (cached.meta.epoch, cached.meta.revision) != (
            meta.epoch,
            meta.revision,
        ):
            with self._slug_lock(slug):
                cached = self._cache.get(slug)
                if cached is None or (cached.meta.epoch, cached.meta.revision) != (
                    meta.epoch,
                    meta.revision,
                ):
                    loaded = self._load(slug, report)
                    if loaded is not None:
                        self._cache[slug] = cached = loaded
        if cached is None:
            return None
        cached.report = report
        return cached

    def _load(self, slug: str, report: CollectorReport | None) -> RemoteCollector | None:
        from dashboard import fragments
        from dashboard.snapshots import decode_matrix

        # Snapshot and meta together, atomically (MULTI): they always describe one revision.
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key("meta", slug))
        pipe.get(key("snap", slug))
        meta_raw, blob = pipe.execute()
        if meta_raw is None or blob is None:
            return None
        meta = msgspec.json.decode(meta_raw, type=SnapshotMeta)
        matrix = decode_matrix(blob)
        # Pages and pushes must agree on the matrix's epoch (fragments.epoch): the one the
        # collector published its deltas under.
        fragments._epochs[matrix] = meta.epoch
        config = ClusterConfig(
            slug=slug,
            name=report.name if report and report.name else slug,
            source=report.source if report and report.source else "simulated",
            group_by_label=report.group_by_label if report else "",
        )
        return RemoteCollector(config, matrix, meta, self.stale_after)

    def forget(self, slug: str) -> None:
        self._cache.pop(slug, None)


# --------------------------------------------------------------------------- collect


@dataclass
class Held:
    """A cluster this process holds the lock of and collects."""

    collector: ClusterCollector
    lock: ClusterLock
    recorder: Any = None
    written: tuple[str, int] = ("", -1)  # (epoch, revision) of the last snapshot written
    next_snapshot: float = 0.0
    interval: float = 1.0
    maintain: asyncio.Task | None = None


def enabled_clusters() -> dict[str, ClusterConfig]:
    from django.conf import settings
    from django.db import close_old_connections

    from dashboard.models import Cluster

    close_old_connections()
    churn = getattr(settings, "DAEMONVIZ_SIM_CHURN", None)
    rows = Cluster.objects.filter(enabled=True)
    return {c.slug: ClusterConfig.from_model(c, churn=churn) for c in rows}


class CollectorSupervisor:
    """`manage.py collect`: runs the collectors of the clusters whose lock it holds.

    Every DAEMONVIZ_RECONCILE_SECONDS it reads the enabled clusters from the database: it
    tries to take the lock of each cluster no one holds (so a second `collect` process
    stands by and takes over within the lock TTL when the first dies), restarts collectors
    whose configuration changed, and stops those of clusters disabled or deleted (deleting
    their snapshot, so web workers stop showing them). Per held cluster, a task renews the
    lock every TTL/3 and writes the snapshot (when changed, at most every
    DAEMONVIZ_SNAPSHOT_SECONDS) and the status report (every second); a lost lock, or no
    confirmed renewal for most of the TTL, stops that collector at once.
    """

    def __init__(
        self,
        client=None,
        *,
        owner: str | None = None,
        ttl: float | None = None,
        snapshot_seconds: float | None = None,
        reconcile_seconds: float | None = None,
        channel_layer: Any = None,
        history: bool | None = None,
    ):
        from django.conf import settings

        self.client = client or redis_client()
        self.owner = owner or instance_id()
        self.ttl = ttl or settings.DAEMONVIZ_LOCK_TTL_SECONDS
        self.snapshot_seconds = snapshot_seconds or settings.DAEMONVIZ_SNAPSHOT_SECONDS
        self.reconcile_seconds = reconcile_seconds or settings.DAEMONVIZ_RECONCILE_SECONDS
        self.heartbeat_seconds = min(1.0, self.ttl / 3)
        self.channel_layer = channel_layer
        self.history = settings.DAEMONVIZ_HISTORY if history is None else history
        self.coalesce = settings.DAEMONVIZ_COALESCE_SECONDS
        self.held: dict[str, Held] = {}
        # Lock calls never queue behind snapshot encoding in the default executor.
        self._lock_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="locks")

    # ------------------------------------------------------------------ main loop

    async def run(self, stop: asyncio.Event | None = None) -> None:
        from asgiref.sync import sync_to_async

        stop = stop or asyncio.Event()
        if self.channel_layer is None:
            from channels.layers import get_channel_layer

            self.channel_layer = get_channel_layer()
        log.info("collector %s: lock TTL %.1f s", self.owner, self.ttl)
        try:
            while not stop.is_set():
                try:
                    desired = await sync_to_async(enabled_clusters, thread_sensitive=True)()
                    await self.reconcile(desired)
                except Exception:
                    log.exception("reconciling clusters failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.reconcile_seconds)
        finally:
            await self.shutdown()

    async def reconcile(self, desired: dict[str, ClusterConfig]) -> None:
        import redis

        for slug, held in list(self.held.items()):
            config = desired.get(slug)
            if config is None:
                await self._stop(slug, release=True, forget=True)
            elif config != held.collector.cluster:
                log.info("cluster %s changed: restarting its collector", slug)
                await self._restart(slug, config)
        for slug, config in desired.items():
            if slug in self.held:
                continue
            lock = ClusterLock(self.client, slug, self.owner, self.ttl)
            try:
                acquired = await asyncio.to_thread(lock.acquire)
            except redis.RedisError as exc:
                log.warning("cannot reach Redis to lock cluster %s: %s", slug, exc)
                continue
            if acquired:
                log.info("took the lock of cluster %s (fencing token %d)", slug, lock.token)
                await self._start(config, lock)
        await asyncio.to_thread(self._forget_orphans, set(desired))

    def _forget_orphans(self, desired: set[str]) -> None:
        """Snapshots of clusters that are no longer enabled, and that nobody holds."""
        for raw in self.client.scan_iter(match=key("meta", "*"), count=200):
            slug = raw.decode().split(":", 2)[2]
            if slug not in desired and not self.client.exists(key("lock", slug)):
                self.client.delete(key("meta", slug), key("snap", slug), key("status", slug))

    # ------------------------------------------------------------------ one cluster

    async def _start(self, config: ClusterConfig, lock: ClusterLock) -> None:
        from dashboard import history

        collector = ClusterCollector(config, self.channel_layer, self.coalesce)
        held = Held(collector, lock, interval=self.snapshot_seconds)
        if self.history:
            held.recorder = history.attach(collector)
        self.held[config.slug] = held
        collector.start()
        held.maintain = asyncio.get_running_loop().create_task(
            self._maintain(held), name=f"maintain:{config.slug}"
        )

    async def _restart(self, slug: str, config: ClusterConfig) -> None:
        held = self.held[slug]
        await self._stop_collector(held)
        lock = held.lock
        del self.held[slug]
        if held.maintain is not None:
            held.maintain.cancel()
        await self._start(config, lock)

    async def _stop_collector(self, held: Held) -> None:
        from dashboard import history

        await held.collector.stop()
        await asyncio.to_thread(history.detach, held.collector, held.recorder)
        held.recorder = None

    async def _stop(self, slug: str, *, release: bool, forget: bool = False) -> None:
        held = self.held.pop(slug, None)
        if held is None:
            return
        current = asyncio.current_task()
        if held.maintain is not None and held.maintain is not current:
            held.maintain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held.maintain
        await self._stop_collector(held)
        if release:
            await asyncio.to_thread(self._release, held, forget)
        log.info("collector stopped for cluster %s", slug)

    def _release(self, held: Held, forget: bool) -> None:
        import redis

        try:
            # fenced_set({}) only checks that the lock is still ours.
            if forget and held.lock.fenced_set({}):
                slug = held.lock.slug
                self.client.delete(key("meta", slug), key("snap", slug), key("status", slug))
            held.lock.release()
        except redis.RedisError as exc:
            log.warning("releasing the lock of %s failed: %s", held.lock.slug, exc)

    async def _maintain(self, held: Held) -> None:
        """Renew the lock and write snapshot + status, as two loops: a slow snapshot (a big
        matrix, or the collector's lock held by an initial sync) never delays renewal,
        which also runs on threads of its own."""
        import redis

        slug = held.lock.slug
        loop = asyncio.get_running_loop()

        async def renew() -> str:
            while True:
                await asyncio.sleep(self.ttl / 3)
                try:
                    if not await loop.run_in_executor(self._lock_pool, held.lock.renew):
                        return "lost its lock"
                except redis.RedisError as exc:
                    log.warning("cluster %s: cannot renew its lock: %s", slug, exc)
                if held.lock.expired_locally():
                    return "could not renew its lock within the TTL"

        async def write() -> str:
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                try:
                    if not await asyncio.to_thread(self._write, held):
                        return "lost its lock (fenced write refused)"
                except redis.RedisError as exc:
                    log.warning("cluster %s: Redis unreachable: %s", slug, exc)

        tasks = [loop.create_task(renew()), loop.create_task(write())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        why = next(iter(done)).result()
        log.warning("cluster %s: %s; stopping its collector", slug, why)
        held.lock.token = None
        await self._stop(slug, release=False)

    def _write(self, held: Held) -> bool:
        """Snapshot (if changed and due) and status report, fenced by the lock."""
        from dashboard import fragments
        from dashboard.snapshots import encode_matrix

        c = held.collector
        pairs: dict[str, bytes] = {}
        now = time.monotonic()
        epoch = fragments.epoch(c.matrix)
        if (epoch, c.matrix.revision) != held.written and now >= held.next_snapshot:
            started = time.perf_counter()
            with c.lock:
                revision = c.matrix.revision
                blob = encode_matrix(c.matrix)
            meta = SnapshotMeta(epoch, revision, held.lock.token or 0, time.time())
            pairs[key("snap", held.lock.slug)] = blob
            pairs[key("meta", held.lock.slug)] = msgspec.json.encode(meta)
            # Big matrices: keep encoding under a fifth of the collector's time.
            held.interval = max(self.snapshot_seconds, 5 * (time.perf_counter() - started))
            held.next_snapshot = now + held.interval
            held.written = (epoch, revision)
        pairs[key("status", held.lock.slug)] = msgspec.json.encode(report_for(c, held.lock))
        return held.lock.fenced_set(pairs)

    async def shutdown(self) -> None:
        """Stop every collector and release the locks, so a standby takes over at once."""
        for slug in list(self.held):
            await self._stop(slug, release=True)
        self._lock_pool.shutdown(wait=False)
