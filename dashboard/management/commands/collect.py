"""`manage.py collect`: the scale-out collector process (dashboard/collect/supervisor.py).

Runs the collectors of the enabled clusters outside the web servers, one process per
cluster at a time (a lock in Redis; run two for takeover), publishes deltas through the
channel layer (channels-redis) and writes snapshots, status and coverage history.
Needs REDIS_URL; stops cleanly on SIGTERM/SIGINT, releasing its locks.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.collect.supervisor import CollectorSupervisor
from dashboard.pipeline import collector_factory


class Command(BaseCommand):
    help = "Run the cluster collectors (scale-out): snapshots and deltas through Redis."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ttl", type=float, default=None, help="lock TTL, seconds")
        parser.add_argument(
            "--reconcile", type=float, default=None, help="seconds between reads of the clusters"
        )
        parser.add_argument(
            "--clusters",
            default="",
            metavar="PATTERNS",
            help="comma-separated slug patterns (shell-style, e.g. 'prod-*,large') this "
            "process may collect; default: every enabled cluster. Shards the clusters over "
            "several `collect` processes (run two per shard for takeover)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set: `collect` shares its work through Redis")
        if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
            raise CommandError("the channel layer is in-memory: set REDIS_URL")
        asyncio.run(self._run(opts))

    async def _run(self, opts: dict[str, Any]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        supervisor = CollectorSupervisor(
            factory=collector_factory(),
            ttl=opts["ttl"],
            reconcile_seconds=opts["reconcile"],
            clusters=tuple(p.strip() for p in opts["clusters"].split(",") if p.strip()),
        )
        shard = f" (clusters {', '.join(supervisor.clusters)})" if supervisor.clusters else ""
        self.stdout.write(f"daemonviz collector {supervisor.owner}: running{shard}", ending="\n")
        self.stdout.flush()
        await supervisor.run(stop)
        self.stdout.write("daemonviz collector: stopped, locks released")
