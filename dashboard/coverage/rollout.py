"""Why a DaemonSet rollout is not progressing: its budget, and what holds it.

The budget is computed exactly as the DaemonSet controller computes it (kubernetes
pkg/controller/daemon: `util.UnavailableCount`, `util.SurgeCount`,
`updatedDesiredNodeCounts`, and apimachinery's `intstr.GetScaledValueFromIntOrPercent`):

* both values are scaled against the number of nodes that should run the daemon
  (desiredNumberScheduled), a percentage **rounded up** (`math.Ceil`, in float64 — the
  Deployment controller rounds maxUnavailable *down*; the DaemonSet controller does not);
* a string must end in `%` and its number parse as Go's `strconv.Atoi` parses it;
* `OnDelete` (or no rollingUpdate block) has a budget of 0 and 0;
* when both come out 0 while some node should run the daemon, the controller allows 1
  unavailable (its "impossible configuration" default).

What holds the budget follows the controller's `rollingUpdate` walk over the nodes with a
daemon pod or wanting one (docs/revisions.md, "Why a rollout waits"). Pure computation.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from msgspec import Struct

from .cells import Cell, NodeHealth, is_available, is_pod_updated
from .matrix import Matrix
from .records import DaemonSet, Node, Pod, Revision
from .revisions import RevisionDiff, RevisionMap, live, revision_map, running_diffs
from .timefmt import duration, parse_time

# A rollout that waits and has not moved for this long is called stalled.
STALL_SECONDS = 300

_ATOI = re.compile(r"[+-]?[0-9]+")


class BudgetError(ValueError):
    """A maxUnavailable / maxSurge value the controller refuses (it then stops the rollout)."""


def scaled(value: int | str | None, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)."""
    if value is None:
        raise BudgetError("nil value for IntOrString")
    if isinstance(value, bool):  # JSON true is no IntOrString
        raise BudgetError(f"invalid type: {value!r} is neither int nor percentage")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise BudgetError(
            f"invalid value for IntOrString: invalid type: {value!r} is not a percentage"
        )
    digits = value[:-1]
    if not _ATOI.fullmatch(digits):  # strconv.Atoi: optional sign, ASCII digits only
        raise BudgetError(f"invalid value for IntOrString: invalid value {value!r}")
    # float64 arithmetic as in Go: Ceil(float64(v) * float64(total) / 100)
    return int(math.ceil(float(int(digits)) * float(total) / 100))


class Budget(Struct, frozen=True):
    desired: int
    max_unavailable_spec: int | str | None
    max_surge_spec: int | str | None
    max_unavailable: int
    max_surge: int
    defaulted: bool  # both came out 0: the controller allows 1 unavailable
    used: int  # unavailable nodes (maxSurge 0), or surging nodes (maxSurge > 0)
    limit: int  # what `used` is held against: maxUnavailable, or maxSurge

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def text(self) -> str:
        mu = _spec_text(self.max_unavailable_spec, self.max_unavailable)
        ms = _spec_text(self.max_surge_spec, self.max_surge)
        kind = "unavailable" if self.max_surge == 0 else "surging"
        note = " (both 0: the controller allows 1 unavailable)" if self.defaulted else ""
        return (
            f"maxUnavailable {mu}, maxSurge {ms} of {self.desired} desired{note}; "
            f"{self.used} of {self.limit} {kind} in use"
        )

    def as_json(self) -> dict:
        return {
            "desired": self.desired,
            "max_unavailable": {"spec": self.max_unavailable_spec, "value": self.max_unavailable},
            "max_surge": {"spec": self.max_surge_spec, "value": self.max_surge},
            "defaulted": self.defaulted,
            "holds": "unavailable" if self.max_surge == 0 else "surge",
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
        }


def _spec_text(spec: int | str | None, value: int) -> str:
    return f"{spec} → {value}" if isinstance(spec, str) else str(value)


