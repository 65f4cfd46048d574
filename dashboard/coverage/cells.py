"""Classify one (node, DaemonSet) cell: the decision table of docs/cells.md.

The first matching row wins. Every state comes with a one-line reason a human can act
on: the excluding rule for untargeted nodes, the scheduler's message for unschedulable
pods, the last exit for crash loops.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timedelta

from msgspec import Struct

from .access import PortHolder
from .capacity import Shortage
from .eligibility import Eligibility
from .event_records import Note
from .records import DaemonSet, Node, Pod, Termination
from .states import CONFIG_REASONS, IMAGE_REASONS, State
from .timefmt import ago, parse_time

# A node this young explains a missing pod: the controller has not caught up yet.
NEW_NODE_GRACE = timedelta(seconds=60)


class NodeHealth(Struct, frozen=True, gc=False, array_like=True):
    ready: str  # True | False | Unknown | "" (no Ready condition)
    cordoned: bool
    pressures: tuple[str, ...]
    network_unavailable: bool
    deleting: bool

    @property
    def word(self) -> str:
        """kubectl's STATUS column for a node."""
        word = {"True": "Ready", "False": "NotReady"}.get(self.ready, "Unknown")
        return word + (",SchedulingDisabled" if self.cordoned else "")

    @property
    def healthy(self) -> bool:
        return self.ready == "True" and not self.pressures and not self.network_unavailable


def node_health(node: Node) -> NodeHealth:
    return NodeHealth(
        ready=node.ready,
        cordoned=node.unschedulable,
        pressures=node.pressures,
        network_unavailable=node.network_unavailable,
        deleting=node.deleting,
    )


class Pending(Struct, frozen=True, gc=False, array_like=True):
    """What keeps a daemon pod Pending, beyond the scheduler's words in the reason."""

    # Short of a resource: each shortage the scheduler named (coverage/capacity.py).
    capacity: tuple[Shortage, ...] = ()
    # On a host port: the pods holding it on the node (coverage/access.py).
    port_holders: tuple[PortHolder, ...] = ()
    # Whether preemption could let it in (coverage/preemption.py); the reason ends with it.
    preemption: str = ""


class Cell(Struct, frozen=True, gc=False, array_like=True):
    state: State
    reason: str
    should_run: bool
    pod: str = ""  # name of the pod the cell describes (namespace = the DaemonSet's)
    pods: int = 0  # daemon pods on the node for this DaemonSet (terminating included)
    status_word: str = ""
    ready_containers: str = ""  # "1/1"
    restarts: int = 0
    last_termination: Termination | None = None
    updated: bool | None = None  # None: no pod, or no way to tell
    ready: bool = False  # the oldest pod's Ready condition (what the DS status counts)
    available: bool = False
    # How clients reach this daemon (coverage/access.py; docs/access.md). The addresses and
    # DNS names are not kept here (150,000 cells): Matrix.access_of computes them.
    in_service_endpoints: bool | None = None  # None: no Service selects the DaemonSet
    out_of_endpoints: bool = False  # runs, yet a Service's clients miss it: a flag of its own
    port_conflict: bool = False  # another pod holds one of its host ports on this node
    access_note: str = ""  # why it is out of the endpoints; who holds its host ports
    # The events that explain the cell, newest first (dashboard/coverage/why.py).
    events: tuple[Note, ...] = ()
    # Why the scheduler leaves it Pending, in numbers (None for almost every cell: one
    # slot rather than three on 150,000 cells).
    pending: Pending | None = None

    @property
    def capacity(self) -> tuple[Shortage, ...]:
        return self.pending.capacity if self.pending else ()

    @property
    def port_holders(self) -> tuple[PortHolder, ...]:
        return self.pending.port_holders if self.pending else ()

    @property
    def preemption(self) -> str:
        return self.pending.preemption if self.pending else ""

    @property
    def symbol(self) -> str:
        return self.state.symbol


def is_pod_updated(pod: Pod, ds: DaemonSet, current_hash: str | None) -> bool | None:
    """The controller's IsPodUpdated: current revision hash, or template generation."""
    if current_hash and pod.revision_hash == current_hash:
        return True
    if ds.template_generation and pod.template_generation == ds.template_generation:
        return True
    if not current_hash and not ds.template_generation:
        return None  # neither signal is known: cannot tell
    return False


def oldest(pods: Sequence[Pod]) -> Pod:
    """The pod the DaemonSet status counts: scheduled first, then creation time, then name."""
    if len(pods) == 1:  # the common case, on the hot path of every classification
        return pods[0]
    return min(pods, key=lambda p: (not p.bound, p.created or "", p.name))


def is_available(pod: Pod, min_ready_seconds: int, now: datetime) -> bool:
    if not pod.ready:
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(pod.ready_since)
    # podutil.IsPodAvailable: lastTransitionTime + minReadySeconds strictly before now.
    # Compared as elapsed seconds: `since + timedelta(...)` overflows Python's datetime for
    # a far-future timestamp (the API server accepts 9999-12-31T23:59:59Z) or a huge
    # minReadySeconds, where Go's time arithmetic just answers "not yet".
    return since is not None and (now - since).total_seconds() > min_ready_seconds


