"""`daemonviz coverage` / `kubectl daemonviz coverage`: the coverage matrix of a kubectl
snapshot or of a live cluster (list only), without Django.

The one implementation of the coverage command: `manage.py coverage` is a thin wrapper
around `add_coverage_arguments` and `coverage`. Options: --snapshot, --kubeconfig,
--context, --daemonset, --fail-under, --include-static, --cluster-domain, --plan, --color, plus
kubectl's habits: `-o json|table|wide` (`--format` is an alias), `-n/--namespace`, and a
kubeconfig that defaults to `$KUBECONFIG` (`:`-separated files merged as kubectl merges
them), then `~/.kube/config`. Exit status: 0; 1 for bad input (one error line); 2 when a
DaemonSet's coverage is below --fail-under; 3 when --fail-under has nothing to judge (no
DaemonSet targets any node: an empty or wrong dump must not pass a gate).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, NoReturn, TextIO

from dashboard.coverage.matrix import Matrix
from dashboard.coverage.plan import plan, templates_in_documents
from dashboard.coverage.plan_input import MAX_PLAN_BYTES, PlanError, PlanInput, parse_plan
from dashboard.coverage.plan_report import plan_json, plan_table
from dashboard.coverage.records import Record, Skipped
from dashboard.coverage.report import below, judged, to_json, to_table
from dashboard.coverage.snapshot import SnapshotError, build_matrix, decode_documents, read_inputs
from dashboard.coverage.states import State
from dashboard.coverage.static import columns_of
from dashboard.coverage.tax import parse_size

EXIT_ERROR = 1
# Exit status when a DaemonSet's coverage is below --fail-under (for cron/CI gating).
EXIT_BELOW_THRESHOLD = 2
# Exit status of --fail-under when no DaemonSet targets any node.
EXIT_NOTHING_TO_JUDGE = 3
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
            "nodes,daemonsets,pods,controllerrevisions,services,endpointslices,events,"
            "priorityclasses -A "
            "-o json) or of a live cluster "
            "(get/list only)."
        ),
    )
    add_coverage_arguments(cov)
    return parser


def add_coverage_arguments(parser: argparse.ArgumentParser) -> None:
    """The coverage command's options, for this parser and for `manage.py coverage`."""
    parser.add_argument(
        "--snapshot",
        nargs="+",
        metavar="FILE",
        help="kubectl JSON output: files, directories of .json files, or - for stdin "
        "(default: list the live cluster of the kubeconfig)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file(s), ':'-separated (default: $KUBECONFIG, then ~/.kube/config)",
    )
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    parser.add_argument(
        "-n", "--namespace", metavar="NS", help="only the DaemonSets of this namespace"
    )
    parser.add_argument(
        "-o",
        "--output",
        "--format",
        dest="output",
        choices=("table", "wide", "json"),
        default="table",
        help="table (the matrix), wide (the matrix, then one line per targeted cell), json",
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
    parser.add_argument(
        "--daemon-size",
        type=_daemon_size,
        metavar="RES=QTY,…",
        help="the JSON's pools: which nodes have no room for one more daemon of this size "
        "(e.g. cpu=200m,memory=256Mi; default: the largest daemon pod's requests)",
    )
    parser.add_argument(
        "--plan",
        action="append",
        metavar="FILE",
        help="preview where DaemonSet manifests (YAML or JSON, multi-document) and node "
        "patches (label/taint/untaint lines) would place daemons, without applying "
        "anything; - for stdin; may be repeated (docs/plan.md)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the symbols: auto = when stdout is a terminal and NO_COLOR is unset",
    )


def _daemon_size(text: str) -> dict[str, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def kubeconfig_paths(option: str | None, environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """--kubeconfig, else $KUBECONFIG, else ~/.kube/config; each may list files with ':'."""
    value = option or environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [os.path.expanduser(p) for p in value.split(os.pathsep) if p]


def _in_namespace(record: Record, namespace: str) -> bool:
    ns = getattr(record, "namespace", None)  # nodes have none: they are cluster-wide
    return ns is None or ns == namespace


class CoverageError(Exception):
    """Bad input, in one line: the CLI prints it and exits 1, manage.py raises CommandError."""


def read_plan(args: argparse.Namespace) -> PlanInput | None:
    """The --plan files as one plan (PlanError, as a CoverageError, when one is wrong)."""
    if not args.plan:
        return None
    if args.fail_under is not None:
        raise CoverageError(
            "--fail-under judges a cluster's pods; a --plan has none yet: use one or the other"
        )
    if "-" in args.plan and "-" in (args.snapshot or ()):
        raise CoverageError("--plan - and --snapshot - cannot both read stdin")
    texts = []
    for path in args.plan:
        try:
            if path == "-":
                data = sys.stdin.buffer.read(MAX_PLAN_BYTES + 1)
            else:
                with open(path, "rb") as f:
                    data = f.read(MAX_PLAN_BYTES + 1)
        except OSError as exc:
            raise CoverageError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            texts.append((path, parse_plan(data, args.namespace)))
        except PlanError as exc:
            raise CoverageError(f"{path}: {exc}") from None
    manifests = tuple(m for _, p in texts for m in p.manifests)
    keys = [m.daemonset.key for m in manifests]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise CoverageError(f"DaemonSet {twice[0]} is planned in more than one --plan file")
    return PlanInput(manifests, tuple(x for _, p in texts for x in p.patches))


def load(
    args: argparse.Namespace, stderr: TextIO, planned: PlanInput | None = None
) -> tuple[list[Record], Counter[str], dict[str, dict[str, Any]]]:
    """The cluster's records, the kinds skipped, and the live pod templates of the
    DaemonSets a plan names."""
    keys = [m.daemonset.key for m in planned.manifests] if planned else []
    templates: dict[str, dict[str, Any]] = {}
    if args.snapshot:
        docs = read_inputs(args.snapshot)
        records, skipped = decode_documents(docs)
        templates = templates_in_documents(docs, keys)
    else:
        # Imported here: the snapshot path must work without touching the kube layer.
        from dashboard.kube.clients import KubeconfigError, client_from_kubeconfigs
        from dashboard.kube.snapshot import ClusterUnreachable, list_cluster
        from dashboard.kube.templates import daemonset_templates

        unreadable: list[Skipped] = []
        try:
            api = client_from_kubeconfigs(
                kubeconfig_paths(args.kubeconfig, os.environ), args.context
            )
            try:
                by_resource = list_cluster(
                    api, namespace=args.namespace, on_skipped=unreadable.append
                )
                if keys:
                    try:
                        templates = daemonset_templates(api, keys)
                    except Exception as exc:  # compared by the records instead
                        stderr.write(f"note: cannot read the live pod templates: {exc}\n")
            finally:
                api.close()
        except (KubeconfigError, ClusterUnreachable) as exc:
            raise SnapshotError(str(exc)) from None
        if unreadable:
            # Like a collector: one object we cannot read must not hide the cluster.
            n = len(unreadable)
            names = "; ".join(item.describe() for item in unreadable[:5])
            more = f"; and {n - 5} more" if n > 5 else ""
            noun = "object" if n == 1 else "objects"
            stderr.write(f"note: skipped {n} {noun} that cannot be read: {names}{more}\n")
        records = [r for rs in by_resource.values() for r in rs]
        skipped = Counter[str]()
    if args.namespace:
        records = [r for r in records if _in_namespace(r, args.namespace)]
    return records, skipped, templates


def terminal(args: argparse.Namespace, stdout: TextIO) -> tuple[int | None, bool]:
    """The width to fit the table to and whether to colour it. Fitted on a terminal (its
    size) or when COLUMNS is set; piped output and `-o wide` keep full names for scripts."""
    tty = stdout.isatty()
    width = None
    if args.output != "wide" and (tty or os.environ.get("COLUMNS")):
        width = max(40, shutil.get_terminal_size().columns)
    choice = args.color
    color = choice == "always" or (choice == "auto" and tty and not os.environ.get("NO_COLOR"))
    return width, color


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
    """Print the report; returns the exit status (0, 2 or 3). Bad input raises
    CoverageError."""
    planned = read_plan(args)
    try:
        records, skipped, templates = load(args, stderr, planned)
    except SnapshotError as exc:
        raise CoverageError(str(exc)) from None
    result = plan(records, planned, templates) if planned else None
    matrix = result.after if result else build_matrix(records)
    if skipped:
        notes = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        stderr.write(f"note: skipped objects of kinds the matrix does not use: {notes}\n")
    only = args.daemonset
    statics = {c.key for c in columns_of(matrix)}
    if only and only not in matrix.daemonsets and only not in statics:
        known = ", ".join(sorted(matrix.daemonsets)) or "none"
        raise CoverageError(f"DaemonSet {only!r} not found (known: {known})")
    if args.output == "json":
        if result is not None:
            doc = plan_json(
                result,
                daemonset=only,
                generated_at=datetime.now(UTC),
                cluster_domain=args.cluster_domain,
                daemon_size=args.daemon_size,
            )
        else:
            doc = to_json(
                matrix,
                daemonset=only,
                generated_at=datetime.now(UTC),
                cluster_domain=args.cluster_domain,
                daemon_size=args.daemon_size,
            )
        stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        width, color = terminal(args, stdout)
        stdout.write(
            to_table(
                matrix,
                daemonset=only,
                width=width,
                color=color,
                include_static=args.include_static,
            )
        )
        if args.output == "wide":
            stdout.write("\n" + cell_lines(matrix, only))
        if result is not None:
            stdout.write("\n" + plan_table(result, daemonset=only, wide=args.output == "wide"))
    if args.fail_under is not None:
        if not judged(matrix, only):
            stderr.write(
                f"nothing to judge: {len(matrix.nodes)} nodes, "
                f"{len(matrix.daemonsets)} DaemonSets, none targets a node\n"
            )
            return EXIT_NOTHING_TO_JUDGE
        low = below(matrix, args.fail_under, only, include_static=args.include_static)
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
    except CoverageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:  # `daemonviz coverage … | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