def budget_limits(ds: DaemonSet, desired: int) -> tuple[int, int, bool]:
    """(maxUnavailable, maxSurge, defaulted) as updatedDesiredNodeCounts returns them."""
    if ds.strategy != "RollingUpdate":
        unavailable = surge = 0
    else:
        unavailable = scaled(ds.max_unavailable, desired)
        surge = 0 if ds.max_surge is None else scaled(ds.max_surge, desired)
    defaulted = desired > 0 and unavailable == 0 and surge == 0
    return (1 if defaulted else unavailable), surge, defaulted


class Blocker(Struct, frozen=True):
    node: str
    kind: str  # unavailable | node-not-ready | surge-pending | duplicate | old-template
    reason: str

    def text(self) -> str:
        return f"{self.node} ({self.reason})"

    def as_json(self) -> dict:
        return {"node": self.node, "kind": self.kind, "reason": self.reason}


class Rollout(Struct, frozen=True):
    # complete | progressing | waiting | stalled | on-delete | invalid | unknown
    state: str
    strategy: str
    desired: int
    updated: int  # nodes whose (oldest live) pod runs the current template
    available: int  # of those, available
    budget: Budget | None
    blocked_by: tuple[Blocker, ...]
    old_nodes: int  # nodes still running an older template
    last_progress: str | None  # RFC 3339: newest current-revision pod created / ready
    since_progress: float | None  # seconds
    error: str = ""

    @property
    def in_flight(self) -> bool:
        """A rollout is under way: old pods left, or new ones not available yet."""
        return self.state not in ("complete", "unknown")

    @property
    def stuck(self) -> bool:
        return self.state in ("waiting", "stalled", "invalid", "on-delete")

    def progress_text(self) -> str:
        """kubectl rollout status, in one line."""
        return f"{self.updated} updated, {self.available} available of {self.desired} desired"

    def headline(self, limit: int = 3, since: bool = True) -> str:
        """'Rollout waiting on 3 nodes: a (…), b (…), c (…)' — or the state in words."""
        age = (
            f"; no progress for {duration(self.since_progress)}"
            if since and self.since_progress is not None and self.state in ("waiting", "stalled")
            else ""
        )
        if self.state == "invalid":
            return f"Rollout stopped: {self.error}"
        if self.state == "on-delete":
            n = self.old_nodes
            names = ", ".join(b.node for b in self.blocked_by[:limit])
            more = (
                f" and {len(self.blocked_by) - limit} more" if len(self.blocked_by) > limit else ""
            )
            return (
                f"OnDelete: {n} node{'s' if n != 1 else ''} still run{'s' if n == 1 else ''} an "
                f"older template ({names}{more}); only deleting their pods updates them"
            )
        if self.state in ("waiting", "stalled") and self.blocked_by:
            n = len(self.blocked_by)
            shown = ", ".join(b.text() for b in self.blocked_by[:limit])
            more = f", and {n - limit} more" if n > limit else ""
            word = "stalled" if self.state == "stalled" else "waiting"
            return f"Rollout {word} on {n} node{'s' if n != 1 else ''}: {shown}{more}{age}"
        if self.state == "progressing":
            return f"Rollout progressing: {self.progress_text()}"
        if self.state == "complete":
            return "Rollout complete"
        return f"Rollout {self.state}: {self.progress_text()}{age}"

    def as_json(self) -> dict:
        return {
            "state": self.state,
            "strategy": self.strategy,
            "budget": self.budget.as_json() if self.budget is not None else None,
            "blocked_by": [b.as_json() for b in self.blocked_by],
            "desired": self.desired,
            "updated": self.updated,
            "available": self.available,
            "old_nodes": self.old_nodes,
            # An instant, not an age: the document depends on the cluster only (the age is
            # generated_at minus this).
            "last_progress": self.last_progress,
            "summary": self.headline(limit=10, since=False),
            "error": self.error or None,
        }


# How one pod's trouble reads: the cell (or the pod alone) gives state and reason.
# `pod` None: the node's cell as it is (a node without a pod).
PodVerdict = Callable[[str, Pod | None], Cell | None]


