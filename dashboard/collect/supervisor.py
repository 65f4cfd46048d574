"""`manage.py collect`: the collectors of the clusters whose Redis lock this process holds,
with their snapshots and reports (keys and lock in locks.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fnmatch
import logging
import time
from dataclasses import dataclass

import msgspec
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from dashboard.clusters.config import ClusterConfig

from .collector import ClusterCollector
from .desired import CollectorFactory, enabled_clusters
from .locks import ClusterLock, instance_id, key, redis_client
from .remote import SnapshotMeta, report_for
from .snapshots import compress, pack_matrix

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- collect


@dataclass
class Held:
    """A cluster this process holds the lock of and collects."""

    collector: ClusterCollector
    lock: ClusterLock
    written: tuple[str, int] = ("", -1)  # (epoch, revision) of the last snapshot written
    next_snapshot: float = 0.0
    interval: float = 1.0
    maintain: asyncio.Task[None] | None = None


def _enabled_clusters() -> dict[str, ClusterConfig]:
    close_old_connections()  # a long-running process: never reuse a dropped connection
    return enabled_clusters()


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
        client: redis.Redis | None = None,
        *,
        factory: CollectorFactory,
        owner: str | None = None,
        ttl: float | None = None,
        snapshot_seconds: float | None = None,
        reconcile_seconds: float | None = None,
        clusters: tuple[str, ...] = (),
    ):
        self.client = client or redis_client()
        self.owner = owner or instance_id()
        self.ttl = ttl or settings.DAEMONVIZ_LOCK_TTL_SECONDS
        self.snapshot_seconds = snapshot_seconds or settings.DAEMONVIZ_SNAPSHOT_SECONDS
        self.reconcile_seconds = reconcile_seconds or settings.DAEMONVIZ_RECONCILE_SECONDS
        self.heartbeat_seconds = min(1.0, self.ttl / 3)
        self.factory = factory
        # Shell patterns of the slugs this process may take (`collect --clusters`): several
        # processes can share the clusters out, so that one huge cluster's work (a rollout
        # frame of 5,000 nodes takes a core for a while) never delays the others' deltas,
        # which would otherwise wait for the same interpreter. Empty: every cluster.
        self.clusters = clusters
        self.held: dict[str, Held] = {}
        # Lock calls never queue behind snapshot encoding in the default executor.
        self._lock_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="locks")

    # ------------------------------------------------------------------ main loop

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        log.info("collector %s: lock TTL %.1f s", self.owner, self.ttl)
        try:
            while not stop.is_set():
                try:
                    enabled = await sync_to_async(_enabled_clusters, thread_sensitive=True)()
                    await self.reconcile(self.mine(enabled), enabled=set(enabled))
                except Exception:
                    log.exception("reconciling clusters failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.reconcile_seconds)
        finally:
            await self.shutdown()

    def mine(self, enabled: dict[str, ClusterConfig]) -> dict[str, ClusterConfig]:
        """The enabled clusters this process may collect."""
        if not self.clusters:
            return enabled
        return {
            slug: config
            for slug, config in enabled.items()
            if any(fnmatch.fnmatchcase(slug, pattern) for pattern in self.clusters)
        }

    async def reconcile(
        self, desired: dict[str, ClusterConfig], enabled: set[str] | None = None
    ) -> None:
        """Collect `desired`; `enabled` (default: the same) is every cluster enabled
        anywhere, whose snapshots another process may be writing and must not be forgotten."""
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
        await asyncio.to_thread(self._forget_orphans, set(desired) if enabled is None else enabled)

    def _forget_orphans(self, desired: set[str]) -> None:
        """Snapshots of clusters that are no longer enabled, and that nobody holds."""
        for raw in self.client.scan_iter(match=key("meta", "*"), count=200):
            slug = raw.decode().split(":", 2)[2]
            if slug not in desired and not self.client.exists(key("lock", slug)):
                self.client.delete(key("meta", slug), key("snap", slug), key("status", slug))

    # ------------------------------------------------------------------ one cluster

    async def _start(self, config: ClusterConfig, lock: ClusterLock) -> None:
        collector = self.factory(config)
        held = Held(collector, lock, interval=self.snapshot_seconds)
        self.held[config.slug] = held
        collector.start()
        held.maintain = asyncio.get_running_loop().create_task(
            self._maintain(held), name=f"maintain:{config.slug}"
        )

    async def _restart(self, slug: str, config: ClusterConfig) -> None:
        held = self.held[slug]
        await held.collector.stop()
        lock = held.lock
        del self.held[slug]
        if held.maintain is not None:
            held.maintain.cancel()
        await self._start(config, lock)

    async def _stop(self, slug: str, *, release: bool, forget: bool = False) -> None:
        held = self.held.pop(slug, None)
        if held is None:
            return
        current = asyncio.current_task()
        if held.maintain is not None and held.maintain is not current:
            held.maintain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held.maintain
        try:
            await held.collector.stop()
        except Exception:  # stop() does not raise; the lock must be released if it ever did
            log.exception("stopping the collector of %s failed", slug)
        if release:
            await asyncio.to_thread(self._release, held, forget)
        log.info("collector stopped for cluster %s", slug)

    def _release(self, held: Held, forget: bool) -> None:
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
        c = held.collector
        pairs: dict[str, bytes] = {}
        now = time.monotonic()
        epoch = c.matrix.epoch
        if (epoch, c.matrix.revision) != held.written and now >= held.next_snapshot:
            started = time.perf_counter()
            with c.lock:
                revision = c.matrix.revision
                packed = pack_matrix(c.matrix)
            blob = compress(packed)  # outside the lock: the next tick need not wait for it
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
