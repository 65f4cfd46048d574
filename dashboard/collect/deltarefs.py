"""Big deltas by reference (scale-out): stored once in Redis, fetched once per web worker.

channels-redis' `group_send` writes one copy of a message per receiving process (every
daphne worker with a socket in the group has a queue key of its own), in one Lua script,
and a copy waits in each worker's queue until that worker pops it (up to the layer's
capacity, 100 messages, for its `expiry`, 60 s). A multi-MB rollout frame thus crossed Redis
once per worker and piled up in every worker that was busy. The collector now stores a big
packed payload once, under `daemonviz:delta:<slug>:<epoch>:<revision>` with a TTL, and
publishes a small reference; each worker fetches it once, however many of its sockets
want it (dashboard/grid/frames.py shares the fetch and the decoded payload).

A reference whose key is gone (TTL passed, the byte budget below dropped it,
Redis restarted) never turns into wrong data: the consumers make their pages re-sync.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings

from dashboard.collect.locks import key

log = logging.getLogger(__name__)

# Payloads up to this size stay inside the message: measured with 3 workers on one Redis
# (bench/RESULTS.md, "Big deltas by reference"), publish + receive cost the same either
# way at ~64 KB and the reference wins above; its extra round trip loses ~1 ms below, and
# every added worker moves the break-even lower.
INLINE_BYTES = 32 * 1024
# Above channels-redis' message expiry (60 s): a message the layer still delivers finds its
# payload, unless the budget dropped it.
TTL_SECONDS = 120
# Per collect process, all its clusters together: the bytes of references kept alive at
# most, oldest dropped first. With a TTL alone, one publication every 0.25 s would keep 480
# rollout frames in Redis; workers fetch within milliseconds, so the budget only cuts off a
# worker that is far behind (its pages re-sync, as after any gap). The bench saw Redis hold
# ~20 MB more while a 1,000-node cluster rolled out, where inline copies were popped at once.
BUDGET_BYTES = 64 * 1024 * 1024


def ref_key(slug: str, epoch: str, revision: int) -> str:
    return key("delta", f"{slug}:{epoch}:{revision}")


class _PerLoopClients:
    """One redis.asyncio client per event loop (a client is bound to the loop it connected
    on: the collector's and the workers' loops, and in tests one loop per test)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> aredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aredis.Redis.from_url(
                self.url, socket_timeout=15, socket_connect_timeout=3
            )
        return client


class DeltaStore:
    """The collector's side: stores packed payloads, and drops the oldest once the process's
    references pass the byte budget."""

    def __init__(self, url: str, budget: int = BUDGET_BYTES, ttl: int = TTL_SECONDS) -> None:
        self.budget = budget
        self.ttl = ttl
        self._clients = _PerLoopClients(url)
        self._kept: collections.deque[tuple[str, int]] = collections.deque()
        self._kept_bytes = 0

    async def put(self, slug: str, epoch: str, revision: int, packed: bytes) -> str:
        ref = ref_key(slug, epoch, revision)
        self._kept.append((ref, len(packed)))
        self._kept_bytes += len(packed)
        dropped = []
        while self._kept_bytes > self.budget and len(self._kept) > 1:
            old, size = self._kept.popleft()
            dropped.append(old)
            self._kept_bytes -= size
        async with self._clients.get().pipeline(transaction=False) as pipe:
            pipe.set(ref, packed, ex=self.ttl)
            if dropped:
                pipe.delete(*dropped)
            await pipe.execute()
        return ref


_stores: dict[str, DeltaStore] = {}


def store_for(url: str) -> DeltaStore:
    """The process's store for a Redis URL (one per collect process, shared by its
    collectors)."""
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = DeltaStore(url)
    return store


_fetchers: dict[str, _PerLoopClients] = {}


async def fetch(ref: str) -> bytes | None:
    """A stored payload, or None when it is gone (or Redis does not answer: the caller
    re-syncs either way, never shows a guess)."""
    url = settings.REDIS_URL
    clients = _fetchers.get(url)
    if clients is None:
        clients = _fetchers[url] = _PerLoopClients(url)
    try:
        data = await clients.get().get(ref)
    except (redis.RedisError, OSError) as exc:
        log.warning("delta %s not fetched: %s", ref, exc)
        return None
    return data if isinstance(data, bytes) else None
