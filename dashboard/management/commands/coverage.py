"""`manage.py coverage`: the coverage matrix of a kubectl snapshot or a live cluster."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dashboard.coverage.records import Record, Skipped
from dashboard.coverage.report import below, judged, to_json, to_table
from dashboard.coverage.snapshot import SnapshotError, build_matrix, decode_documents, read_inputs
from dashboard.coverage.static import static_columns

# Exit status when a DaemonSet's coverage is below --fail-under (for cron/CI gating).
EXIT_BELOW_THRESHOLD = 2
# Exit status of --fail-under when no DaemonSet targets any node: an empty or wrong dump
# must not pass a gate.
EXIT_NOTHING_TO_JUDGE = 3


class Command(BaseCommand):
    help = (
        "Print the node × DaemonSet coverage matrix of a snapshot "
        "(kubectl get nodes,daemonsets,pods,controllerrevisions,services,endpointslices -A -o json) "
        "or of a live cluster."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--snapshot",
            nargs="+",
            metavar="FILE",
            help="kubectl JSON output: files, directories of .json files, or - for stdin",
        )
        source.add_argument("--kubeconfig", metavar="PATH", help="list a live cluster (read-only)")
        parser.add_argument(
            "--context", metavar="NAME", help="kubeconfig context (default: current)"
        )
        parser.add_argument("--format", choices=("table", "json"), default="table")
        parser.add_argument(
            "-o",
            "--output",
            choices=("wide",),
            help="wide: never cut names to the terminal's width",
        )
        parser.add_argument(
            "--color",
            choices=("auto", "always", "never"),
            default="auto",
            help="colour the symbols: auto = when stdout is a terminal and NO_COLOR is unset",
        )
        parser.add_argument("--daemonset", metavar="NS/NAME", help="only this DaemonSet")
        parser.add_argument(
            "--fail-under",
            type=float,
            metavar="PCT",
            help=(
                f"exit {EXIT_BELOW_THRESHOLD} when any DaemonSet's coverage is below PCT, "
                f"{EXIT_NOTHING_TO_JUDGE} when no DaemonSet targets any node"
            ),
        )
        parser.add_argument(
            "--include-static",
            action="store_true",
            help="also show static pods (kubelet-managed mirror pods) in the table, and hold "
            "them to --fail-under (the JSON always lists them)",
        )
        parser.add_argument(
            "--cluster-domain",
            default="cluster.local",
            metavar="DOMAIN",
            help="the cluster's DNS domain, for Service names (default: cluster.local)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            records, skipped = self._load(options)
        except SnapshotError as exc:
            raise CommandError(str(exc)) from None
        matrix = build_matrix(records)
        if skipped:
            notes = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
            self.stderr.write(f"note: skipped objects of kinds the matrix does not use: {notes}")
        only = options["daemonset"]
        statics = {c.key for c in static_columns(matrix.nodes, matrix.static_pods.values())}
        if only and only not in matrix.daemonsets and only not in statics:
            known = ", ".join(sorted(matrix.daemonsets)) or "none"
            raise CommandError(f"DaemonSet {only!r} not found (known: {known})")
        include_static = options["include_static"]
        if options["format"] == "json":
            doc = to_json(
                matrix,
                daemonset=only,
                generated_at=timezone.now(),
                cluster_domain=options["cluster_domain"],
            )
            self.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            width, color = self._terminal(options)
            table = to_table(
                matrix,
                daemonset=only,
                width=width,
                color=color,
                include_static=include_static,
            )
            self.stdout.write(table, ending="")
        threshold = options["fail_under"]
        if threshold is not None:
            if not judged(matrix, only):
                self.stderr.write(
                    f"nothing to judge: {len(matrix.nodes)} nodes, "
                    f"{len(matrix.daemonsets)} DaemonSets, none targets a node"
                )
                sys.exit(EXIT_NOTHING_TO_JUDGE)
            low = below(matrix, threshold, only, include_static=include_static)
            if low:
                for key, cov in low:
                    self.stderr.write(f"coverage of {key} is {cov:g}%, below {threshold:g}%")
                sys.exit(EXIT_BELOW_THRESHOLD)

    def _terminal(self, options: dict[str, Any]) -> tuple[int | None, bool]:
        """The width to fit the table to and whether to colour it. Fitted on a terminal
        (its size) or when COLUMNS is set; piped output keeps full names for scripts."""
        tty = self.stdout.isatty()
        width = None
        if options["output"] != "wide" and (tty or os.environ.get("COLUMNS")):
            width = max(40, shutil.get_terminal_size().columns)
        choice = options["color"]
        color = choice == "always" or (choice == "auto" and tty and not os.environ.get("NO_COLOR"))
        return width, color

    def _load(self, options: dict[str, Any]) -> tuple[list[Record], Counter[str]]:
        if options["snapshot"]:
            return decode_documents(read_inputs(options["snapshot"]))
        # Imported here: the snapshot path must work without touching the kube layer.
        from dashboard.kube.clients import KubeconfigError, client_from_kubeconfig
        from dashboard.kube.snapshot import ClusterUnreachable, list_cluster

        unreadable: list[Skipped] = []
        try:
            api = client_from_kubeconfig(options["kubeconfig"], options["context"] or None)
            by_resource = list_cluster(api, on_skipped=unreadable.append)
        except (KubeconfigError, ClusterUnreachable) as exc:
            raise SnapshotError(str(exc)) from None
        if unreadable:
            # Like a collector: one object we cannot read must not hide the cluster.
            n = len(unreadable)
            names = "; ".join(item.describe() for item in unreadable[:5])
            more = f"; and {n - 5} more" if n > 5 else ""
            noun = "object" if n == 1 else "objects"
            self.stderr.write(f"note: skipped {n} {noun} that cannot be read: {names}{more}")
        return [r for records in by_resource.values() for r in records], Counter()