def _termination_text(t: Termination | None, now: datetime) -> str:
    if t is None:
        return ""
    code = f"signal {t.signal}" if t.signal else f"exit {t.exit_code}"
    when = ago(t.finished_at, now)
    return f"last {t.reason} ({code}){' ' + when if when else ''}"


def _missing_reason(ds: DaemonSet, node: Node, failed: Sequence[Pod], now: datetime) -> str:
    if ds.deleting:
        return "DaemonSet is being deleted: no new pods are created"
    if ds.selector is None or (not ds.selector.matchLabels and not ds.selector.matchExpressions):
        return "DaemonSet selector is empty: the controller never syncs it (event SelectingAll)"
    if ds.status.observedGeneration < ds.generation:
        return (
            f"controller has not observed generation {ds.generation} yet "
            f"(observedGeneration {ds.status.observedGeneration})"
        )
    if failed:
        f = failed[0]
        why = f": {f.reason}" if f.reason else ""
        return f"previous pod {f.name} {f.phase.lower()}{why}; re-created after back-off"
    created = parse_time(node.created)
    if created is not None and now - created < NEW_NODE_GRACE:
        return f"node joined {ago(node.created, now)}; the controller has not created the pod yet"
    return (
        "eligible but no daemon pod: check the DaemonSet's FailedCreate events (quota, admission)"
    )


def _counted(pods: Sequence[Pod]) -> Sequence[Pod]:
    # The controller ignores pods that are terminal *and* already being deleted (v1.27+).
    if len(pods) == 1 and not pods[0].deleting:  # the usual cell: no generator for it
        return pods
    if not any(p.deleting for p in pods):
        return pods
    return [p for p in pods if not (p.deleting and p.phase in ("Succeeded", "Failed"))]


class _Facts(Struct, gc=False):
    """What a cell shows of its pod, gathered once per classification."""

    pod: str
    pods: int  # daemon pods on the node for this DaemonSet
    status_word: str
    ready_containers: str
    restarts: int
    last_termination: Termination | None
    updated: bool | None
    ready: bool
    available: bool

    def cell(self, state: State, reason: str, should_run: bool = True) -> Cell:
        # Positional: this runs for every cell of a 150,000-cell sync.
        return Cell(
            state,
            sys.intern(reason),  # reasons repeat across a column; one object each
            should_run,
            self.pod,
            self.pods,
            self.status_word,
            self.ready_containers,
            self.restarts,
            self.last_termination,
            self.updated,
            self.ready,
            self.available,
        )


_RATIOS: dict[tuple[int, int], str] = {}


def _ratio(ready: int, total: int) -> str:
    """ "1/1", one string per distinct ratio instead of one per cell."""
    key = (ready, total)
    text = _RATIOS.get(key)
    if text is None:
        if len(_RATIOS) >= 1024:  # containers per pod are few; never let it grow
            _RATIOS.clear()
        text = _RATIOS[key] = f"{ready}/{total}"
    return text


def _pod_facts(
    pod: Pod, pods: int, ds: DaemonSet, current_hash: str | None, now: datetime
) -> _Facts:
    return _Facts(
        pod.name,
        pods,
        pod.status_word,
        _ratio(pod.ready_containers, pod.total_containers),
        pod.restarts,
        pod.last_termination,
        is_pod_updated(pod, ds, current_hash),
        pod.ready,
        is_available(pod, ds.min_ready_seconds, now),
    )


def classify(
    elig: Eligibility,
    pods: Sequence[Pod],
    ds: DaemonSet,
    node: Node,
    current_hash: str | None,
    now: datetime,
) -> Cell:
    """The table's first matching row: no counted pod, misscheduled, several pods, the
    pod's lifecycle (deleting, failed, unschedulable), then its containers (`_waiting`)
    and, once they run, readiness, availability and revision (`_running`)."""
    live = _counted(pods)
    if not live:
        return _podless(elig, pods, ds, node, now)
    if not elig.should_run:
        verdict = "kept, not desired" if elig.may_continue else "will be deleted"
        facts = _pod_facts(oldest(live), len(pods), ds, current_hash, now)
        return facts.cell(State.MISSCHEDULED, f"{verdict}: {elig.reason}", False)

    active = [p for p in live if not p.deleting]
    # Describe the pod that matters: the live one, or the oldest when all are going away.
    # The readiness the DaemonSet status counts is always the oldest pod's.
    first = oldest(live)
    pod = oldest(active) if active and len(live) > 1 else first
    facts = _pod_facts(pod, len(pods), ds, current_hash, now)
    if pod is not first:
        facts.ready = first.ready
        facts.available = is_available(first, ds.min_ready_seconds, now)
        facts.updated = is_pod_updated(first, ds, current_hash)

    if len(active) > 1:
        return facts.cell(State.SURGE, _surge_reason(active, ds, current_hash))
    if pod.deleting:
        return facts.cell(State.TERMINATING, _terminating_reason(node))
    if pod.phase in ("Failed", "Succeeded"):
        return facts.cell(State.FAILED, _failed_reason(pod))
    if pod.phase == "Pending" and pod.unschedulable_message is not None:
        return facts.cell(State.UNSCHEDULABLE, f"scheduler: {pod.unschedulable_message}")
    cell = _waiting(pod, facts, now)
    if cell is not None:
        return cell
    return _running(pod, node, ds, facts, now)


