"""What a node has left for a daemon the scheduler could not place.

Per node: its allocatable, and the requests of every non-terminal pod bound to it (daemon
pods apart, for the "DaemonSet tax"). A pod's requests are the scheduler's: the larger of
its containers (sidecars included) and its heaviest init container (plus the sidecars
started before it), plus the pod overhead; one `pods` slot each. For an unschedulable
daemon the reason then says, for each resource the scheduler found insufficient, how much
it needs, the node's allocatable, how much other pods hold and what is free.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from . import wire
from .quantity import format_milli, parse_milli

if TYPE_CHECKING:
    from .records import Node, Pod

log = logging.getLogger(__name__)

Amounts = tuple[tuple[str, int], ...]  # (resource, thousandths), sorted by resource


def _amounts(values: Mapping[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for resource, text in values.items():
        try:
            out[resource] = parse_milli(str(text))
        except ValueError:
            # A hostile or broken quantity loses that one resource, never the object.
            log.debug("skipped a malformed quantity %s=%r", resource, text)
    return out


def _add(into: dict[str, int], more: Mapping[str, int], sign: int = 1) -> None:
    for resource, value in more.items():
        into[resource] = into.get(resource, 0) + sign * value


def node_allocatable(values: Mapping[str, str]) -> Amounts:
    return tuple(sorted(_amounts(values).items()))


def pod_requests(spec: wire.PodSpec) -> Amounts:
    """The scheduler's computePodResourceRequest (sidecar-aware), without the pods slot."""
    total: dict[str, int] = {}
    for c in spec.containers:
        _add(total, _amounts(c.resources.requests if c.resources else {}))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.initContainers:
        req = _amounts(c.resources.requests if c.resources else {})
        if c.restartPolicy == "Always":
            _add(total, req)
            _add(sidecars, req)
            current = dict(sidecars)
        else:
            current = dict(sidecars)
            _add(current, req)
        for resource, value in current.items():
            init_peak[resource] = max(init_peak.get(resource, 0), value)
    for resource, value in init_peak.items():
        total[resource] = max(total.get(resource, 0), value)
    _add(total, _amounts(spec.overhead))
    return tuple(sorted((r, v) for r, v in total.items() if v))


class Member(NamedTuple):
    """What one pod adds to its node's load."""

    node: str
    requests: Amounts
    daemon: bool
    priority: int


class Load:
    """What the pods bound to one node request, and which pods they are (who holds it,
    who could be preempted)."""

    __slots__ = ("requested", "pods", "daemon_requested", "daemon_pods", "members")

    def __init__(self) -> None:
        self.requested: dict[str, int] = {}
        self.pods = 0
        self.daemon_requested: dict[str, int] = {}
        self.daemon_pods = 0
        self.members: dict[str, Member] = {}  # by pod key


def _counts(pod: Pod) -> bool:
    # The scheduler counts every pod assigned to the node until it is terminal.
    return pod.bound and bool(pod.node) and pod.phase not in ("Succeeded", "Failed")


