"""Scale-out: collectors in `manage.py collect`, stateless web workers, Redis in between.
This module holds the keys and the lock; remote.py the web workers' reader, supervisor.py
the `collect` process.

Redis keys, per cluster slug (prefix `daemonviz:`):

* `lock:<slug>`   — `<instance>/<token>`, SET NX PX: the one collector allowed to run the
                    cluster. Renewed every TTL/3; when the holder dies it expires and another
                    `collect` process takes over. `<token>` is a fencing token from
                    `fence:<slug>` (INCR on every acquisition).
* `snap:<slug>`   — the matrix snapshot (dashboard.collect.snapshots), written at most every
                    DAEMONVIZ_SNAPSHOT_SECONDS when it changed,
* `meta:<slug>`   — JSON {epoch, revision, token, written_at} of that snapshot (written in the
                    same script, so the two always match),
* `status:<slug>` — JSON collector report with a heartbeat timestamp, written every second.
* `delta:<slug>:<epoch>:<revision>` — a big delta's packed payload, stored once with a TTL
                    and published by reference (dashboard/collect/deltarefs.py).

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

import os
import socket
import time
import uuid

import redis
from django.conf import settings

PREFIX = "daemonviz:"


def key(kind: str, slug: str) -> str:
    return f"{PREFIX}{kind}:{slug}"


def redis_client(url: str | None = None) -> redis.Redis:
    """A synchronous redis-py client (bytes responses) for REDIS_URL."""
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

    def __init__(self, client: redis.Redis, slug: str, owner: str, ttl: float) -> None:
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
