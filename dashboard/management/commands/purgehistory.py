"""`manage.py purgehistory`: delete coverage history older than DAEMONVIZ_HISTORY_DAYS."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.history import timeline as history


class Command(BaseCommand):
    help = "Delete coverage history older than DAEMONVIZ_HISTORY_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        days = settings.DAEMONVIZ_HISTORY_DAYS if opts["days"] is None else opts["days"]
        if days < 1:
            raise CommandError("--days must be at least 1")
        deleted = history.purge(days)
        self.stdout.write(f"deleted {deleted} history row(s) older than {days} day(s)")
