"""The per-process delta feed (dashboard/grid/fanout.py) on channels' in-memory layer: one
group member per cluster however many sockets follow it, every follower served in order,
one broken socket starving no other, and membership renewed before the layer forgets it
(a wall display stays connected for weeks)."""

from __future__ import annotations

import asyncio

from channels.layers import InMemoryChannelLayer

from dashboard.grid import fanout as fanout_mod
from dashboard.grid.fanout import Fanout
from dashboard.grid.frames import group_name
from tests.helpers.wait import async_wait_until


class Socket:
    def __init__(self, fail: bool = False) -> None:
        self.got: list[int] = []
        self.fail = fail

    async def grid_delta(self, event: dict) -> None:
        if self.fail:
            raise ConnectionResetError("the browser went away mid-send")
        self.got.append(event["revision"])


def _delta(revision: int) -> dict:
    return {"type": "grid.delta", "slug": "demo", "revision": revision}


async def test_one_group_member_per_cluster_and_every_socket_served_in_order():
    layer = InMemoryChannelLayer()
    feeds = Fanout(layer)
    sockets = [Socket() for _ in range(30)]
    for s in sockets:
        await feeds.follow("demo", s)
    await feeds.follow("other", sockets[0])
    assert len(layer.groups[group_name("demo")]) == 1
    for rev in range(1, 6):
        await layer.group_send(group_name("demo"), _delta(rev))
    await async_wait_until(lambda: all(s.got == [1, 2, 3, 4, 5] for s in sockets))

    for s in sockets:
        feeds.unfollow("demo", s)
    await async_wait_until(lambda: not layer.groups.get(group_name("demo")))
    assert "demo" not in feeds.feeds and "other" in feeds.feeds
    feeds.unfollow("other", sockets[0])


async def test_a_socket_that_fails_does_not_starve_the_others():
    layer = InMemoryChannelLayer()
    feeds = Fanout(layer)
    broken, fine = Socket(fail=True), Socket()
    await feeds.follow("demo", broken)
    await feeds.follow("demo", fine)
    await layer.group_send(group_name("demo"), _delta(1))
    await layer.group_send(group_name("demo"), _delta(2))
    await async_wait_until(lambda: fine.got == [1, 2])
    feeds.unfollow("demo", broken)
    feeds.unfollow("demo", fine)


async def test_membership_is_renewed_before_the_layer_forgets_it(monkeypatch):
    # The layer drops a group member `group_expiry` seconds after it joined (a day by
    # default); the feed joins again well before.
    layer = InMemoryChannelLayer(group_expiry=2)
    monkeypatch.setattr(fanout_mod, "REJOIN_SECONDS", 0.5)
    feeds = Fanout(layer)
    wall = Socket()
    await feeds.follow("demo", wall)
    await asyncio.sleep(3.5)  # past the expiry of the first join
    await layer.group_send(group_name("demo"), _delta(7))
    await async_wait_until(lambda: wall.got == [7], timeout=3)
    feeds.unfollow("demo", wall)


async def test_a_socket_that_joins_after_the_last_left_gets_a_new_feed():
    layer = InMemoryChannelLayer()
    feeds = Fanout(layer)
    first, second = Socket(), Socket()
    await feeds.follow("demo", first)
    feeds.unfollow("demo", first)  # the feed is stopping
    await feeds.follow("demo", second)
    await layer.group_send(group_name("demo"), _delta(3))
    await async_wait_until(lambda: second.got == [3])
    assert first.got == []
    feeds.unfollow("demo", second)
