"""Websocket consumers: thin. They check access, join the cluster's group and forward the
collector's deltas, rendered for each client's filters by `dashboard.fragments`."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from dashboard.collector import group_name, registry

# Close codes in the 4000–4999 range are the application's own (RFC 6455 §7.4.2).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNKNOWN_CLUSTER = 4404


class GridConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        from dashboard.grid import GridFilters

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
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
