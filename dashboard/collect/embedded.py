"""The embedded default: collectors run inside the ASGI server process.

They must run on the server's own event loop, because the in-memory channel layer's
queues belong to that loop. Servers that speak the ASGI lifespan protocol (uvicorn) start
and stop them there; daphne does not, so they start on the first connection and, when
the loop already exists at import time (daphne creates it before loading the app), as
soon as that loop runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from dashboard.clusters.config import ClusterConfig

from .collector import ClusterCollector
from .desired import CollectorFactory, enabled_clusters
from .registry import registry

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class EmbeddedCollectors:
    """The collectors of this process, kept in line with the enabled Cluster rows.

    Threads: collectors live on the ASGI event loop, while admin saves run in Django's
    sync thread pool. A save never touches a collector: its signal calls
    `request_reconcile()`, which hands the work to the loop captured at start-up
    (`call_soon_threadsafe`); `reconcile()` then runs there, one at a time.
    """

    def __init__(self, factory: CollectorFactory) -> None:
        self.factory = factory
        self._started = False
        self._collectors: dict[str, ClusterCollector] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def started(self) -> bool:
        return self._started

    async def ensure_started(self) -> None:
        if self._started or not settings.DAEMONVIZ_EMBEDDED_COLLECTOR:
            return
        self._started = True  # set before awaiting: concurrent first requests start once
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        await self.reconcile()

    async def reconcile(self) -> None:
        """Start collectors of new clusters, restart those whose configuration changed,
        stop those disabled or deleted."""
        if not self._started or self._lock is None:
            return
        async with self._lock:
            desired = await sync_to_async(enabled_clusters)()
            for slug, collector in list(self._collectors.items()):
                if desired.get(slug) != collector.cluster:
                    await self._stop(slug)
            for slug, config in desired.items():
                if slug not in self._collectors:
                    self._start(config)

    def request_reconcile(self) -> bool:
        """Thread-safe: have the loop reconcile soon. False when nothing runs here."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._started:
            return False
        # A fresh context: the caller's (a request's sync thread) carries asgiref's
        # thread-sensitive executor state, which must not leak into a task on the loop.
        loop.call_soon_threadsafe(self._spawn_reconcile, context=contextvars.Context())
        return True

    def _spawn_reconcile(self) -> None:
        # On the loop. Keep a reference: the loop only holds weak ones to tasks.
        task = asyncio.get_running_loop().create_task(self.reconcile())
        self._tasks.add(task)
        task.add_done_callback(self._reconciled)

    def _reconciled(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reconciling collectors failed", exc_info=task.exception())

    def _start(self, config: ClusterConfig) -> None:
        collector = self.factory(config)
        registry.register(collector)
        collector.start()
        self._collectors[config.slug] = collector
        log.info("collector started for cluster %s (%s)", config.slug, config.source)

    async def _stop(self, slug: str) -> None:
        collector = self._collectors.pop(slug)
        if registry.get(slug) is collector:
            registry.unregister(slug)
        try:
            await collector.stop()  # also writes the history it still holds (off the loop)
        except Exception:  # stop() does not raise; this pass must go on if it ever did
            log.exception("stopping the collector of %s failed", slug)
        log.info("collector stopped for cluster %s", slug)

    async def stop(self) -> None:
        for slug in list(self._collectors):
            await self._stop(slug)
        self._started = False
        self._loop = None

    def stop_sources_now(self) -> None:
        # At interpreter exit the loop is gone; stop simulator/reflector threads directly.
        for collector in self._collectors.values():
            collector.stop_source()

    def schedule_on(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon(lambda: loop.create_task(self.ensure_started()))

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app` with these collectors started on its event loop (and, for servers that
        speak the ASGI lifespan protocol, stopped there)."""

        async def application(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
                return
            if registry.loop is None or not registry.loop.is_running():
                registry.loop = asyncio.get_running_loop()
            await self.ensure_started()
            await app(scope, receive, send)

        return application

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.ensure_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