def _when(value: str | None) -> str:
    t = parse_time(value)
    return t.strftime("%H:%M") if t is not None else "?"


def _node_trouble(node: Node | None, health: NodeHealth | None) -> str:
    """'Unknown since 14:02' for a node that is not Ready, else ''."""
    if node is None or health is None or health.ready == "True":
        return ""
    word = {"False": "NotReady", "": "no Ready condition"}.get(health.ready, "Unknown")
    return f"{word} since {_when(node.ready_since)}" if node.ready_since else word


def _pod_reason(verdict: Cell | None, new: bool) -> str:
    if verdict is None:
        return "pod not available"
    prefix = "new pod " if new else ""
    return f"{prefix}{verdict.state.label}: {verdict.reason}"


def rollout_state(
    ds: DaemonSet,
    current: Revision | None,
    current_hash: str | None,
    desired_nodes: set[str],
    pods_by_node: Mapping[str, list[Pod]],
    nodes: Mapping[str, Node],
    health: Mapping[str, NodeHealth],
    verdict: PodVerdict,
    now: datetime,
) -> Rollout:
    """The rollout of `ds` as the controller sees it now (see the module's doc)."""
    desired = len(desired_nodes)
    node_pods: dict[str, list[Pod]] = {n: [] for n in desired_nodes}
    for node, pods in pods_by_node.items():
        node_pods[node] = live(pods)

    updated = available = 0
    unknown = False
    old_nodes: list[str] = []
    last = parse_time(current.created) if current is not None else None
    for node, pods in node_pods.items():
        new_pods = []
        for p in pods:
            up = is_pod_updated(p, ds, current_hash)
            if up is None:
                unknown = True
            elif up:
                new_pods.append(p)
                for stamp in (p.created, p.ready_since if p.ready else None):
                    t = parse_time(stamp)
                    if t is not None and (last is None or t > last):
                        last = t
            else:
                old_nodes.append(node)
        if node in desired_nodes and new_pods:
            updated += 1
            if any(is_available(p, ds.min_ready_seconds, now) for p in new_pods):
                available += 1
    old_nodes = sorted(set(old_nodes))
    since = (now - last).total_seconds() if last is not None else None

    def result(
        state: str, budget: Budget | None = None, blocked: Iterable[Blocker] = (), error: str = ""
    ) -> Rollout:
        return Rollout(
            state=state,
            strategy=ds.strategy,
            desired=desired,
            updated=updated,
            available=available,
            budget=budget,
            blocked_by=tuple(blocked),
            old_nodes=len(old_nodes),
            last_progress=last.isoformat().replace("+00:00", "Z") if last is not None else None,
            since_progress=since,
            error=error,
        )

    if unknown and not current_hash and not ds.template_generation:
        return result("unknown")
    if ds.strategy == "OnDelete":
        if not old_nodes:
            return result("complete")
        why = "older template; OnDelete: updated only when its pod is deleted"
        return result("on-delete", None, (Blocker(n, "old-template", why) for n in old_nodes))
    try:
        max_unavailable, max_surge, defaulted = budget_limits(ds, desired)
    except BudgetError as exc:
        return result("invalid", error=str(exc))

    blockers: list[Blocker] = []
    candidates = 0  # old, available pods the controller would replace next
    used = 0

    def trouble(node: str, pod: Pod | None, new: bool, kind: str) -> Blocker:
        node_word = _node_trouble(nodes.get(node), health.get(node))
        if node_word:
            return Blocker(node, "node-not-ready", node_word)
        if pod is None:
            v = verdict(node, None)
            return Blocker(node, kind, _pod_reason(v, False) if v is not None else "no daemon pod")
        return Blocker(node, kind, _pod_reason(verdict(node, pod), new))

    def avail(p: Pod) -> bool:
        return is_available(p, ds.min_ready_seconds, now)

    for node in sorted(node_pods):
        pods = node_pods[node]
        new = [p for p in pods if is_pod_updated(p, ds, current_hash)]
        old = [p for p in pods if not is_pod_updated(p, ds, current_hash)]
        if len(new) > 1 or len(old) > 1:  # findUpdatedPodsOnNode: not ok
            used += 1
            blockers.append(
                Blocker(node, "duplicate", f"{len(pods)} daemon pods on the node, being pruned")
            )
            continue
        new_pod, old_pod = (new[0] if new else None), (old[0] if old else None)
        if max_surge == 0:
            if (new_pod is None) == (old_pod is None):
                used += 1
                blockers.append(trouble(node, new_pod or old_pod, bool(new_pod), "unavailable"))
            elif new_pod is not None:
                if not avail(new_pod):
                    used += 1
                    blockers.append(trouble(node, new_pod, False, "unavailable"))
            elif old_pod is not None:
                if not avail(old_pod):
                    used += 1  # replaced at once, whatever the budget
                    blockers.append(trouble(node, old_pod, False, "unavailable"))
                else:
                    candidates += 1
        else:
            if old_pod is None:
                continue  # the manage loop creates or keeps the pod; not held against surge
            if new_pod is None:
                if avail(old_pod) and node in desired_nodes:
                    candidates += 1
            elif not avail(new_pod):
                used += 1
                kind = "surge-pending"
                blockers.append(trouble(node, new_pod, True, kind))

    limit = max_unavailable if max_surge == 0 else max_surge
    budget = Budget(
        desired=desired,
        max_unavailable_spec=ds.max_unavailable,
        max_surge_spec=ds.max_surge,
        max_unavailable=max_unavailable,
        max_surge=max_surge,
        defaulted=defaulted,
        used=used,
        limit=limit,
    )
    complete = not old_nodes and updated >= desired and available >= desired
    if complete:
        state = "complete"
    elif candidates and budget.remaining > 0:
        state = "progressing"  # the controller replaces more pods at its next sync
    elif blockers:
        state = "stalled" if since is not None and since >= STALL_SECONDS else "waiting"
    else:
        state = "progressing"
    return result(state, budget, blockers if state in ("waiting", "stalled") else ())


