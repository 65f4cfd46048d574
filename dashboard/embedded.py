"""The embedded default: collectors run inside the ASGI server process.

They must run on the server's own event loop, because the in-memory channel layer's
queues belong to that loop. Servers that speak the ASGI lifespan protocol (uvicorn) start
and stop them there; daphne does not, so they start on the first connection and, when
the loop already exists at import time (daphne creates it before loading the app), as
soon as that loop runs.
"""

from __future__ import annotations

import asyncio
import atexit
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from dashboard.collector import ClusterCollector, ClusterConfig, registry

log = logging.getLogger(__name__)


def _enabled_clusters() -> list[ClusterConfig]:
    from dashboard.models import Cluster

    churn = getattr(settings, "DAEMONVIZ_SIM_CHURN", None)
    return [ClusterConfig.from_model(c, churn=churn) for c in Cluster.objects.filter(enabled=True)]


class EmbeddedCollectors:
    def __init__(self) -> None:
        self._started = False
        self._collectors: list[ClusterCollector] = []

    async def ensure_started(self) -> None:
        if self._started or not settings.DAEMONVIZ_EMBEDDED_COLLECTOR:
            return
        self._started = True  # set before awaiting: concurrent first requests start once
        layer = get_channel_layer()
        for config in await sync_to_async(_enabled_clusters)():
            collector = ClusterCollector(config, layer, settings.DAEMONVIZ_COALESCE_SECONDS)
            registry.register(collector)
            collector.start()
            self._collectors.append(collector)
            log.info("collector started for cluster %s (%s)", config.slug, config.source)

    async def stop(self) -> None:
        for collector in self._collectors:
            await collector.stop()
            registry.unregister(collector.cluster.slug)
        self._collectors.clear()
        self._started = False

    def stop_sources_now(self) -> None:
        # At interpreter exit the loop is gone; stop simulator/reflector threads directly.
        for collector in self._collectors:
            collector.stop_source()

    def schedule_on(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon(lambda: loop.create_task(self.ensure_started()))


embedded = EmbeddedCollectors()
atexit.register(embedded.stop_sources_now)


def with_embedded_collectors(app):
    async def application(scope, receive, send):
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        await embedded.ensure_started()
        await app(scope, receive, send)

    return application


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await embedded.ensure_started()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await embedded.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
