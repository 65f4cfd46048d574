"""`manage.py coverage`: the coverage matrix of a kubectl snapshot or a live cluster.

A thin wrapper: the options and the work are the installable CLI's
(`dashboard/cli/main.py`, `daemonviz coverage`), so the two never drift apart.
"""

from __future__ import annotations

import argparse
import io
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.cli.main import (
    EXIT_BELOW_THRESHOLD,
    EXIT_NOTHING_TO_JUDGE,
    CoverageError,
    add_coverage_arguments,
    coverage,
)

__all__ = ["EXIT_BELOW_THRESHOLD", "EXIT_NOTHING_TO_JUDGE", "Command"]


class Command(BaseCommand):
    help = (
        "Print the node × DaemonSet coverage matrix of a snapshot "
        "(kubectl get nodes,daemonsets,pods,controllerrevisions,services,endpointslices,"
        "events,priorityclasses -A -o json) "
        "or of a live cluster (get/list only; default: $KUBECONFIG, then ~/.kube/config)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_coverage_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [
            *("snapshot", "kubeconfig", "context", "namespace", "output", "daemonset"),
            *("fail_under", "include_static", "cluster_domain", "daemon_size", "plan", "color"),
        ]
        namespace = argparse.Namespace(**{name: options[name] for name in names})
        out, err = _Terminal(self.stdout), io.StringIO()
        try:
            status = coverage(namespace, out, err)
        except CoverageError as exc:
            raise CommandError(str(exc)) from None
        finally:
            self.stdout.write(out.getvalue(), ending="")
            self.stderr.write(err.getvalue(), ending="")
        if status:
            sys.exit(status)


class _Terminal(io.StringIO):
    """Collects the report while telling `coverage` whether the real stdout is a terminal
    (it fits the table to the terminal's width and colours it only then)."""

    def __init__(self, real: Any):
        super().__init__()
        self._real = real

    def isatty(self) -> bool:
        return bool(self._real.isatty())