class NodeLoad:
    """Requests by node, kept incrementally from every pod event (daemon or not)."""

    def __init__(self) -> None:
        self.by_node: dict[str, Load] = {}
        self._node_of: dict[str, str] = {}  # pod key → the node it is counted on

    def restore(
        self, sums: Mapping[str, tuple[Mapping[str, int], int, Mapping[str, int], int]]
    ) -> None:
        """Take over another matrix's per-node sums (a snapshot's): read-only, no members."""
        self.by_node, self._node_of = {}, {}
        for node, (requested, pods, daemon_requested, daemon_pods) in sums.items():
            load = self.by_node[node] = Load()
            load.requested, load.pods = dict(requested), pods
            load.daemon_requested, load.daemon_pods = dict(daemon_requested), daemon_pods

    def update(self, key: str, pod: Pod | None) -> str | None:
        """Account for the pod's new state (None: deleted); the node whose load changed."""
        new = (
            Member(pod.node, pod.requests, bool(pod.owner_uid), pod.priority)
            if pod and _counts(pod)
            else None
        )
        old_node = self._node_of.get(key)
        old = self.by_node[old_node].members.get(key) if old_node is not None else None
        if new == old:
            return None
        if old is not None:
            self._apply(key, old, -1)
            del self._node_of[key]
        if new is not None:
            self._apply(key, new, +1)
            self._node_of[key] = new.node
        changed = new or old
        return changed.node if changed else None

    def _apply(self, key: str, entry: Member, sign: int) -> None:
        node, requests, daemon, _ = entry
        load = self.by_node.get(node)
        if load is None:
            load = self.by_node[node] = Load()
        requested = load.requested
        for resource, value in requests:
            requested[resource] = requested.get(resource, 0) + sign * value
        load.pods += sign
        if sign > 0:
            load.members[key] = entry
        else:
            load.members.pop(key, None)
        if daemon:
            daemons = load.daemon_requested
            for resource, value in requests:
                daemons[resource] = daemons.get(resource, 0) + sign * value
            load.daemon_pods += sign
        if load.pods == 0:
            del self.by_node[node]


# A resource name may hold dots (nvidia.com/gpu) but does not end with one: the last entry
# of the scheduler's histogram is followed by "." ("1 Insufficient cpu. preemption: …").
_INSUFFICIENT = re.compile(r"Insufficient ([A-Za-z0-9./_-]*[A-Za-z0-9])")
_TOO_MANY_PODS = "Too many pods"


def short_of(message: str) -> list[str]:
    """The resources the scheduler's message says the node lacks, in its order."""
    found = _INSUFFICIENT.findall(message)
    if _TOO_MANY_PODS in message:
        found.append("pods")
    return list(dict.fromkeys(found))


def capacity_text(pod: Pod, node: Node, load: Load | None, resources: Iterable[str]) -> str:
    """`needs cpu 2; node has 1 allocatable, 900m requested by 3 pods (daemons 200m) →
    100m free` for each resource, joined by "; "."""
    requests = dict(pod.requests)
    allocatable = dict(node.allocatable)
    used = load.requested if load else {}
    daemons = load.daemon_requested if load else {}
    count = load.pods if load else 0
    parts = []
    for resource in resources:
        if resource == "pods":
            have = allocatable.get("pods")
            if have is not None:
                parts.append(
                    f"node allows {format_milli('pods', have)} pods and has {count} "
                    f"({load.daemon_pods if load else 0} daemons)"
                )
            continue
        need = requests.get(resource, 0)
        if not need:
            continue  # the record does not know what the scheduler weighed: say nothing
        have = allocatable.get(resource)
        if have is None:
            parts.append(
                f"needs {resource} {format_milli(resource, need)}; node has none allocatable"
            )
            continue
        held = used.get(resource, 0)
        free = max(have - held, 0)
        text = (
            f"needs {resource} {format_milli(resource, need)}; node has "
            f"{format_milli(resource, have)} allocatable, {format_milli(resource, held)} "
            f"requested by {count} pods (daemons {format_milli(resource, daemons.get(resource, 0))})"
            f" → {format_milli(resource, free)} free"
        )
        top = holders(load, resource) if load else []
        if top:
            named = ", ".join(f"{key} {format_milli(resource, value)}" for key, value in top)
            text += f"; most held by {named}"
        parts.append(text)
    return "; ".join(parts)


MAX_HOLDERS = 3


def holders(load: Load, resource: str, limit: int = MAX_HOLDERS) -> list[tuple[str, int]]:
    """The non-daemon pods on the node requesting the most of `resource`, biggest first
    (daemons are the column's neighbours; the question is which workload holds the room)."""
    found = []
    for key, member in load.members.items():
        if member.daemon:
            continue
        value = dict(member.requests).get(resource, 0)
        if value > 0:
            found.append((key, value))
    found.sort(key=lambda kv: (-kv[1], kv[0]))
    return found[:limit]
