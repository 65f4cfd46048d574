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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .access import PortHolder
from .capacity import POD_SLOT, Load, Member, Shortage
from .priority import NEVER, SYSTEM_NODE_CRITICAL, PriorityClass, built_in

if TYPE_CHECKING:
    from .records import Pod

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


def _label(pod: Pod) -> str:
    p = pod.priority
    if pod.priority_class:
        return f"PriorityClass {pod.priority_class} (priority {p})"
    return f"no PriorityClass (priority {p})"


def _candidates(classes: Mapping[str, PriorityClass], above: int) -> list[PriorityClass]:
    """The classes worth naming that would outrank `above` and may preempt, lowest first.
    system-node-critical is the class for node agents (the highest there is: if it would
    not, none would); a lower class of the cluster's own is named too.
    system-cluster-critical is for pods that may move to another node: not a daemon's."""
    return [
        pc
        for pc in _classes(classes)
        if pc.value > above
        and pc.preempts
        and (pc.name == SYSTEM_NODE_CRITICAL or not pc.name.startswith("system-"))
    ]


def port_advice(
    pod: Pod, holders: Sequence[PortHolder], classes: Mapping[str, PriorityClass]
) -> str:
    """`preemption: …` for a daemon pod the scheduler could not place because other pods
    hold its host ports there; "" when no holder is known.

    The scheduler's NodePorts filter answers Unschedulable (not "unresolvable"), so its
    DefaultPreemption tries the node: removing every pod of strictly lower priority frees
    their ports, and a holder cannot be reprieved (the daemon would not fit again), so the
    victims are exactly the holders, if they all rank below the daemon. A static pod's
    holder is only its mirror: deleting it does not stop the pod the kubelet runs from a
    file, so the port stays taken whatever the priority."""
    if not holders:
        return ""
    ports = ", ".join(sorted({port for h in holders for port in h.ports}))
    static = [h for h in holders if h.static]
    if static:
        return (
            f"preemption cannot free {ports}: {static[0].holder} holds it, and the kubelet "
            "runs a static pod from a file on the node (evicting its mirror pod does not "
            "stop it): move the port of one of the two"
        )
    label = _label(pod)
    if pod.preemption_policy == NEVER:
        return (
            f"preemption: {label} has preemptionPolicy Never: the daemon waits for {ports} "
            "to be released, it never preempts"
        )
    top = max(h.priority for h in holders)
    names = _names([h.pod for h in holders])
    held = f"the {_pods(len(holders))} holding {ports}"
    if pod.priority > top:
        return f"preemption: {label}: the daemon could preempt {held} ({names})"
    text = (
        f"preemption: {label}: the daemon cannot preempt {held} "
        f"(priority {_priorities_of(h.priority for h in holders)})"
    )
    would = {pc.name: pc for pc in _candidates(classes, top)}
    if SYSTEM_NODE_CRITICAL not in would:
        return text + "; no PriorityClass would"
    best = would.pop(SYSTEM_NODE_CRITICAL)
    them = "it" if len(holders) == 1 else "them"
    text += f"; {best.name} ({best.value}) would preempt {them} ({names})"
    if would:
        lowest = next(iter(would.values()))
        text += f", so would {lowest.name} ({lowest.value})"
    return text


def _priorities_of(values: Iterable[int]) -> str:
    return ", ".join(str(v) for v in sorted(set(values)))


def advice(
    pod: Pod,
    short: Iterable[Shortage],
    load: Load | None,
    classes: Mapping[str, PriorityClass],
) -> str:
    """`preemption: …` for a daemon pod the scheduler could not fit on its node for the
    shortages `short` (capacity.shortages: the numbers its reason gives); "" when the
    record cannot tell what it needs."""
    short = [s for s in short if s.needs > 0]
    if not short:
        return ""
    need = {s.resource: s.needs for s in short}
    too_big = [s.resource for s in short if s.needs > (s.allocatable or 0)]
    if too_big:
        return (
            f"preemption cannot help: the daemon asks for more {', '.join(too_big)} than "
            "the node's allocatable"
        )
    members = load.members if load else {}
    # Unclamped: an over-committed node has less than nothing free.
    free = {s.resource: (s.allocatable or 0) - s.requested for s in short}
    p = pod.priority
    label = _label(pod)
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
    would = {
        pc.name: (pc, found)
        for pc in _candidates(classes, p)
        if (found := victims(need, free, members, pc.value))
    }
    if SYSTEM_NODE_CRITICAL not in would:
        return text + "; no PriorityClass would"
    best, found = would.pop(SYSTEM_NODE_CRITICAL)
    text += f"; {best.name} ({best.value}) would preempt {_pods(len(found))} ({_names(found)})"
    if would:
        lowest = next(iter(would.values()))[0]
        text += f", so would {lowest.name} ({lowest.value})"
    return text
