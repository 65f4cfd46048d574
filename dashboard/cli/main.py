"""`daemonviz coverage` / `kubectl daemonviz coverage`: the coverage matrix of a kubectl
snapshot or of a live cluster (list only), without Django.

It takes the options of `manage.py coverage` (--snapshot, --kubeconfig, --context,
--format, --daemonset, --fail-under) plus kubectl's habits: `-o json|table|wide`,
`-n/--namespace`, and a kubeconfig that defaults to `$KUBECONFIG` (`:`-separated files
merged as kubectl merges them), then `~/.kube/config`. Exit status: 0, 1 for bad input
(one error line), 2 when a DaemonSet's coverage is below --fail-under.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import NoReturn, TextIO

from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import Record
from dashboard.coverage.report import below, to_json, to_table
from dashboard.coverage.snapshot import SnapshotError, build_matrix, decode_documents, read_inputs
from dashboard.coverage.states import State

EXIT_ERROR = 1
# Exit status when a DaemonSet's coverage is below --fail-under (for cron/CI gating).
EXIT_BELOW_THRESHOLD = 2
DEFAULT_KUBECONFIG = os.path.join("~", ".kube", "config")


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 like every other bad input: argparse's own 2 would read as
    "coverage below the threshold" to a CI gate."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _version() -> str:
    try:
        return metadata.version("daemonviz")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


def build_parser(prog: str = "daemonviz") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Kubernetes DaemonSet coverage, read-only.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cov = commands.add_parser(
        "coverage",
        help="the node × DaemonSet coverage matrix of a snapshot or a live cluster",
        description=(
            "Print the node × DaemonSet coverage matrix of a snapshot (kubectl get "
            "nodes,daemonsets,pods,controllerrevisions -A -o json) or of a live cluster "
            "(get/list only)."
        ),
    )
    cov.add_argument(
        "--snapshot",
        nargs="+",
        metavar="FILE",
        help="kubectl JSON output: files, directories of .json files, or - for stdin "
        "(default: list the live cluster of the kubeconfig)",
    )
    cov.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file(s), ':'-separated (default: $KUBECONFIG, then ~/.kube/config)",
    )
    cov.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    cov.add_argument(
        "-n", "--namespace", metavar="NS", help="only the DaemonSets of this namespace"
    )
    cov.add_argument(
        "-o",
        "--output",
        "--format",
        dest="output",
        choices=("table", "wide", "json"),
        default="table",
        help="table (the matrix), wide (the matrix, then one line per targeted cell), json",
    )
    cov.add_argument("--daemonset", metavar="NS/NAME", help="only this DaemonSet")
    cov.add_argument(
        "--fail-under",
        type=float,
        metavar="PCT",
        help=f"exit {EXIT_BELOW_THRESHOLD} when any DaemonSet's coverage is below PCT",
    )
    return parser


def kubeconfig_paths(option: str | None, environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """--kubeconfig, else $KUBECONFIG, else ~/.kube/config; each may list files with ':'."""
    value = option or environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [os.path.expanduser(p) for p in value.split(os.pathsep) if p]


def _in_namespace(record: Record, namespace: str) -> bool:
    ns = getattr(record, "namespace", None)  # nodes have none: they are cluster-wide
    return ns is None or ns == namespace


def load(args: argparse.Namespace, stderr: TextIO) -> tuple[list[Record], Counter[str]]:
    if args.snapshot:
        records, skipped = decode_documents(read_inputs(args.snapshot))
    else:
        # Imported here: the snapshot path must work without touching the kube layer.
        from dashboard.kube.clients import KubeconfigError, client_from_kubeconfigs
        from dashboard.kube.snapshot import ClusterUnreachable, list_cluster

        try:
            api = client_from_kubeconfigs(
                kubeconfig_paths(args.kubeconfig, os.environ), args.context
            )
            try:
                by_resource = list_cluster(api, namespace=args.namespace)
            finally:
                api.close()
        except (KubeconfigError, ClusterUnreachable) as exc:
            raise SnapshotError(str(exc)) from None
        records = [r for rs in by_resource.values() for r in rs]
        skipped = Counter[str]()
    if args.namespace:
        records = [r for r in records if _in_namespace(r, args.namespace)]
    return records, skipped


def cell_lines(matrix: Matrix, daemonset: str | None) -> str:
    """`-o wide`'s extra part: one line per targeted cell, kubectl-style columns."""
    rows = [("NODE", "DAEMONSET", "STATE", "POD", "READY", "RESTARTS", "REASON")]
    for (node, key), cell in sorted(matrix.cells.items()):
        if (daemonset and key != daemonset) or cell.state is State.NOT_TARGETED:
            continue
        rows.append(
            (
                node,
                key,
                cell.state.value,
                cell.pod or "-",
                cell.ready_containers or "-",
                str(cell.restarts),
                cell.reason,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "".join(
        "   ".join(f"{v:<{w}}" for v, w in zip(r[:-1], widths, strict=True)) + f"   {r[-1]}\n"
        for r in rows
    )


def coverage(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        records, skipped = load(args, stderr)
    except SnapshotError as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    matrix = build_matrix(records)
    if skipped:
        notes = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        stderr.write(f"note: skipped objects of kinds the matrix does not use: {notes}\n")
    only = args.daemonset
    if only and only not in matrix.daemonsets:
        known = ", ".join(sorted(matrix.daemonsets)) or "none"
        stderr.write(f"error: DaemonSet {only!r} not found (known: {known})\n")
        return EXIT_ERROR
    if args.output == "json":
        doc = to_json(matrix, daemonset=only, generated_at=datetime.now(UTC))
        stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        stdout.write(to_table(matrix, daemonset=only))
        if args.output == "wide":
            stdout.write("\n" + cell_lines(matrix, only))
    if args.fail_under is not None:
        low = below(matrix, args.fail_under, only)
        for key, cov in low:
            stderr.write(f"coverage of {key} is {cov:g}%, below {args.fail_under:g}%\n")
        if low:
            return EXIT_BELOW_THRESHOLD
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `daemonviz` and `kubectl-daemonviz` entry points ([project.scripts])."""
    prog = os.path.basename(sys.argv[0]) if argv is None else "daemonviz"
    prog = "kubectl daemonviz" if prog.startswith("kubectl-") else "daemonviz"
    args = build_parser(prog).parse_args(argv)
    try:
        return coverage(args, sys.stdout, sys.stderr)
    except BrokenPipeError:  # `daemonviz coverage … | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
