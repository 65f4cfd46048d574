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
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from msgspec import Struct

from . import wire
from .quantity import format_milli, parse_milli

if TYPE_CHECKING:
    from .records import Node, Pod

log = logging.getLogger(__name__)

Amounts = tuple[tuple[str, int], ...]  # (resource, thousandths), sorted by resource
POD_SLOT = 1000  # one pod, in the thousandths every amount is kept in


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


# Identical values are kept once, like the records' repeated strings (records._shared):
# every daemon pod of a DaemonSet asks for the same amounts, and each of a node's daemon
# pods adds the same Member to it, so 150,000 pods held 150,000 equal tuples of each
# (~40 MB; bench/RESULTS.md). Bounded: past the limit (hostile churn) the table starts over,
# which costs only the sharing, never a value.
_SHARED_MAX = 65_536
_AMOUNTS: dict[Amounts, Amounts] = {}
_Shared = TypeVar("_Shared")


def _shared(table: dict[_Shared, _Shared], value: _Shared) -> _Shared:
    """The one object of the table equal to `value` (`value` itself the first time)."""
    known = table.get(value)
    if known is not None:
        return known
    if len(table) >= _SHARED_MAX:
        table.clear()
    table[value] = value
    return value


def _shared_amounts(amounts: Amounts) -> Amounts:
    return _shared(_AMOUNTS, amounts)


def node_allocatable(values: Mapping[str, str]) -> Amounts:
    return _shared_amounts(tuple(sorted(_amounts(values).items())))


def _requested(c: wire.Container) -> tuple[tuple[str, str], ...]:
    r = c.resources
    return tuple(r.requests.items()) if r is not None and r.requests else ()


# The amounts of each distinct combination of requests: a DaemonSet's pods all ask for the
# same, and parsing them for each of 150,000 pods was a third of their projection
# (bench/RESULTS.md). Bounded like the shared values (hostile churn starts it over).
_REQUESTS: dict[tuple, Amounts] = {}


def pod_requests(spec: wire.PodSpec) -> Amounts:
    """The scheduler's computePodResourceRequest (sidecar-aware), without the pods slot."""
    key = (
        tuple(map(_requested, spec.containers)),
        tuple((c.restartPolicy == "Always", _requested(c)) for c in spec.initContainers)
        if spec.initContainers
        else (),
        tuple(spec.overhead.items()) if spec.overhead else (),
    )
    known = _REQUESTS.get(key)
    if known is None:
        if len(_REQUESTS) >= _SHARED_MAX:
            _REQUESTS.clear()
        known = _REQUESTS[key] = _pod_requests(spec)
    return known


def _pod_requests(spec: wire.PodSpec) -> Amounts:
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
    return _shared_amounts(tuple(sorted((r, v) for r, v in total.items() if v)))


class Member(NamedTuple):
    """What one pod adds to its node's load."""

    node: str
    requests: Amounts
    daemon: bool
    priority: int


_MEMBERS: dict[Member, Member] = {}


def _shared_member(member: Member) -> Member:
    return _shared(_MEMBERS, member)


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
        old_node = self._node_of.get(key)
        old = self.by_node[old_node].members.get(key) if old_node is not None else None
        if pod and _counts(pod):
            if (
                old is not None
                and old.node == pod.node
                and old.requests == pod.requests
                and old.daemon == bool(pod.owner_uid)
                and old.priority == pod.priority
            ):
                return None  # most pod events (status): the same member, nothing to build
            new = _shared_member(Member(pod.node, pod.requests, bool(pod.owner_uid), pod.priority))
        else:
            new = None
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


class Shortage(Struct, frozen=True, gc=False, array_like=True):
    """One resource the scheduler found insufficient, in numbers (thousandths, like every
    amount here): what the cell's reason says, its `capacity` in the coverage JSON and
    the preemption advice all read these, so they cannot disagree."""

    resource: str
    needs: int  # what the daemon pod asks for (one slot, 1000, for "pods")
    allocatable: int | None  # None: the node lists none of it
    requested: int  # by every non-terminal pod bound to the node ("pods": their count)
    free: int  # allocatable - requested, never below 0
    pods: int  # how many pods are counted in `requested`
    daemon_requested: int  # the daemon pods' share of `requested`
    daemon_pods: int
    holders: tuple[tuple[str, int], ...] = ()  # the biggest non-daemon requesters


def shortages(pod: Pod, node: Node, load: Load | None, resources: Iterable[str]) -> list[Shortage]:
    """The numbers for each resource the scheduler named, in its order; a resource the
    record cannot weigh (the daemon asks for none of it, a node without a pods limit) is
    left out rather than guessed."""
    requests = dict(pod.requests)
    allocatable = dict(node.allocatable)
    used = load.requested if load else {}
    daemons = load.daemon_requested if load else {}
    count = load.pods if load else 0
    daemon_count = load.daemon_pods if load else 0
    out = []
    for resource in resources:
        have = allocatable.get(resource)
        if resource == "pods":
            if have is None:
                continue
            need, held, daemon_held = POD_SLOT, count * POD_SLOT, daemon_count * POD_SLOT
        else:
            need = requests.get(resource, 0)
            if not need:
                continue  # the record does not know what the scheduler weighed: say nothing
            held, daemon_held = used.get(resource, 0), daemons.get(resource, 0)
        top = holders(load, resource) if load and resource != "pods" else []
        out.append(
            Shortage(
                resource,
                need,
                have,
                held,
                max((have or 0) - held, 0),
                count,
                daemon_held,
                daemon_count,
                tuple(top),
            )
        )
    return out


def capacity_text(found: Iterable[Shortage]) -> str:
    """`needs cpu 2; node has 1 allocatable, 900m requested by 3 pods (daemons 200m) →
    100m free` for each shortage, joined by "; "."""
    parts = []
    for s in found:
        r = s.resource
        if r == "pods":
            parts.append(
                f"node allows {format_milli(r, s.allocatable or 0)} pods and has {s.pods} "
                f"({s.daemon_pods} daemons)"
            )
            continue
        if s.allocatable is None:
            parts.append(f"needs {r} {format_milli(r, s.needs)}; node has none allocatable")
            continue
        text = (
            f"needs {r} {format_milli(r, s.needs)}; node has "
            f"{format_milli(r, s.allocatable)} allocatable, {format_milli(r, s.requested)} "
            f"requested by {s.pods} pods (daemons {format_milli(r, s.daemon_requested)})"
            f" → {format_milli(r, s.free)} free"
        )
        if s.holders:
            named = ", ".join(f"{key} {format_milli(r, value)}" for key, value in s.holders)
            text += f"; most held by {named}"
        parts.append(text)
    return "; ".join(parts)


def shortage_json(s: Shortage) -> dict[str, object]:
    """The coverage JSON's `capacity` object: quantities as kubectl writes them, like the
    node's `allocatable` and `daemon_requests` (for "pods", a count: "110")."""
    r = s.resource
    return {
        "resource": r,
        "needs": format_milli(r, s.needs),
        "allocatable": None if s.allocatable is None else format_milli(r, s.allocatable),
        "requested": format_milli(r, s.requested),
        "free": format_milli(r, s.free),
        "pods": s.pods,
        "daemon_requests": format_milli(r, s.daemon_requested),
        "daemon_pods": s.daemon_pods,
        "held_by": [{"pod": key, "requests": format_milli(r, v)} for key, v in s.holders],
    }


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