def _podless(
    elig: Eligibility, pods: Sequence[Pod], ds: DaemonSet, node: Node, now: datetime
) -> Cell:
    """No pod the controller counts: the node is not targeted, or its pod is missing."""
    if not elig.should_run:
        return Cell(State.NOT_TARGETED, elig.reason, False)
    failed = [p for p in pods if p.phase in ("Failed", "Succeeded")]
    return Cell(State.MISSING, _missing_reason(ds, node, failed, now), True, pods=len(pods))


def _surge_reason(active: Sequence[Pod], ds: DaemonSet, current_hash: str | None) -> str:
    updated = [is_pod_updated(p, ds, current_hash) for p in active]
    newest = max(active, key=lambda p: (p.created or "", p.name))
    if (
        len(active) == 2
        and ds.max_surge not in (0, "0", "0%")
        and any(updated)
        and not all(updated)
    ):
        return f"surge rollout: new pod {newest.name} starting beside the old one"
    return f"{len(active)} daemon pods on one node: the controller prunes the excess"


def _terminating_reason(node: Node) -> str:
    if node.ready == "Unknown":
        return "node unreachable: pod deletion pending, status is stale"
    return "pod is being deleted; the controller will create a new one"


def _failed_reason(pod: Pod) -> str:
    detail = ": ".join(x for x in (pod.reason, pod.message) if x)
    what = f"pod {pod.phase.lower()}" + (f" ({detail})" if detail else "")
    return f"{what}; the controller deletes and re-creates it with back-off"


def _waiting(pod: Pod, facts: _Facts, now: datetime) -> Cell | None:
    """A container waits for a reason that does not pass by itself (init container failing,
    image, configuration), keeps crashing, or the pod is still starting; None otherwise."""
    problem = pod.problem
    if problem is not None:
        where = f"{'init ' if problem.init else ''}container {problem.container}"
        if problem.init and problem.reason not in IMAGE_REASONS | CONFIG_REASONS:
            last = _termination_text(pod.last_termination, now)
            return facts.cell(
                State.INIT_ERROR,
                f"{where}: {problem.reason}"
                + (f", {last}" if last else "")
                + f", {pod.restarts} restarts",
            )
        if problem.reason in IMAGE_REASONS:
            return facts.cell(
                State.IMAGE_ERROR, f"{where}: {problem.reason}: {problem.message}".rstrip(": ")
            )
        if problem.reason in CONFIG_REASONS:
            return facts.cell(
                State.CONFIG_ERROR, f"{where}: {problem.reason}: {problem.message}".rstrip(": ")
            )
    if pod.crash_looping:
        last = _termination_text(pod.last_termination, now)
        who = (
            f"container {pod.last_termination.container}" if pod.last_termination else "a container"
        )
        return facts.cell(
            State.CRASH_LOOPING,
            f"{who} CrashLoopBackOff, {last or 'no exit recorded'}, {pod.restarts} restarts",
        )
    if pod.phase == "Pending" or not pod.initialized:
        if not pod.bound:
            return facts.cell(State.STARTING, "waiting for the scheduler to bind the pod")
        reason = problem.reason if problem else pod.status_word
        return facts.cell(State.STARTING, f"starting: {reason}")
    return None


def _running(pod: Pod, node: Node, ds: DaemonSet, facts: _Facts, now: datetime) -> Cell:
    """A running pod: ready, available (minReadySeconds), on the current revision."""
    if not pod.ready:
        if node.ready != "True":
            return facts.cell(
                State.NOT_READY, f"node {'unreachable' if node.ready == 'Unknown' else 'NotReady'}"
            )
        return facts.cell(
            State.NOT_READY, "running but not Ready: readiness probe failing or readiness gate"
        )
    if not facts.available:
        return facts.cell(
            State.NOT_AVAILABLE,
            f"Ready {ago(pod.ready_since, now) or 'just now'}; available after minReadySeconds "
            f"{ds.min_ready_seconds}",
        )
    if facts.updated is False:
        if ds.strategy == "OnDelete":
            return facts.cell(
                State.OUTDATED,
                "on an older revision; OnDelete: replaced only when the pod is deleted",
            )
        return facts.cell(
            State.OUTDATED, "on an older revision: the rolling update has not reached this node"
        )
    return facts.cell(
        State.HEALTHY,
        f"running, ready, {pod.restarts} restarts" if pod.restarts else "running, ready",
    )
