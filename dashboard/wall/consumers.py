"""The wall display's websocket consumer (token access, no sign-in)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard import access
from dashboard.grid import frames
from dashboard.grid.consumers import CLOSE_REVOKED
from dashboard.grid.fanout import fanout, keep_joined
from dashboard.wall.views import cluster_data, cluster_status


@database_sync_to_async
def _wall_state(token: str) -> tuple[int, dict[str, str], list] | None:
    """(display id, {slug: name} of its clusters, what a change of needs a page reload)."""
    wall = access.wall_for_token(token)
    if wall is None:
        return None
    clusters = {c.slug: c.name for c in access.wall_clusters(wall)}
    layout = [wall.name, wall.theme, wall.animations, wall.rotation_seconds, list(clusters.items())]
    return wall.pk, clusters, layout


def _cluster_now(slug: str, name: str) -> str:
    """A cluster's whole wall frame as of now (worker thread: it waits for the matrix lock)."""
    return json.dumps({"t": "cluster", "slug": slug, "name": name, "data": cluster_data(slug)})


def _wall_frame(slug: str, name: str, payload: dict) -> str | None:
    """What a wall socket gets for one delta (None: nothing a wall shows changed)."""
    if payload.get("wall"):
        frame = {"t": "cluster", "slug": slug, "name": name, "data": payload["wall"]}
    elif payload.get("headline"):
        frame = {"t": "headline", "slug": slug, "name": name, "headline": payload["headline"]}
    else:
        return None
    return json.dumps(frame)


class _StatusCache:
    """Each cluster's wall status, shared by the wall sockets of this process for up to
    `seconds`: every socket sends one status frame per `STATUS_SECONDS` for each of its
    clusters, and on a scale-out worker each look-up is a Redis round trip (with 125 wall
    sockets on 10 clusters, 250 a second: two thirds of a worker's thread pool,
    bench/scaleout_bench.py). A status is about seconds-old states and changes anyway."""

    def __init__(self, seconds: float = 1.0):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict]] = {}

    def get(self, slug: str) -> dict:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(slug)
        if hit is not None and now - hit[0] < self.seconds:
            return hit[1]
        status = cluster_status(slug)
        with self._lock:
            self._entries[slug] = (now, status)
        return status

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


status_cache = _StatusCache()


class WallConsumer(AsyncWebsocketConsumer):
    """`ws/wall/<token>/`: a wall display's read-only socket, no sign-in.

    The token grants exactly its display's clusters: the socket joins their groups and no
    other, and forwards only their wall data (`payload["wall"]`, see dashboard/wall/aggregate.py). It
    also joins `wall.<id>`, where the admin side says `wall.revoked` (close now) or
    `wall.changed` (re-check the token and the clusters; close if the token no longer opens
    this display; tell the page to reload when what it laid out changed).

    Frames are JSON, applied in place by static/js/wall.js: `hello`, `cluster` (a whole
    bounded snapshot: no gap can corrupt the page, the next frame repairs it), `headline`,
    `status` (every `STATUS_SECONDS`: each cluster's collector state, its last change, the
    server time; doubles as the heartbeat the page's watchdog waits for) and `reload`.
    """

    STATUS_SECONDS = 5.0

    async def connect(self) -> None:
        self.token = self.scope["url_route"]["kwargs"]["token"]
        self.wall_id: int | None = None
        self.clusters: dict[str, str] = {}
        self.layout: list = []
        self._status_task: asyncio.Task | None = None
        self._rejoin: asyncio.Task | None = None
        state = await _wall_state(self.token)
        if state is None:
            await self.close(code=CLOSE_REVOKED)
            return
        self.wall_id, clusters, self.layout = state
        wall_group = access.wall_group(self.wall_id)
        await self.channel_layer.group_add(wall_group, self.channel_name)
        self._rejoin = asyncio.get_running_loop().create_task(
            keep_joined(self.channel_layer, wall_group, self.channel_name)
        )
        await self.accept()
        await self._follow(clusters)  # the feeds send only to accepted sockets
        await self.send(text_data=json.dumps({"t": "hello", "clusters": list(clusters)}))
        for slug, name in clusters.items():
            await self.send(text_data=await asyncio.to_thread(_cluster_now, slug, name))
        await self.send(text_data=await asyncio.to_thread(self._status_frame))
        self._status_task = asyncio.get_running_loop().create_task(self._status_loop())

    async def _follow(self, clusters: dict[str, str]) -> None:
        feeds = fanout()
        for slug in set(self.clusters) - set(clusters):
            feeds.unfollow(slug, self)
        self.clusters = clusters
        for slug in clusters:
            await feeds.follow(slug, self)  # one already followed: returns at once

    def _status_frame(self) -> str:
        return json.dumps(
            {
                "t": "status",
                "now": datetime.now(UTC).isoformat(),
                "clusters": {slug: status_cache.get(slug) for slug in self.clusters},
            }
        )

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.STATUS_SECONDS)
            # Off the loop: on a scale-out worker registry.get may read a Redis snapshot.
            await self.send(text_data=await asyncio.to_thread(self._status_frame))

    async def disconnect(self, code: int) -> None:
        for task in (self._status_task, self._rejoin):
            if task is not None:
                task.cancel()
        self._status_task = self._rejoin = None
        if self.wall_id is not None:
            await self.channel_layer.group_discard(
                access.wall_group(self.wall_id), self.channel_name
            )
        await self._follow({})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # read-only

    async def wall_revoked(self, event: dict) -> None:
        await self.close(code=CLOSE_REVOKED)

    async def wall_changed(self, event: dict) -> None:
        state = await _wall_state(self.token)
        if state is None or state[0] != self.wall_id:
            await self.close(code=CLOSE_REVOKED)
            return
        _, clusters, layout = state
        added = set(clusters) - set(self.clusters)
        await self._follow(clusters)
        for slug in added:
            await self.send(text_data=await asyncio.to_thread(_cluster_now, slug, clusters[slug]))
        if layout != self.layout:
            # Other clusters, names or options: the page re-lays itself out from scratch.
            self.layout = layout
            await self.send(text_data=json.dumps({"t": "reload"}))

    async def grid_delta(self, event: dict) -> None:
        slug = event.get("slug")
        # Only this display's clusters (the groups already ensure it; checked again here).
        if slug not in self.clusters:
            return
        name = self.clusters[slug]
        entry = await frames.unpacked(event)
        if entry is None:
            # A big delta by reference whose payload is gone: send the cluster's whole
            # frame as of now instead (what a new socket gets).
            await self.send(text_data=await asyncio.to_thread(_cluster_now, slug, name))
            return
        if name not in entry.wall_frames:
            entry.wall_frames[name] = _wall_frame(slug, name, entry.payload)
        text = entry.wall_frames[name]
        if text is not None:
            await self.send(text_data=text)
