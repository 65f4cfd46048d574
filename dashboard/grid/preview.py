"""The Preview page's work (docs/plan.md): a pasted or uploaded plan, predicted against a
copy of the cluster's records. The records are copied under the collector's lock (they are
immutable, so the copy is a list of references) and the plan is computed outside it.
Nothing is sent to the cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboard.collect.registry import Collector
from dashboard.coverage.grouping import natural_key
from dashboard.coverage.plan import DaemonSetPlan, PlanResult, plan
from dashboard.coverage.plan_input import MAX_PLAN_BYTES, PlanError, parse_plan
from dashboard.coverage.plan_report import SECTIONS, cell_plans
from dashboard.coverage.records import Record

# The word and symbol each predicted cell shows, by the plan list its node is in.
CELL_WORDS = {
    "starts_on": ("+", "starts"),
    "targets": ("✓", "runs"),
    "replaced_on": ("⟳", "replaced"),
    "outdated_on": ("↑", "stays old"),
    "stops_on": ("✗", "stops"),
    "kept_on": ("○", "kept, not targeted"),
    "not_targeted": ("·", "not targeted"),
}
MAX_ROWS = 2000  # nodes shown in the predicted grid; the counts cover every node


@dataclass
class PredictedCell:
    section: str
    symbol: str
    word: str
    rule: str
    unfit: bool
    now: str  # the cell's state today ("" for a DaemonSet that does not exist yet)


@dataclass
class PredictedRow:
    node: str
    cells: list[PredictedCell]
    patches: list[str]


@dataclass
class Preview:
    plans: list[DaemonSetPlan]
    rows: list[PredictedRow]
    hidden_rows: int
    patched: dict[str, list[str]]
    sections: list[tuple[str, str]] = field(default_factory=lambda: list(SECTIONS))

    @property
    def rule_lists(self) -> list[tuple[str, list[tuple[str, str, str]]]]:
        """Per DaemonSet, every node with its list and rule (the page's details)."""
        sections = [*self.sections, ("targets", "targets"), ("not_targeted", "not on")]
        return [
            (p.key, [(label, n.node, n.rule) for attr, label in sections for n in getattr(p, attr)])
            for p in self.plans
        ]

    @property
    def unfit(self) -> list[tuple[str, str, str]]:
        return [(p.key, n.node, n.rule) for p in self.plans for n in p.would_not_fit]


def cluster_records(collector: Collector) -> list[Record]:
    """Every record the collector's matrix holds that a plan needs. Call with its lock."""
    m = collector.matrix
    return [
        *m.nodes.values(),
        *m.daemonsets.values(),
        *m.revisions.values(),
        *m.pods.values(),
        *m.other_pods(),
        *m.services(),
        *m.endpoint_slices(),
    ]


def read_text(posted: str, upload: Any | None) -> str:
    """The plan from the form: the uploaded file if one came, else the pasted text."""
    if upload is not None and upload.size:
        if upload.size > MAX_PLAN_BYTES:
            raise PlanError(
                f"the file has {upload.size:,} bytes; a plan may be at most "
                f"{MAX_PLAN_BYTES // 1024} KiB"
            )
        data = upload.read(MAX_PLAN_BYTES + 1)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"the file is not UTF-8 text (byte {exc.start})") from None
    return posted


def preview(records: list[Record], text: str) -> Preview:
    """PlanError when the text is wrong."""
    result = plan(records, parse_plan(text))
    return _preview(result)


def _preview(result: PlanResult) -> Preview:
    by_plan = [cell_plans(p) for p in result.plans]
    excluded = [{n.node: n.rule for n in p.not_targeted} for p in result.plans]
    unfit = [{n.node for n in p.would_not_fit} for p in result.plans]
    names = sorted(result.after.nodes, key=natural_key)
    rows = []
    for name in names[:MAX_ROWS]:
        cells = []
        for index, _p in enumerate(result.plans):
            section, rule = by_plan[index].get(name, ("not_targeted", ""))
            if section == "not_targeted":
                rule = excluded[index].get(name, "")
            symbol, word = CELL_WORDS[section]
            current = result.before.cells.get((name, result.plans[index].key))
            now = f"{current.state.symbol} {current.state.label}" if current else ""
            cells.append(PredictedCell(section, symbol, word, rule, name in unfit[index], now))
        rows.append(PredictedRow(name, cells, result.patched_nodes.get(name, [])))
    return Preview(result.plans, rows, max(0, len(names) - MAX_ROWS), result.patched_nodes)
