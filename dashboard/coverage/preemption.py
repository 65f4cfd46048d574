"""Would preemption let a Pending daemon in? The scheduler's answer, worked out ahead.

A daemon pod is pinned to one node, so the scheduler's DefaultPreemption only ever looks at
that node: it may evict pods of *strictly lower* priority when removing them frees enough of
what the daemon lacks; it removes every lower-priority pod, then gives back ("reprieves")
as many as still fit, highest priority first. A daemon whose pod has
`preemptionPolicy: Never` never preempts, and no priority helps a daemon that asks for more
than the node's allocatable. The advice says which of these applies, with the priorities of
the pods holding the node, and which PriorityClass would let the daemon preempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .capacity import Load, Member
from .priority import NEVER, SYSTEM_NODE_CRITICAL, PriorityClass, built_in

if TYPE_CHECKING:
    from .records import Node, Pod

POD_SLOT = 1000  # one pod, in the thousandths every amount is kept in
MAX_NAMED = 3


def _take(member: Member, resource: str) -> int:
    if resource == "pods":
        return POD_SLOT
    return dict(member.requests).get(resource, 0)


def victims(
    need: Mapping[str, int], free: Mapping[str, int], members: Mapping[str, Member], below: int
) -> list[str] | None:
    """The pods the scheduler would evict for a pod of priority `below` needing `need`
    (of the resources it lacks), or None when evicting every lower-priority pod is not
    enough. Mirrors selectVictimsOnNode: remove all lower, reprieve the highest first."""
    lower = [(key, m) for key, m in members.items() if m.priority < below]
    room = {r: free.get(r, 0) + sum(_take(m, r) for _, m in lower) for r in need}
    if any(room[r] < need[r] for r in need):
        return None
    evicted = []
    for key, m in sorted(lower, key=lambda km: (-km[1].priority, km[0])):
        after = {r: room[r] - _take(m, r) for r in need}
        if all(after[r] >= need[r] for r in need):
            room = after  # it can stay
        else:
            evicted.append(key)
    return evicted


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_NAMED])
    more = len(keys) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def _pods(n: int) -> str:
    return f"{n} pod" if n == 1 else f"{n} pods"


def _priorities(members: Iterable[Member]) -> str:
    counts = Counter(m.priority for m in members)
    parts = [f"{p} ({_pods(n)})" for p, n in sorted(counts.items())]
    return ", ".join(parts[:3]) + (", …" if len(parts) > 3 else "")


def _classes(known: Mapping[str, PriorityClass]) -> list[PriorityClass]:
    # The API server creates the system classes itself: they exist even when the watch
    # has not shown them (a snapshot without PriorityClasses).
    out = dict(known)
    out.setdefault(SYSTEM_NODE_CRITICAL, built_in(SYSTEM_NODE_CRITICAL))
    return sorted(out.values(), key=lambda pc: (pc.value, pc.name))


def advice(
    pod: Pod,
    node: Node,
    load: Load | None,
    lacking: Iterable[str],
    classes: Mapping[str, PriorityClass],
) -> str:
    """`preemption: …` for a daemon pod the scheduler could not fit on `node` for lack of
    `lacking` resources; "" when the record cannot tell what it needs."""
    requests = dict(pod.requests)
    allocatable = dict(node.allocatable)
    need = {r: POD_SLOT if r == "pods" else requests.get(r, 0) for r in lacking}
    need = {r: v for r, v in need.items() if v > 0}
    if not need:
        return ""
    too_big = [r for r, v in need.items() if v > allocatable.get(r, 0)]
    if too_big:
        return (
            f"preemption cannot help: the daemon asks for more {', '.join(too_big)} than "
            "the node's allocatable"
        )
    members = load.members if load else {}
    used = load.requested if load else {}
    free = {
        r: allocatable.get(r, 0) - (len(members) * POD_SLOT if r == "pods" else used.get(r, 0))
        for r in need
    }
    p = pod.priority
    label = (
        f"PriorityClass {pod.priority_class} (priority {p})"
        if pod.priority_class
        else f"no PriorityClass (priority {p})"
    )
    if pod.preemption_policy == NEVER:
        return f"preemption: {label} has preemptionPolicy Never: the daemon waits for room, it never preempts"
    evicted = victims(need, free, members, p)
    if evicted == []:
        return ""  # by what the dashboard knows there is room now: the scheduler will see it
    if evicted:
        return f"preemption: {label}: the daemon could preempt {_pods(len(evicted))} ({_names(evicted)})"
    holding = [m for m in members.values() if any(_take(m, r) for r in need)]
    why = f"the pods holding the node have priority {_priorities(holding)}" if holding else ""
    text = f"preemption: {label}: the daemon cannot preempt" + (f" ({why})" if why else "")
    # system-node-critical is the class for node agents (the highest there is: if it
    # would not, none would); a lower class of the cluster's own that would is named too.
    # system-cluster-critical is for pods that may move to another node: not a daemon's.
    would = {
        pc.name: (pc, found)
        for pc in _classes(classes)
        if pc.value > p
        and pc.preempts
        and (pc.name == SYSTEM_NODE_CRITICAL or not pc.name.startswith("system-"))
        and (found := victims(need, free, members, pc.value))
    }
    if SYSTEM_NODE_CRITICAL not in would:
        return text + "; no PriorityClass would"
    best, found = would.pop(SYSTEM_NODE_CRITICAL)
    text += f"; {best.name} ({best.value}) would preempt {_pods(len(found))} ({_names(found)})"
    if would:
        lowest = next(iter(would.values()))[0]
        text += f", so would {lowest.name} ({lowest.value})"
    return text
