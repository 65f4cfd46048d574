"""Websocket consumers: thin. They check access, join the cluster's group and forward the
collector's deltas, rendered for each client's filters by `dashboard.fragments`."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from dashboard import access
from dashboard.collector import group_name, registry

# Close codes in the 4000–4999 range are the application's own (RFC 6455 §7.4.2).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_REVOKED = 4403  # wall token unknown, revoked or rotated
CLOSE_UNKNOWN_CLUSTER = 4404


class GridConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        from dashboard.grid import GridFilters

        if not access.is_viewer(self.scope.get("user")):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        if registry.get(self.slug) is None:
            await self.close(code=CLOSE_UNKNOWN_CLUSTER)
            return
        query = QueryDict(mutable=True)
        for key, values in parse_qs(self.scope.get("query_string", b"").decode()).items():
            query.setlist(key, values)
        self.filters = GridFilters.from_query(query)
        self.group = group_name(self.slug)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Tell the page where the matrix stands, so it re-syncs if it rendered an older one
        # (a reconnect after missed deltas, or a collector restarted with a new matrix).
        from dashboard import fragments

        # No lock: reading one int is atomic, and waiting for a long sync here would
        # block the event loop for every socket.
        await self.send(text_data=fragments.hello_frame(registry.get(self.slug).matrix))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        # Read-only socket: the browser has nothing to say to the server.
        return

    async def grid_delta(self, event: dict) -> None:
        from dashboard import fragments

        frame = fragments.client_frame(event["payload"], self.filters)
        if frame:
            await self.send(text_data=frame)


@database_sync_to_async
def _wall_state(token: str) -> tuple[int, dict[str, str]] | None:
    wall = access.wall_for_token(token)
    if wall is None:
        return None
    return wall.pk, {c.slug: c.name for c in access.wall_clusters(wall)}


def _headline_now(slug: str, name: str) -> str:
    """A cluster's current headline block (worker thread: it waits for the matrix lock)."""
    from dashboard import fragments
    from dashboard.coverage.summary import cluster_summary

    collector = registry.get(slug)
    if collector is None:
        return fragments.render_wall_cluster(slug, name, None, oob=True)
    with collector.lock:
        numbers = fragments.headline(cluster_summary(collector.matrix))
    return fragments.render_wall_cluster(slug, name, numbers, collector.status, oob=True)


class WallConsumer(AsyncWebsocketConsumer):
    """`ws/wall/<token>/`: a wall display's read-only socket, no sign-in.

    The token grants exactly its display's clusters: the socket joins their groups and no
    other, and forwards only their headline numbers. It also joins `wall.<id>`, where the
    admin side says `wall.revoked` (close now) or `wall.changed` (re-check the token and
    the clusters; close if the token no longer opens this display).
    """

    async def connect(self) -> None:
        self.token = self.scope["url_route"]["kwargs"]["token"]
        self.wall_id: int | None = None
        self.clusters: dict[str, str] = {}
        state = await _wall_state(self.token)
        if state is None:
            await self.close(code=CLOSE_REVOKED)
            return
        self.wall_id = state[0]
        await self.channel_layer.group_add(access.wall_group(self.wall_id), self.channel_name)
        await self._follow(state[1])
        await self.accept()
        for slug, name in state[1].items():
            await self.send(text_data=await asyncio.to_thread(_headline_now, slug, name))

    async def _follow(self, clusters: dict[str, str]) -> None:
        for slug in set(self.clusters) - set(clusters):
            await self.channel_layer.group_discard(group_name(slug), self.channel_name)
        for slug in set(clusters) - set(self.clusters):
            await self.channel_layer.group_add(group_name(slug), self.channel_name)
        self.clusters = clusters

    async def disconnect(self, code: int) -> None:
        if self.wall_id is not None:
            await self.channel_layer.group_discard(
                access.wall_group(self.wall_id), self.channel_name
            )
        await self._follow({})

    async def receive(self, text_data=None, bytes_data=None) -> None:
        return  # read-only

    async def wall_revoked(self, event: dict) -> None:
        await self.close(code=CLOSE_REVOKED)

    async def wall_changed(self, event: dict) -> None:
        state = await _wall_state(self.token)
        if state is None or state[0] != self.wall_id:
            await self.close(code=CLOSE_REVOKED)
            return
        added = set(state[1]) - set(self.clusters)
        await self._follow(state[1])
        for slug in added:
            await self.send(text_data=await asyncio.to_thread(_headline_now, slug, state[1][slug]))

    async def grid_delta(self, event: dict) -> None:
        from dashboard import fragments

        payload = event["payload"]
        slug = payload.get("slug")
        # Only this display's clusters (the groups already ensure it; checked again here).
        if slug not in self.clusters or not payload.get("headline"):
            return
        await self.send(
            text_data=fragments.render_wall_cluster(
                slug, self.clusters[slug], payload["headline"], oob=True
            )
        )
