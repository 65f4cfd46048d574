"""One channel-layer subscription per cluster per process, fanned out to the sockets of
that process.

Each socket used to join its cluster's group itself. Then every delta went through the
channel layer once per socket: channels-redis filled one buffer per socket, and each
socket's receive loop made two tasks, woke, dispatched and cancelled for every message.
At 500 sockets on three scale-out workers that machinery held a worker's interpreter
lock more than the frames themselves (bench/scaleout_bench.py, py-spy --gil). Now the
first socket of a cluster in a process starts a feed: one channel in the group, one
receive loop, and each message handed to every socket of the process that follows the
cluster, in order. The frames are built once per filter set (frames.py) as before.

The feed also re-joins the group every `REJOIN_SECONDS` (`keep_joined`, which the sockets
use for their own groups too): channel layers forget a group member a day after it joined
(channels' `group_expiry`), and a wall display stays connected for weeks; its socket kept
its heartbeat and stopped getting deltas, and a revoked token no longer closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from dashboard.grid.frames import group_name

log = logging.getLogger(__name__)

REJOIN_SECONDS = 3600.0  # well inside channels' default group expiry of 86,400 s
JOIN_TIMEOUT_SECONDS = 10.0  # a socket waits no longer to be in its cluster's feed


async def keep_joined(layer: BaseChannelLayer, group: str, channel: str) -> None:
    """Join `group` again every `REJOIN_SECONDS`, until cancelled (the first join is the
    caller's). For any group a socket must stay in for longer than a day."""
    while True:
        await asyncio.sleep(REJOIN_SECONDS)
        try:
            await layer.group_add(group, channel)
        except Exception:  # Redis away: the next round tries again
            log.warning("re-joining %s failed", group, exc_info=True)


class Follower(Protocol):
    """A socket that follows a cluster: `grid_delta` gets each of its messages."""

    async def grid_delta(self, event: dict[str, Any]) -> None: ...


class ClusterFeed:
    """The process's subscription to one cluster's group."""

    def __init__(self, layer: BaseChannelLayer, slug: str, on_idle: Any) -> None:
        self.layer = layer
        self.slug = slug
        self.followers: dict[Follower, None] = {}  # insertion-ordered set
        self.joined = asyncio.Event()
        self._on_idle = on_idle
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"fanout:{slug}")

    async def _run(self) -> None:
        while True:
            try:
                await self._subscribed()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away, say. The sockets' pages see the gap in revisions at the
                # next delta and re-fetch their grids: no socket needs closing.
                log.warning("the delta feed of %s failed; again in 1 s", self.slug, exc_info=True)
                await asyncio.sleep(1.0)

    async def _subscribed(self) -> None:
        group = group_name(self.slug)
        # The layer's default prefix: channels-redis keeps one Redis list per prefix of a
        # process and pops only the one of whoever receives, so another prefix would wait
        # behind the sockets' own receives.
        channel = await self.layer.new_channel()
        await self.layer.group_add(group, channel)
        self.joined.set()
        rejoin = asyncio.get_running_loop().create_task(keep_joined(self.layer, group, channel))
        try:
            while True:
                message = await self.layer.receive(channel)
                if message.get("type") != "grid.delta":
                    continue
                for follower in list(self.followers):
                    if follower not in self.followers:
                        continue  # left while an earlier one was being sent to
                    try:
                        await follower.grid_delta(message)
                    except Exception as exc:  # one broken socket must not starve the others
                        # (a browser gone mid-send; its disconnect unfollows it)
                        log.warning("a socket of %s missed a delta: %r", self.slug, exc)
        finally:
            rejoin.cancel()
            # Best effort: the layer forgets the channel at its group expiry anyway.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self.layer.group_discard(group, channel))

    def add(self, follower: Follower) -> None:
        self.followers[follower] = None

    def remove(self, follower: Follower) -> None:
        self.followers.pop(follower, None)
        if not self.followers:
            self._task.cancel()
            self._on_idle(self)

    @property
    def running(self) -> bool:
        return not self._task.done()


class Fanout:
    """The feeds of one event loop (a web worker has one; each async test has its own)."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.feeds: dict[str, ClusterFeed] = {}

    async def follow(self, slug: str, follower: Follower) -> None:
        """Deliver the cluster's deltas to `follower` from now on. Returns once the feed
        is in the group, so nothing published after this call is missed."""
        feed = self.feeds.get(slug)
        if feed is None or not feed.running:
            feed = self.feeds[slug] = ClusterFeed(self.layer, slug, self._forget)
        feed.add(follower)
        if not feed.joined.is_set():
            try:
                await asyncio.wait_for(feed.joined.wait(), JOIN_TIMEOUT_SECONDS)
            except BaseException:  # the layer is unreachable, or the socket went away
                self.unfollow(slug, follower)
                raise

    def unfollow(self, slug: str, follower: Follower) -> None:
        feed = self.feeds.get(slug)
        if feed is not None:
            feed.remove(follower)

    def _forget(self, feed: ClusterFeed) -> None:
        if self.feeds.get(feed.slug) is feed:
            del self.feeds[feed.slug]


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def fanout() -> Fanout:
    """This event loop's fan-out, on the default channel layer."""
    loop = asyncio.get_running_loop()
    current = _by_loop.get(loop)
    if current is None:
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS is not configured"
        current = _by_loop[loop] = Fanout(layer)
    return current