# Per matrix, the rollouts computed at its current revision: the grid's column heads and
# the wall's exceptions both ask for them on every delta.
_cache: weakref.WeakKeyDictionary[Matrix, tuple[int, dict[str, Rollout | None]]] = (
    weakref.WeakKeyDictionary()
)


def rollout_of(matrix: Matrix, ds_key: str) -> Rollout | None:
    """The rollout of one DaemonSet of a matrix (O(nodes); kept until the matrix changes,
    so a `stalled` verdict waits for the next change or timed refresh)."""
    cached = _cache.get(matrix)
    if cached is None or cached[0] != matrix.revision:
        cached = (matrix.revision, {})
        _cache[matrix] = cached
    if ds_key not in cached[1]:
        cached[1][ds_key] = _compute(matrix, ds_key)
    return cached[1][ds_key]


def _compute(matrix: Matrix, ds_key: str) -> Rollout | None:
    ds = matrix.daemonsets.get(ds_key)
    if ds is None:
        return None
    current_hash = matrix.current_hash(ds_key)
    current = next((r for r in matrix.revisions_of(ds_key) if r.hash == current_hash), None)
    desired = {
        node for node in matrix.nodes if (e := matrix.eligibility(node, ds_key)) and e.should_run
    }

    def verdict(node: str, pod: Pod | None) -> Cell | None:
        if pod is None:
            return matrix.cells.get((node, ds_key))
        return matrix.pod_verdict(node, ds_key, pod)

    return rollout_state(
        ds,
        current,
        current_hash,
        desired,
        matrix.pods_by_node(ds_key),
        matrix.nodes,
        matrix.health,
        verdict,
        matrix.now(),
    )


