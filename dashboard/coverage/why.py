"""The events that explain a red cell, kept bounded, and the cause they name.

The matrix keeps an `EventBook`: for every DaemonSet, daemon pod and node it shows, only
the few newest relevant events (a handful per object, compact records), forgotten when
the object goes away or when they are older than the API server's own event TTL. A cell
that is not healthy gets the events of its DaemonSet (those that apply to its node), of
its pod and of its node; where an event is the best explanation, it becomes the reason:

* no pod at all: the DaemonSet's newest `FailedCreate` (quota, PodSecurity, webhook,
  LimitRange: the admission error the controller got) replaces "check the events";
* a pod stuck creating: the kubelet's `FailedCreatePodSandBox` / `FailedMount` / …;
* running but not ready: the readiness probe's output from `Unhealthy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import msgspec

from .cells import Cell
from .event_records import EventRecord, Note
from .states import State
from .timefmt import parse_time

# A few per object: the newest explain the present; older ones only repeat.
MAX_PER_OBJECT = 5
# kube-apiserver --event-ttl defaults to 1h: an event older than that is gone from the
# cluster too (when its DELETED is missed, e.g. across a relist, it goes here as well).
EVENT_TTL = timedelta(hours=1)
# A message is at most 1 kB on new-API events; legacy ones are not bounded by the server.
MAX_MESSAGE = 1024
# Normal events that still explain a daemon's trouble (most Normal ones are routine):
# the scheduler's Preempted (on a victim), the kubelet's image-pull BackOff ("Back-off
# pulling image"; the crash-loop BackOff is a Warning) and Killing, the node controller's
# NodeNotReady.
RELEVANT_NORMAL = ("Preempted", "BackOff", "Killing", "NodeNotReady")
WATCHED_KINDS = frozenset({"Pod", "DaemonSet", "Node"})

# The event streams, each one list+watch with its own server-side field selector (field
# selectors only AND their terms): Warning events, and one stream per relevant Normal
# reason. A stream's relist replaces only the events it selects. Record kind → (type, reason).
WARNING_STREAM = "Event"
EVENT_STREAMS: dict[str, tuple[str, str | None]] = {
    WARNING_STREAM: ("Warning", None),
    **{f"Event:{reason}": ("Normal", reason) for reason in RELEVANT_NORMAL},
}


# Events about nodes are stored in namespace "default" (the kubelet and the node controller
# record them with no namespace). With a single namespace other than that one watched, they
# come through streams of their own, in "default" only and about nodes only: Warning, and
# the one Normal reason that is about a node (the others are about pods). Optional: a
# namespaced Role may not reach "default" (docs/list-watch.md).
NODE_EVENTS_NAMESPACE = "default"
NODE_STREAM_PREFIX = "NodeEvent"
NODE_EVENT_STREAMS: dict[str, tuple[str, str | None]] = {
    NODE_STREAM_PREFIX: ("Warning", None),
    f"{NODE_STREAM_PREFIX}:NodeNotReady": ("Normal", "NodeNotReady"),
}
ALL_EVENT_STREAMS = {**EVENT_STREAMS, **NODE_EVENT_STREAMS}


def stream_selector(stream: str) -> str:
    type_, reason = ALL_EVENT_STREAMS[stream]
    about = "involvedObject.kind=Node," if stream in NODE_EVENT_STREAMS else ""
    return f"{about}type={type_}" + (f",reason={reason}" if reason else "")


def stream_of(event: EventRecord) -> str | None:
    """The stream that selects `event` (None: no stream does)."""
    if event.type == "Warning":
        return WARNING_STREAM
    if event.type == "Normal" and event.reason in RELEVANT_NORMAL:
        return f"Event:{event.reason}"
    return None


def node_stream_of(event: EventRecord) -> str | None:
    """The node-events stream that selects `event` (None: none does)."""
    if event.namespace != NODE_EVENTS_NAMESPACE or event.object_kind != "Node":
        return None
    if event.type == "Warning":
        return NODE_STREAM_PREFIX
    if event.type == "Normal" and event.reason == "NodeNotReady":
        return f"{NODE_STREAM_PREFIX}:NodeNotReady"
    return None


# Kubelet reasons that say why a bound pod does not get its containers started.
CREATING_REASONS = (
    "FailedCreatePodSandBox",
    "FailedMount",
    "FailedAttachVolume",
    "NetworkNotReady",
    "Failed",
)

ObjectRef = tuple[str, str, str]  # (kind, namespace, name); "" namespace for nodes


def relevant(event: EventRecord) -> bool:
    return event.object_kind in WATCHED_KINDS and stream_of(event) is not None


def _newest_first(event: EventRecord) -> tuple[str, str]:
    return (event.last_seen or "", event.name)


class EventBook:
    """The kept events, by the object they describe, newest first, `per_object` at most."""

    def __init__(self, per_object: int = MAX_PER_OBJECT, ttl: timedelta = EVENT_TTL):
        self.per_object = per_object
        self.ttl = ttl
        self.by_key: dict[str, EventRecord] = {}
        self._by_object: dict[ObjectRef, list[EventRecord]] = {}

    def __len__(self) -> int:
        return len(self.by_key)

    @property
    def active(self) -> bool:
        return bool(self._by_object)

    def objects(self) -> int:
        return len(self._by_object)

    def put(self, event: EventRecord) -> ObjectRef:
        """Keep (or update) `event`; the oldest beyond `per_object` are dropped."""
        key = event.key
        if key in self.by_key:
            self.remove(event)
        about = event.about
        kept = self._by_object.setdefault(about, [])
        # The kept list is in order already: an initial sync's 20,000 events mostly go
        # first or last, without a sort each (a stable sort would put them there too).
        order = _newest_first(event)
        if not kept or order <= _newest_first(kept[-1]):
            kept.append(event)
        elif order > _newest_first(kept[0]):
            kept.insert(0, event)
        else:
            kept.append(event)
            kept.sort(key=_newest_first, reverse=True)
        self.by_key[key] = event
        for dropped in kept[self.per_object :]:
            self.by_key.pop(dropped.key, None)
        del kept[self.per_object :]
        return about

    def remove(self, event: EventRecord) -> ObjectRef | None:
        old = self.by_key.pop(event.key, None)
        if old is None:
            return None
        about = old.about
        kept = self._by_object.get(about, [])
        kept[:] = [e for e in kept if e.key != old.key]
        if not kept:
            self._by_object.pop(about, None)
        return about

    def forget(self, about: ObjectRef) -> bool:
        """The object is gone: so are its events."""
        kept = self._by_object.pop(about, None)
        for event in kept or ():
            self.by_key.pop(event.key, None)
        return kept is not None

    def expire(self, now: datetime) -> list[ObjectRef]:
        """Drop events last seen more than `ttl` ago; the objects whose events changed."""
        cutoff = now - self.ttl
        touched = []
        for event in list(self.by_key.values()):
            seen = parse_time(event.last_seen)
            if seen is not None and seen < cutoff:
                about = self.remove(event)
                if about is not None:
                    touched.append(about)
        return list(dict.fromkeys(touched))

    def of(self, about: ObjectRef) -> Sequence[EventRecord]:
        return self._by_object.get(about, ())


def names_node(event: EventRecord, node: str) -> bool:
    """A DaemonSet event about one node (FailedDaemonPod: "... on node NAME, ...")."""
    return re.search(rf"\bnode \"?{re.escape(node)}\b", event.message) is not None


def _names_a_node(event: EventRecord) -> bool:
    return re.search(r"\bon node \S", event.message) is not None


def _note(about: str, event: EventRecord) -> Note:
    return Note(
        about,
        event.type,
        event.reason,
        event.message[:MAX_MESSAGE],
        event.count,
        event.first_seen,
        event.last_seen,
        event.source,
    )


def _newest(events: Iterable[EventRecord], reasons: Iterable[str]) -> EventRecord | None:
    wanted = set(reasons)
    return next((e for e in events if e.reason in wanted), None)


def _failed_create_text(message: str) -> str:
    # "Error creating: pods "x" is forbidden: …": the admission error is what matters.
    return message.removeprefix("Error creating: ")


# The missing-cell reasons an event can improve on: "go and look", and "the node is new"
# (a node that joined a minute ago in a namespace over quota will not get its pod either).
REPLACEABLE_MISSING = ("eligible but no daemon pod", "node joined ")


def explain(
    cell: Cell,
    node: str,
    ds_events: Sequence[EventRecord],
    pod_events: Sequence[EventRecord],
    node_events: Sequence[EventRecord],
) -> Cell:
    """The cell with its explaining events attached and, where one names the cause, its
    reason replaced. Healthy and untargeted cells are returned as they are."""
    state = cell.state
    if state is State.HEALTHY and pod_events:
        # A healthy daemon that preempted others to get in still says whom it evicted.
        evicted = [_note(f"preempted pod {e.victim}", e) for e in pod_events if e.victim]
        if evicted:
            return msgspec.structs.replace(cell, events=tuple(evicted[:MAX_PER_OBJECT]))
    if state in (State.HEALTHY, State.NOT_TARGETED) or not (ds_events or pod_events or node_events):
        return cell
    reason = cell.reason
    pod = cell.pod
    if state is State.MISSING:
        # FailedCreate names no node: it explains every missing cell of the DaemonSet.
        ds_own = [e for e in ds_events if not _names_a_node(e) or names_node(e, node)]
    else:
        ds_own = [e for e in ds_events if names_node(e, node)]
    notes = sorted(
        [
            *(_note("DaemonSet", e) for e in ds_own),
            *(
                _note(f"preempted pod {e.victim}" if e.victim else f"pod {pod}", e)
                for e in pod_events
            ),
            *(_note("node", e) for e in node_events),
        ],
        key=lambda n: n.last_seen or "",
        reverse=True,
    )[:MAX_PER_OBJECT]
    if not notes:
        return cell
    if state is State.MISSING and reason.startswith(REPLACEABLE_MISSING):
        failed = _newest(ds_own, ("FailedCreate",))
        if failed is not None:
            reason = f"FailedCreate: {_failed_create_text(failed.message)}"
    elif state is State.STARTING and pod_events:
        blocking = _newest(pod_events, CREATING_REASONS)
        if blocking is not None:
            reason = f"{reason}; {blocking.reason}: {blocking.message}"
    elif state is State.NOT_READY and pod_events:
        probe = next(
            (
                e
                for e in pod_events
                if e.reason == "Unhealthy" and e.message.startswith("Readiness probe")
            ),
            None,
        )
        if probe is not None:
            reason = f"not Ready: {probe.message}"
    return msgspec.structs.replace(cell, reason=reason[: MAX_MESSAGE + 64], events=tuple(notes))
