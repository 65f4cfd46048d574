"""Kubernetes Events (core/v1) as compact records: what explains a red cell.

The DaemonSet controller and the kubelet write core/v1 events (`count`, `firstTimestamp`,
`lastTimestamp`, `source`); the scheduler writes events.k8s.io/v1 ones, which the core/v1
API serves with `series`, `eventTime` and `reportingComponent` instead. Both are read here
through core/v1 (one storage behind both APIs, docs/why.md) and normalised into one record:
occurrences, first/last seen and the reporting component, whichever API wrote them.
"""

from __future__ import annotations

from msgspec import Struct, field

from .wire import Meta, ObjectReference

# "(combined from similar events): " is how client-go's aggregator prefixes an event that
# stands for ten or more differing messages; the cause is in what follows.
COMBINED_PREFIX = "(combined from similar events): "


class InvolvedObject(ObjectReference):
    # Declared here, not on every ObjectReference: a field declared is a field validated,
    # and an EndpointSlice's targetRef is read without it.
    fieldPath: str = ""  # "spec.containers{NAME}" for a container's events


class _Source(Struct, gc=False):
    component: str = ""
    host: str = ""


class _Series(Struct, gc=False):
    count: int = 0
    lastObservedTime: str | None = None


class WireEvent(Struct):
    metadata: Meta = field(default_factory=Meta)
    involvedObject: InvolvedObject = field(default_factory=InvolvedObject)
    reason: str = ""
    message: str = ""
    type: str = ""
    count: int | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    eventTime: str | None = None
    series: _Series | None = None
    source: _Source = field(default_factory=_Source)
    reportingComponent: str = ""


class EventRecord(Struct, frozen=True, gc=False):
    namespace: str
    name: str
    uid: str
    resource_version: str
    object_kind: str  # involvedObject.kind: Pod | DaemonSet | Node | …
    object_namespace: str
    object_name: str
    field_path: str  # "spec.containers{NAME}" for container events
    type: str  # Warning | Normal
    reason: str
    message: str
    count: int
    first_seen: str | None
    last_seen: str | None
    source: str  # the reporting component: daemonset-controller, kubelet, default-scheduler
    # A victim's Preempted event kept under the daemon pod that preempted it: the victim.
    victim: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def about(self) -> tuple[str, str, str]:
        """The object the event describes: (kind, namespace, name). Node events live in
        namespace `default` but describe a cluster-scoped object: no namespace then."""
        ns = "" if self.object_kind == "Node" else self.object_namespace
        return (self.object_kind, ns, self.object_name)


def event_from_wire(w: WireEvent) -> EventRecord:
    meta = w.metadata
    series = w.series
    count = (series.count if series else 0) or w.count or 1
    last_seen = (
        (series.lastObservedTime if series else None)
        or w.lastTimestamp
        or w.eventTime
        or w.firstTimestamp
        or meta.creationTimestamp
    )
    first_seen = w.firstTimestamp or w.eventTime or meta.creationTimestamp
    message = w.message
    if message.startswith(COMBINED_PREFIX):
        message = message[len(COMBINED_PREFIX) :]
    obj = w.involvedObject
    return EventRecord(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        object_kind=obj.kind,
        object_namespace=obj.namespace,
        object_name=obj.name,
        field_path=obj.fieldPath,
        type=w.type,
        reason=w.reason,
        message=message.strip(),
        count=count,
        first_seen=first_seen,
        last_seen=last_seen,
        source=w.reportingComponent or w.source.component,
    )


class Note(Struct, frozen=True, gc=False, array_like=True):
    """One event as a cell shows it."""

    about: str  # "DaemonSet", "pod NAME", "node"
    type: str
    reason: str
    message: str
    count: int
    first_seen: str | None
    last_seen: str | None
    source: str