def revisions_of(matrix: Matrix, ds_key: str) -> tuple[RevisionMap, list[RevisionDiff]]:
    """A DaemonSet's revision map, and the diffs of the older revisions still running."""
    ds = matrix.daemonsets[ds_key]
    revisions = matrix.revisions_of(ds_key)
    rmap = revision_map(ds, revisions, matrix.pods_by_node(ds_key), matrix.current_hash(ds_key))
    return rmap, running_diffs(revisions, rmap)


def revision_numbers(matrix: Matrix, ds_key: str) -> dict[str, int]:
    """controller-revision-hash → revision number, for the cells' "which revision"."""
    return {r.hash: r.revision for r in matrix.revisions_of(ds_key) if r.hash}


def cell_revision(matrix: Matrix, numbers: Mapping[str, int], ds_key: str, pod: str) -> int | None:
    """The revision number the pod a cell describes runs (None: unknown)."""
    ds = matrix.daemonsets.get(ds_key)
    record = matrix.pods.get(f"{ds.namespace}/{pod}") if ds is not None and pod else None
    return numbers.get(record.revision_hash) if record is not None else None


def revisions_json(rmap: RevisionMap, diffs: list[RevisionDiff]) -> dict[str, Any]:
    return {
        "current": rmap.current,
        "revisions": [
            {
                "revision": r.number,
                "name": r.name,
                "hash": r.hash,
                "current": r.current,
                "created": r.created,
                "nodes": len(r.nodes),
                "images": list(r.images),
                "same_template_as": r.same_as,
                "current_template": r.current_template,
            }
            for r in rmap.revisions
        ],
        "old_nodes": list(rmap.old_nodes),
        "unknown_revision_nodes": list(rmap.unknown_nodes),
        "diffs": [
            {"from": d.old, "to": d.new, "nodes": list(d.nodes), "diff": d.diff} for d in diffs
        ],
    }


def under_way(matrix: Matrix, ds_key: str) -> bool:
    """From the running counters alone (O(1)): some node may run an older template — a
    cell whose pod is not known to be updated (targeted or misscheduled), or two pods on a
    node. A DaemonSet with only broken current pods is no rollout to explain, and neither
    is one whose only trouble is a current pod where none is wanted: counting every
    misscheduled cell made a cluster with a few tainted nodes walk each such column on
    every delta (the grid's heads and the wall's rollout lines, O(nodes) each)."""
    c = matrix.ds_counts.get(ds_key)
    if c is None:
        return False
    return bool(c["not-updated"]) or bool(c["surge"])


class ColumnRollout(Struct, frozen=True):
    """What a grid column's head shows of its rollout and revisions."""

    revisions: str  # the revision map in one line
    headline: str  # "" when settled
    state: str  # "" when settled
    stuck: bool


def column_rollout(matrix: Matrix, ds_key: str) -> ColumnRollout:
    """The column head's part, cheap for the common settled DaemonSet (docs/revisions.md)."""
    if not under_way(matrix, ds_key):
        numbers = revision_numbers(matrix, ds_key)
        current = numbers.get(matrix.current_hash(ds_key) or "")
        c = matrix.ds_counts.get(ds_key)
        n = c["updated"] if c is not None else 0
        line = (
            f"revision {current} on {n} node{'s' if n != 1 else ''}" if current is not None else ""
        )
        return ColumnRollout(line, "", "", False)
    rollout = rollout_of(matrix, ds_key)
    rmap = revision_map_only(matrix, ds_key)
    # Only a rollout under way (or refused) is flagged: a broken pod with nothing left to
    # roll out is the cell's problem, already shown in the cell.
    if rollout is None or not (rollout.old_nodes or rollout.state == "invalid"):
        return ColumnRollout(rmap.line(), "", "", False)
    return ColumnRollout(rmap.line(), rollout.headline(), rollout.state, rollout.stuck)


def revision_map_only(matrix: Matrix, ds_key: str) -> RevisionMap:
    ds = matrix.daemonsets[ds_key]
    return revision_map(
        ds, matrix.revisions_of(ds_key), matrix.pods_by_node(ds_key), matrix.current_hash(ds_key)
    )
