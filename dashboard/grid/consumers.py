"""The grid's websocket consumer: thin. It checks access, joins the cluster's group and
forwards the collector's deltas, framed for the client's filters by dashboard/grid/frames.py."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from dashboard import access
from dashboard.collect.registry import registry
from dashboard.grid import frames
from dashboard.grid.fanout import fanout, keep_joined
from dashboard.grid.model import GridFilters

# Close codes in the 4000–4999 range are the application's own (RFC 6455, section 7.4.2).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_REVOKED = 4403  # wall token unknown, revoked or rotated
CLOSE_UNKNOWN_CLUSTER = 4404


class GridConsumer(AsyncWebsocketConsumer):
    """`ws/clusters/<slug>/grid/`: deltas arrive through the process's feed of the cluster
    (fanout.py), not through this socket's own channel."""

    async def connect(self) -> None:
        if not access.is_viewer(self.scope.get("user")):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        # Off the loop: on a scale-out worker this reads (and may decode) a Redis snapshot.
        collector = await asyncio.to_thread(registry.get, self.slug)
        if collector is None:
            await self.close(code=CLOSE_UNKNOWN_CLUSTER)
            return
        query = QueryDict(mutable=True)
        for key, values in parse_qs(self.scope.get("query_string", b"").decode()).items():
            query.setlist(key, values)
        self.filters = GridFilters.from_query(query)
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            self.session_group = access.session_group(session_key)
            await self.channel_layer.group_add(self.session_group, self.channel_name)
            # A tab can stay open for days; signing out must still close it.
            self._rejoin = asyncio.get_running_loop().create_task(
                keep_joined(self.channel_layer, self.session_group, self.channel_name)
            )
        await self.accept()
        # Deltas from now on (the feed sends only to accepted sockets), then the hello: a
        # delta published in between is one the page either rendered or gets.
        self.following = self.slug
        await fanout().follow(self.slug, self)
        # Tell the page where the matrix stands, so it re-syncs if it rendered an older one
        # (a reconnect after missed deltas, or a collector restarted with a new matrix).
        # No lock: reading one int is atomic, and waiting for a long sync here would
        # block the event loop for every socket.
        await self.send(text_data=frames.hello_frame(collector.matrix))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "following"):
            fanout().unfollow(self.following, self)
        if hasattr(self, "_rejoin"):
            self._rejoin.cancel()
        if hasattr(self, "session_group"):
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Read-only socket: the browser has nothing to say to the server.
        return

    async def session_ended(self, event: dict) -> None:
        # The session signed out (dashboard/auth/signals.py): no more data for this socket.
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def grid_delta(self, event: dict) -> None:
        entry = await frames.unpacked(event)
        if entry is None:
            # A big delta by reference whose payload is gone (far behind, or Redis lost
            # it): the page cannot have it, so it re-fetches the grid.
            await self.send(text_data=frames.resync_frame(event))
            return
        # Built once per distinct filter set and shared by every socket with that view.
        await self.send(text_data=entry.frame(self.filters))
