"""Compact records for Node, DaemonSet, Pod and ControllerRevision.

Raw Kubernetes JSON (bytes as served, or dicts as a source emits them) is decoded into the
wire shapes of `wire.py` and projected at once into the flat, immutable records below. The
matrix keeps only these records, never whole objects: a pod record holds what the cell
classification needs (already reduced, e.g. the kubectl status word), which keeps 150,000
pods within a few hundred bytes each.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, Literal, overload

import msgspec
from msgspec import Struct

from . import shallow, wire
from .affinity import term_problem
from .capacity import Amounts, node_allocatable, pod_requests
from .event_records import EventRecord, WireEvent, event_from_wire
from .priority import PriorityClass, WirePriorityClass, priority_class_from_wire
from .wire import LabelSelector, NodeSelectorTerm, Taint, Toleration

KINDS = (
    "Node",
    "DaemonSet",
    "Pod",
    "ControllerRevision",
    "Service",
    "EndpointSlice",
    "Event",
    "PriorityClass",
)
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
# The kubelet marks the API's copy of a static pod (a "mirror pod") with this annotation.
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # on every EndpointSlice of a Service


class HostPort(Struct, frozen=True, gc=False, array_like=True):
    """A port a container takes on its node's own address (hostPort, or hostNetwork)."""

    port: int
    protocol: str  # TCP | UDP | SCTP
    container: str


class NamedPort(Struct, frozen=True, gc=False, array_like=True):
    """A declared container port: what a Service's named targetPort resolves against."""

    name: str
    port: int
    protocol: str
    container: str


class DecodeError(ValueError):
    """Input that is not a Kubernetes object or list of the kinds we understand."""


class Node(Struct, frozen=True, gc=False, array_like=True):
    name: str
    uid: str
    resource_version: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    ready: str  # "True" | "False" | "Unknown" | "" (no Ready condition yet)
    ready_reason: str
    ready_message: str
    pressures: tuple[str, ...]  # pressure conditions that are True
    network_unavailable: bool
    deleting: bool
    created: str | None
    kubelet_version: str
    internal_ip: str = ""  # the first InternalIP address: where hostPorts are reached
    allocatable: Amounts = ()  # status.allocatable, in thousandths (capacity.py)
    ready_since: str | None = None  # the Ready condition's lastTransitionTime


class DaemonSet(Struct, frozen=True, gc=False, array_like=True):
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    template_generation: str | None
    selector: LabelSelector | None
    node_name: str  # the template's own spec.nodeName (rare)
    node_selector: dict[str, str]
    # None: no required node affinity at all; () would mean "required, but no terms".
    required_terms: tuple[NodeSelectorTerm, ...] | None
    tolerations: tuple[Toleration, ...]
    host_network: bool
    strategy: str
    max_unavailable: int | str | None
    max_surge: int | str | None
    min_ready_seconds: int
    images: tuple[str, ...]
    labels: dict[str, str]
    status: wire.DaemonSetStatus
    deleting: bool
    # Per required term: why the controller cannot parse it ("" when it can), worked out
    # once here rather than for every node (affinity.term_problem).
    term_errors: tuple[str, ...] = ()
    template_labels: dict[str, str] = {}  # what a Service's selector is matched against
    host_ports: tuple[HostPort, ...] = ()
    container_ports: tuple[NamedPort, ...] = ()
    priority_class: str = ""  # the template's spec.priorityClassName ("" when none)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Termination(Struct, frozen=True, gc=False, array_like=True):
    container: str
    reason: str
    exit_code: int
    signal: int
    finished_at: str | None
    message: str


class Problem(Struct, frozen=True, gc=False, array_like=True):
    """The first container that is waiting or blocked, as kubectl would report it."""

    container: str
    init: bool
    reason: str
    message: str


class Pod(Struct, frozen=True, gc=False, array_like=True):
    namespace: str
    name: str
    uid: str
    resource_version: str
    owner_uid: str  # controller DaemonSet's uid; "" when not owned by a DaemonSet
    owner_name: str
    node: str  # target node: spec.nodeName, else the daemon matchFields term
    bound: bool
    created: str | None
    deleting: bool
    phase: str
    reason: str
    message: str
    status_word: str
    ready: bool
    ready_since: str | None
    unschedulable_message: str | None  # set when PodScheduled=False
    initialized: bool
    problem: Problem | None
    crash_looping: bool
    ready_containers: int
    total_containers: int
    restarts: int
    last_termination: Termination | None
    images: tuple[str, ...]
    revision_hash: str
    template_generation: str
    pod_ip: str = ""
    host_ports: tuple[HostPort, ...] = ()
    # A kubelet's static pod as the API mirrors it (MIRROR_ANNOTATION): no controller
    # creates or repairs it, the kubelet runs it from a manifest file on the node.
    mirror: bool = False
    labels: dict[str, str] = {}  # kept only for mirror pods (for grouping); {} otherwise
    # What the scheduler counts for the pod (capacity.py), in thousandths, by resource.
    requests: Amounts = ()
    # Resolved by the API server's Priority admission at creation (priority.py).
    priority: int = 0
    priority_class: str = ""
    preemption_policy: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Revision(Struct, frozen=True, gc=False, array_like=True):
    namespace: str
    name: str
    uid: str
    resource_version: str
    owner_uid: str
    revision: int
    hash: str
    created: str | None = None
    # The pod template it stores, as canonical JSON (sorted keys), for DaemonSet revisions
    # only: what revisions.py diffs and compares (A→B→A). "" when unknown or too large.
    template: str = ""
    template_size: int = 0  # bytes of the canonical template, even when not kept

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class ServicePort(Struct, frozen=True, gc=False, array_like=True):
    name: str
    protocol: str
    port: int
    target: int | str  # a number, or the name of a container port


class Service(Struct, frozen=True, gc=False, array_like=True):
    namespace: str
    name: str
    uid: str
    resource_version: str
    type: str
    cluster_ip: str
    # None or {}: no selector, so no controller fills its endpoints; it selects no DaemonSet.
    selector: dict[str, str] | None
    ports: tuple[ServicePort, ...]
    internal_traffic_policy: str
    publish_not_ready: bool
    labels: dict[str, str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


class SliceEndpoint(Struct, frozen=True, gc=False, array_like=True):
    """One endpoint of a slice, with the keys of its slice and Service and the slice's
    ports: the access index points at these directly, one per daemon pod (150,000 in the
    bench), so they carry what a lookup needs instead of a wrapper object each."""

    # The first address only: the API says addresses are fungible and consumers may use
    # the first (discovery/v1 Endpoint.addresses); kube-proxy and CoreDNS do.
    address: str
    ready: bool
    serving: bool
    terminating: bool
    hostname: str
    pod: str  # targetRef name when it is a Pod; "" otherwise
    slice: str = ""  # the EndpointSlice's key (shared by the slice's endpoints)
    service: str = ""  # the Service's key
    ports: tuple[int, ...] = ()  # the slice's port numbers (target ports, resolved)

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address,) if self.address else ()


class SlicePort(Struct, frozen=True, gc=False, array_like=True):
    name: str
    port: int
    protocol: str


class EndpointSlice(Struct, frozen=True, gc=False, array_like=True):
    namespace: str
    name: str
    uid: str
    resource_version: str
    service: str  # the Service's name (SERVICE_NAME_LABEL); "" if not a Service's slice
    address_type: str
    endpoints: tuple[SliceEndpoint, ...]
    ports: tuple[SlicePort, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"


Record = Node | DaemonSet | Pod | Revision | Service | EndpointSlice | EventRecord | PriorityClass


# --------------------------------------------------------------------------- projection


def _condition(conditions: Iterable[wire.Condition], kind: str) -> wire.Condition | None:
    for c in conditions:
        if c.type == kind:
            return c
    return None


def node_from_wire(w: wire.WireNode) -> Node:
    meta, conditions = w.metadata, w.status.conditions
    ready = _condition(conditions, "Ready")
    net = _condition(conditions, "NetworkUnavailable")
    info = w.status.nodeInfo
    return Node(
        name=_shared(meta.name),
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        labels=meta.labels,
        taints=tuple(w.spec.taints),
        unschedulable=w.spec.unschedulable,
        ready=ready.status if ready else "",
        ready_reason=ready.reason if ready else "",
        ready_message=ready.message if ready else "",
        pressures=tuple(
            c.type for c in conditions if c.type in PRESSURE_CONDITIONS and c.status == "True"
        ),
        network_unavailable=bool(net and net.status == "True"),
        deleting=meta.deletionTimestamp is not None,
        created=meta.creationTimestamp,
        kubelet_version=info.kubeletVersion if info else "",
        internal_ip=next((a.address for a in w.status.addresses if a.type == "InternalIP"), ""),
        allocatable=node_allocatable(w.status.allocatable),
        ready_since=ready.lastTransitionTime if ready else None,
    )


def _host_ports(spec: wire.PodSpec) -> tuple[HostPort, ...]:
    """The node ports a pod takes. With hostNetwork every declared container port is one:
    Pod defaulting copies containerPort into hostPort, which a DaemonSet's template does
    not show yet (docs/access.md)."""
    out = []
    for c in (*spec.initContainers, *spec.containers) if spec.initContainers else spec.containers:
        for p in c.ports:
            port = p.hostPort or (p.containerPort if spec.hostNetwork else 0)
            if port > 0:
                out.append(HostPort(port, p.protocol or "TCP", c.name))
    return tuple(out)


def _named_ports(spec: wire.PodSpec) -> tuple[NamedPort, ...]:
    return tuple(
        NamedPort(p.name, p.containerPort, p.protocol or "TCP", c.name)
        for c in (*spec.initContainers, *spec.containers)
        for p in c.ports
        if p.containerPort > 0
    )


def daemonset_from_wire(w: wire.WireDaemonSet) -> DaemonSet:
    meta, spec = w.metadata, w.spec
    tmpl = spec.template.spec
    affinity = tmpl.affinity.nodeAffinity if tmpl.affinity else None
    required = affinity.requiredDuringSchedulingIgnoredDuringExecution if affinity else None
    rolling = spec.updateStrategy.rollingUpdate
    return DaemonSet(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        generation=meta.generation,
        template_generation=meta.annotations.get(TEMPLATE_GENERATION_ANNOTATION),
        selector=spec.selector,
        node_name=tmpl.nodeName,
        node_selector=tmpl.nodeSelector,
        required_terms=tuple(required.nodeSelectorTerms) if required is not None else None,
        term_errors=tuple(term_problem(t) for t in required.nodeSelectorTerms)
        if required is not None
        else (),
        tolerations=tuple(tmpl.tolerations),
        host_network=tmpl.hostNetwork,
        priority_class=tmpl.priorityClassName,
        strategy=spec.updateStrategy.type or "RollingUpdate",
        # apps/v1 defaults (docs/cells.md, "Outdated"): maxUnavailable 1, maxSurge 0.
        max_unavailable=rolling.maxUnavailable
        if rolling and rolling.maxUnavailable is not None
        else 1,
        max_surge=rolling.maxSurge if rolling and rolling.maxSurge is not None else 0,
        min_ready_seconds=spec.minReadySeconds,
        images=tuple(c.image for c in tmpl.containers),
        labels=meta.labels,
        status=w.status,
        deleting=meta.deletionTimestamp is not None,
        template_labels=spec.template.metadata.labels,
        host_ports=_host_ports(tmpl),
        container_ports=_named_ports(tmpl),
    )


def controller_of(meta: wire.Meta) -> wire.OwnerReference | None:
    for ref in meta.ownerReferences:
        if ref.controller:
            return ref
    return None


def target_node(spec: wire.PodSpec) -> str:
    """The node a daemon pod belongs to, even before the scheduler binds it (docs/cells.md)."""
    if spec.nodeName:
        return spec.nodeName
    affinity = spec.affinity.nodeAffinity if spec.affinity else None
    required = affinity.requiredDuringSchedulingIgnoredDuringExecution if affinity else None
    for term in required.nodeSelectorTerms if required else ():
        for f in term.matchFields:
            if f.key == "metadata.name" and f.operator == "In":
                # The controller treats anything but exactly one value as an error.
                return f.values[0] if len(f.values) == 1 else ""
    return ""


def _exit_word(t: wire.StateTerminated) -> str:
    if t.reason:
        return t.reason
    return f"Signal:{t.signal}" if t.signal else f"ExitCode:{t.exitCode}"


def _status_word(w: wire.WirePod, ready: bool) -> tuple[str, int, int, Problem | None, bool]:
    """kubectl's STATUS column (printPod; docs/cells.md), plus what it learns on the way.

    Returns (word, ready containers, restarts, first blocking problem, initialized).
    """
    status, spec = w.status, w.spec
    word = status.reason or status.phase
    scheduled = _condition(status.conditions, "PodScheduled")
    if scheduled and scheduled.reason == "SchedulingGated":
        word = "SchedulingGated"

    restarts = 0
    ready_containers = 0
    problem: Problem | None = None
    initializing = False
    sidecars = {c.name for c in spec.initContainers if c.restartPolicy == "Always"}
    for i, cs in enumerate(status.initContainerStatuses):
        restarts += cs.restartCount
        state = cs.state
        if state.terminated is not None and state.terminated.exitCode == 0:
            continue
        if cs.name in sidecars and state.running is not None:
            # A started sidecar no longer blocks; it counts like an app container.
            if cs.ready:
                ready_containers += 1
            continue
        if state.terminated is not None:
            word = "Init:" + _exit_word(state.terminated)
            problem = Problem(cs.name, True, _exit_word(state.terminated), state.terminated.message)
        elif (
            state.waiting is not None
            and state.waiting.reason
            and state.waiting.reason != "PodInitializing"
        ):
            word = "Init:" + state.waiting.reason
            problem = Problem(cs.name, True, state.waiting.reason, state.waiting.message)
        else:
            word = f"Init:{i}/{len(spec.initContainers)}"
        initializing = True
        break

    init_cond = _condition(status.conditions, "Initialized")
    initialized = not initializing or bool(init_cond and init_cond.status == "True")
    if initialized:
        app_restarts = 0
        has_running = False
        for cs in reversed(status.containerStatuses):
            app_restarts += cs.restartCount
            state = cs.state
            if state.waiting is not None and state.waiting.reason:
                word = state.waiting.reason
                problem = Problem(cs.name, False, state.waiting.reason, state.waiting.message)
            elif state.terminated is not None:
                word = _exit_word(state.terminated)
            elif cs.ready and state.running is not None:
                has_running = True
                ready_containers += 1
        restarts += app_restarts
        if word == "Completed" and has_running:
            word = "Running" if ready else "NotReady"
    else:
        restarts += sum(cs.restartCount for cs in status.containerStatuses)

    if w.metadata.deletionTimestamp is not None:
        if status.reason == "NodeLost":
            word = "Unknown"
        elif status.phase not in ("Succeeded", "Failed"):
            word = "Terminating"
    return word, ready_containers, restarts, problem, initialized


def _last_termination(statuses: Iterable[wire.ContainerStatus]) -> Termination | None:
    latest: Termination | None = None
    for cs in statuses:
        for t in (cs.state.terminated, cs.lastState.terminated):
            if t is None:
                continue
            # RFC 3339 UTC timestamps from one API server sort correctly as strings.
            if latest is None or (t.finishedAt or "") > (latest.finished_at or ""):
                latest = Termination(
                    cs.name, _exit_word(t), t.exitCode, t.signal, t.finishedAt, t.message
                )
    return latest


# One object per distinct value for the strings records repeat. sys.intern's table holds
# no reference of its own (an interned string goes when its last user does), so it cannot
# grow without bound with the cluster's churn.
_shared = sys.intern
_IMAGES: dict[tuple[str, ...], tuple[str, ...]] = {}
_IMAGES_MAX = 4096  # distinct image lists kept; beyond that (hostile churn) start over


def _shared_images(images: tuple[str, ...]) -> tuple[str, ...]:
    known = _IMAGES.get(images)
    if known is not None:
        return known
    if len(_IMAGES) >= _IMAGES_MAX:
        _IMAGES.clear()
    images = tuple(map(sys.intern, images))
    _IMAGES[images] = images
    return images


def pod_from_wire(w: wire.WirePod) -> Pod:
    meta, spec, status = w.metadata, w.spec, w.status
    owner = controller_of(meta)
    is_ds = owner is not None and owner.kind == "DaemonSet" and owner.apiVersion.startswith("apps/")
    mirror = not is_ds and MIRROR_ANNOTATION in meta.annotations
    ready_cond = _condition(status.conditions, "Ready")
    ready = bool(ready_cond and ready_cond.status == "True")
    scheduled = _condition(status.conditions, "PodScheduled")
    word, ready_containers, restarts, problem, initialized = _status_word(w, ready)
    # Most pods have no init containers: no copies, no generators for them (hot path).
    if status.initContainerStatuses:
        all_statuses = [*status.initContainerStatuses, *status.containerStatuses]
    else:
        all_statuses = status.containerStatuses
    sidecars = (
        sum(1 for c in spec.initContainers if c.restartPolicy == "Always")
        if spec.initContainers
        else 0
    )
    crash_looping = False
    for cs in all_statuses:
        waiting = cs.state.waiting
        if waiting is not None and waiting.reason == "CrashLoopBackOff":
            crash_looping = True
            break
    # Strings every pod of a DaemonSet, or of a node, repeats are shared (`_shared`): a
    # 600,000-pod cluster holds each node name 40 times and each owner uid 15,000 times,
    # and msgspec makes a new string object for every occurrence (bench/RESULTS.md).
    # Positional, in the order of Pod's fields (named on the right): keywords cost ~1.7 µs
    # a pod to match, a sixth of the projection of a 150,000-pod sync (bench/RESULTS.md).
    return Pod(
        _shared(meta.namespace),  # namespace
        meta.name,  # name
        meta.uid,  # uid
        meta.resourceVersion,  # resource_version
        _shared(owner.uid) if is_ds and owner else "",  # owner_uid
        _shared(owner.name) if is_ds and owner else "",  # owner_name
        _shared(target_node(spec)),  # node
        bool(spec.nodeName),  # bound
        meta.creationTimestamp,  # created
        meta.deletionTimestamp is not None,  # deleting
        _shared(status.phase),  # phase
        _shared(status.reason),  # reason
        status.message,  # message
        _shared(word),  # status_word
        ready,  # ready
        ready_cond.lastTransitionTime if ready_cond and ready else None,  # ready_since
        (
            (scheduled.message or scheduled.reason or "not scheduled")
            if scheduled and scheduled.status == "False"
            else None
        ),  # unschedulable_message
        initialized,  # initialized
        problem,  # problem
        crash_looping,  # crash_looping
        ready_containers,  # ready_containers
        len(spec.containers) + sidecars,  # total_containers
        restarts,  # restarts
        _last_termination(all_statuses),  # last_termination
        _shared_images(tuple([c.image for c in spec.containers])),  # images
        _shared(meta.labels.get(REVISION_HASH_LABEL, "")),  # revision_hash
        _shared(meta.labels.get(TEMPLATE_GENERATION_LABEL, "")),  # template_generation
        status.podIP,  # pod_ip
        _host_ports(spec),  # host_ports
        mirror,  # mirror
        meta.labels if mirror else {},  # labels
        pod_requests(spec),  # requests
        spec.priority or 0,  # priority
        _shared(spec.priorityClassName),  # priority_class
        _shared(spec.preemptionPolicy),  # preemption_policy
    )


# A template is kept up to this size (canonical JSON): a DaemonSet keeps ten revisions by
# default, so a few dozen DaemonSets cost a few MB at most; a larger one is compared by
# size and hash label only, and its diff says it was too large.
MAX_TEMPLATE_BYTES = 64 * 1024
_canonical = msgspec.json.Encoder(order="sorted")


def revision_template(data: Any) -> bytes | None:
    """The pod template a DaemonSet's ControllerRevision stores, as canonical JSON: the
    controller writes `{"spec": {"template": {…, "$patch": "replace"}}}` (its getPatch)."""
    spec = data.get("spec") if isinstance(data, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict):
        return None
    template = {k: v for k, v in template.items() if k != "$patch"}
    try:
        return _canonical.encode(template)
    except (TypeError, ValueError, OverflowError):
        return None


def revision_from_wire(w: wire.WireControllerRevision) -> Revision:
    meta = w.metadata
    owner = controller_of(meta)
    owned = owner is not None and owner.kind == "DaemonSet"
    text = revision_template(w.data) if owned else None
    size = len(text) if text is not None else 0
    return Revision(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        owner_uid=owner.uid if owner is not None and owned else "",
        revision=w.revision,
        hash=meta.labels.get(REVISION_HASH_LABEL, ""),
        created=meta.creationTimestamp,
        template=text.decode() if text is not None and size <= MAX_TEMPLATE_BYTES else "",
        template_size=size,
    )


def record_key(record: Record) -> str:
    """The identity of a record within its kind: "namespace/name", or a node's name."""
    return record.name if isinstance(record, Node) else record.key


def service_from_wire(w: wire.WireService) -> Service:
    meta, spec = w.metadata, w.spec
    return Service(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        type=spec.type or "ClusterIP",
        cluster_ip=spec.clusterIP,
        selector=spec.selector or None,
        ports=tuple(
            ServicePort(
                p.name,
                p.protocol or "TCP",
                p.port,
                p.targetPort if p.targetPort not in (None, "", 0) else p.port,
            )
            for p in spec.ports
        ),
        internal_traffic_policy=spec.internalTrafficPolicy or "Cluster",
        publish_not_ready=spec.publishNotReadyAddresses,
        labels=meta.labels,
    )


def endpointslice_from_wire(w: wire.WireEndpointSlice) -> EndpointSlice:
    meta = w.metadata
    namespace, name = meta.namespace, meta.name
    service = meta.labels.get(SERVICE_NAME_LABEL, "")
    # One key string and one ports tuple per slice, shared by all of its endpoints.
    slice_key, service_key = f"{namespace}/{name}", f"{namespace}/{service}"
    ports = tuple(
        SlicePort(p.name or "", p.port or 0, p.protocol or "TCP") for p in w.ports or () if p.port
    )
    numbers = tuple(p.port for p in ports)
    endpoints = []
    for e in w.endpoints or ():
        c = e.conditions
        ref = e.targetRef
        endpoints.append(
            SliceEndpoint(
                e.addresses[0] if e.addresses else "",
                c.ready is not False,  # nil means true (discovery/v1 field comments)
                c.serving is not False,
                bool(c.terminating),
                e.hostname or "",
                ref.name if ref is not None and ref.kind == "Pod" else "",
                slice_key,
                service_key,
                numbers,
            )
        )
    return EndpointSlice(
        namespace=namespace,
        name=name,
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        service=service,
        address_type=w.addressType,
        endpoints=tuple(endpoints),
        ports=ports,
    )


# The wire shape of each kind, and its projection into the record.
_WIRE: dict[str, tuple[type[Struct], Callable[[Any], Record]]] = {
    "Node": (wire.WireNode, node_from_wire),
    "DaemonSet": (wire.WireDaemonSet, daemonset_from_wire),
    "Pod": (wire.WirePod, pod_from_wire),
    "ControllerRevision": (wire.WireControllerRevision, revision_from_wire),
    "Service": (wire.WireService, service_from_wire),
    "EndpointSlice": (wire.WireEndpointSlice, endpointslice_from_wire),
    "Event": (WireEvent, event_from_wire),
    "PriorityClass": (WirePriorityClass, priority_class_from_wire),
}
_LIST_KINDS = {f"{k}List": k for k in KINDS}

# ---------------------------------------------------------------------- objects we skip


class _IdMeta(Struct):
    name: str = ""
    namespace: str = ""
    resourceVersion: str = ""


class _Identity(Struct):
    metadata: _IdMeta = msgspec.field(default_factory=_IdMeta)


class Skipped(Struct, frozen=True):
    """An object left out because it cannot be decoded: which one, and why."""

    kind: str
    namespace: str
    name: str
    resource_version: str
    reason: str

    @property
    def key(self) -> str:
        """Its identity within its resource, like `record_key` ("" when unknown)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def describe(self) -> str:
        return f"{self.kind} {self.key or '(unnamed)'}: {self.reason}"


# msgspec's own errors, and its RecursionError on deep nesting (~1,000 levels, even inside
# a field it skips): all mean "this one object cannot be read".
_UNREADABLE = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
TOO_DEEP = "nested too deeply to decode (about 1,000 levels or more)"


def _reason(exc: BaseException) -> str:
    return TOO_DEEP if isinstance(exc, RecursionError) else str(exc)


def _split(raw: bytes | msgspec.Raw) -> tuple[bytes, dict[str, tuple[int, int]]]:
    data = bytes(raw)
    return data, shallow.members(data)


def identity(raw: bytes | msgspec.Raw) -> tuple[str, str, str]:
    """(namespace, name, resourceVersion) of an object that may not decode as a whole."""
    try:
        meta = _identity_decoder.decode(raw).metadata
    except RecursionError:
        try:
            data, parts = _split(raw)
            if "metadata" not in parts:
                return "", "", ""
            start, end = parts["metadata"]
            meta = _idmeta_decoder.decode(data[start:end])
        except (shallow.ShallowError, *_UNREADABLE):
            return "", "", ""
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "", "", ""
    return meta.namespace, meta.name, meta.resourceVersion


def skipped(kind: str, raw: bytes | msgspec.Raw, reason: str) -> Skipped:
    namespace, name, rv = identity(raw)
    return Skipped(kind, namespace, name, rv, reason)


def tombstone(item: Skipped) -> Record:
    """A record that only names `item`: what a DELETED change needs to drop it."""
    meta = {
        "name": item.name,
        "namespace": item.namespace,
        "resourceVersion": item.resource_version,
    }
    return decode(item.kind, {"metadata": meta})


_identity_decoder = msgspec.json.Decoder(_Identity)
_idmeta_decoder = msgspec.json.Decoder(_IdMeta)
_decoder = msgspec.json.Decoder()
_kinded = msgspec.json.Decoder(wire.Kinded)
_raw_list = msgspec.json.Decoder(wire.RawList)
_raw_event = msgspec.json.Decoder(wire.RawEvent)
_typed_decoders = {kind: msgspec.json.Decoder(w) for kind, (w, _) in _WIRE.items()}


def _check_kind(kind: str) -> None:
    if kind not in _WIRE:
        raise DecodeError(f"unsupported kind {kind!r} (expected one of {', '.join(KINDS)})")


_Encoded = bytes | bytearray | memoryview | dict[str, Any] | msgspec.Raw


@overload
def decode(kind: Literal["Node"], obj: _Encoded) -> Node: ...
@overload
def decode(kind: Literal["DaemonSet"], obj: _Encoded) -> DaemonSet: ...
@overload
def decode(kind: Literal["Pod"], obj: _Encoded) -> Pod: ...
@overload
def decode(kind: Literal["ControllerRevision"], obj: _Encoded) -> Revision: ...
@overload
def decode(kind: Literal["Service"], obj: _Encoded) -> Service: ...
@overload
def decode(kind: Literal["EndpointSlice"], obj: _Encoded) -> EndpointSlice: ...
@overload
def decode(kind: Literal["Event"], obj: _Encoded) -> EventRecord: ...
@overload
def decode(kind: Literal["PriorityClass"], obj: _Encoded) -> PriorityClass: ...
@overload
def decode(kind: str, obj: _Encoded) -> Record: ...
def decode(kind: str, obj: _Encoded) -> Record:
    """Decode one object of a known kind, from JSON bytes or a dict, into its record."""
    _check_kind(kind)
    wire_type, project = _WIRE[kind]
    try:
        if isinstance(obj, dict):
            w = msgspec.convert(obj, wire_type, strict=False)
        else:
            w = _typed_decoders[kind].decode(obj)
    except _UNREADABLE as exc:
        raise DecodeError(f"malformed {kind}: {_reason(exc)}") from None
    return _named(kind, project(w))


def _named(kind: str, record: Record) -> Record:
    # Everything downstream keys on names; an object without one is not a real object.
    if not record.name:
        raise DecodeError(f"malformed {kind}: metadata.name is missing")
    return record


def kind_of(obj: bytes | dict[str, Any]) -> str:
    if isinstance(obj, dict):
        kind = obj.get("kind")
        return kind if isinstance(kind, str) else ""
    try:
        return _kinded.decode(obj).kind
    except RecursionError:
        try:
            return _kind_of_item(msgspec.Raw(obj))
        except (shallow.ShallowError, *_UNREADABLE) as exc:
            raise DecodeError(f"not a JSON object: {_reason(exc)}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DecodeError(f"not a JSON object: {exc}") from None


class DecodedList(Struct):
    kind: str  # item kind, e.g. "Pod"; "" for a mixed v1 List
    resource_version: str
    continue_token: str
    records: list[Record]
    skipped: dict[str, int]  # unknown kinds in a mixed List, with counts
    malformed: list[str] = []  # with strict=False: what was wrong with each left-out item
    bad: list[Skipped] = []  # with strict=False: the left-out items, by identity


def decode_list(data: bytes, item_kind: str | None = None, *, strict: bool = True) -> DecodedList:
    """Decode a list response (`PodList`, …) or a mixed `v1 List` as kubectl prints it.

    `item_kind` names the kind of the items when the caller knows it (a list API call);
    otherwise it is taken from the list's kind or, for a `List`, from each item. With
    `strict=False` a malformed item is left out and described in `.malformed` instead of
    failing the whole list: a live cluster's one bad object must not hide all the others.
    """
    try:
        lst = _raw_list.decode(data)
    except RecursionError:
        lst = _shallow_list(data)  # one item too deep must not hide the others
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    except msgspec.ValidationError as exc:
        raise DecodeError(f"not a Kubernetes list: {exc}") from None
    kind = item_kind or _LIST_KINDS.get(lst.kind)
    if kind is None and lst.kind != "List":
        raise DecodeError(
            f"expected a List (kubectl get … -o json) or one of "
            f"{', '.join(_LIST_KINDS)}, got kind {lst.kind or '(none)'!r}"
        )
    if kind is not None:
        _check_kind(kind)
    records: list[Record] = []
    skipped: dict[str, int] = {}
    malformed: list[str] = []
    bad: list[Skipped] = []
    if kind is not None:
        # One kind for the whole list (every API list call): the hot path, kept tight.
        dec, project = _typed_decoders[kind], _WIRE[kind][1]
        for index, raw in enumerate(lst.items):
            try:
                record = _named(kind, project(dec.decode(raw)))
            except (DecodeError, *_UNREADABLE) as exc:
                _malformed(malformed, bad, kind, index, raw, exc, strict)
                continue
            records.append(record)
    else:
        for index, raw in enumerate(lst.items):
            this_kind = ""
            try:
                # e.g. `"items": [1]` must become a DecodeError, never escape as a traceback.
                this_kind = _kind_of_item(raw)
                if this_kind not in _WIRE:
                    skipped[this_kind or "(no kind)"] = skipped.get(this_kind or "(no kind)", 0) + 1
                    continue
                records.append(decode(this_kind, raw))
            except (DecodeError, shallow.ShallowError, *_UNREADABLE) as exc:
                _malformed(malformed, bad, this_kind or "object", index, raw, exc, strict)
    return DecodedList(
        kind=kind or "",
        resource_version=lst.metadata.resourceVersion,
        continue_token=lst.metadata.continue_,
        records=records,
        skipped=skipped,
        malformed=malformed,
        bad=bad,
    )


def _kind_of_item(raw: msgspec.Raw) -> str:
    try:
        return _kinded.decode(raw).kind
    except RecursionError:
        data, parts = _split(raw)
        if "kind" not in parts:
            return ""
        start, end = parts["kind"]
        value = msgspec.json.decode(data[start:end])
        return value if isinstance(value, str) else ""


def _shallow_list(data: bytes) -> wire.RawList:
    """The list envelope with its items left raw, split without recursion (shallow.py)."""
    try:
        parts = shallow.members(data)
        head = {k: data[s:e] for k, (s, e) in parts.items() if k != "items"}
        envelope = _raw_list.decode(b"{" + b",".join(_pair(k, v) for k, v in head.items()) + b"}")
        if "items" in parts:
            start, end = parts["items"]
            items = [msgspec.Raw(data[s:e]) for s, e in shallow.elements(data, start, end)]
            envelope.items = items
    except (shallow.ShallowError, *_UNREADABLE) as exc:
        raise DecodeError(f"not a Kubernetes list: {_reason(exc)}") from None
    return envelope


def _pair(key: str, value: bytes) -> bytes:
    return msgspec.json.encode(key) + b":" + value


def _malformed(
    found: list[str],
    bad: list[Skipped],
    kind: str,
    index: int,
    raw: msgspec.Raw,
    exc: BaseException,
    strict: bool,
) -> None:
    text = _reason(exc)
    item = skipped(kind, raw, text.removeprefix(f"malformed {kind}: "))
    who = f" ({item.kind} {item.key})" if item.name else ""
    problem = f"list item {index}{who} is malformed: {text}"
    if strict:
        raise DecodeError(problem) from None
    found.append(problem)
    bad.append(item)


class WatchEvent(Struct):
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK | ERROR
    resource_version: str
    record: Record | None  # None for BOOKMARK and ERROR, and for an object we skip
    status: dict[str, Any] | None  # the Status object of an ERROR event
    skipped: Skipped | None = None  # the event's object could not be decoded
    # A BOOKMARK that ends a WatchList stream's initial events (sendInitialEvents=true):
    # every object of the snapshot at `resource_version` has been sent.
    initial_events_end: bool = False


# The annotation a WatchList stream's end-of-initial-events bookmark carries
# (metav1.InitialEventsAnnotationKey).
INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"


def _typed_event_decoder(wire_type: type[Struct]) -> msgspec.json.Decoder:
    typed = msgspec.defstruct(
        f"{wire_type.__name__}Event",
        [("type", str, ""), ("object", wire_type, msgspec.field(default_factory=wire_type))],
    )
    return msgspec.json.Decoder(typed)


# A watch line decoded in one pass, object included: splitting it first (RawEvent) and then
# decoding the object read every ~6 KB pod twice. Anything this cannot take (a BOOKMARK,
# an ERROR's Status, a malformed object) goes the general way below, which says why.
_typed_events = {kind: _typed_event_decoder(w) for kind, (w, _) in _WIRE.items()}
_OBJECT_EVENTS = frozenset(("ADDED", "MODIFIED", "DELETED"))


def decode_event(line: bytes, kind: str) -> WatchEvent:
    """Decode one watch-stream line of a known resource kind."""
    typed = _typed_events.get(kind)
    if typed is not None:
        try:
            fast = typed.decode(line)
            if fast.type in _OBJECT_EVENTS:
                record = _named(kind, _WIRE[kind][1](fast.object))
                return WatchEvent(
                    fast.type,
                    record.resource_version if hasattr(record, "resource_version") else "",
                    record,
                    None,
                )
        except (DecodeError, *_UNREADABLE):
            pass
    try:
        ev = _raw_event.decode(line)
    except RecursionError:
        ev = _shallow_event(line)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DecodeError(f"malformed watch event: {exc}") from None
    if ev.type == "ERROR":
        return WatchEvent("ERROR", "", None, _decoder.decode(ev.object))
    if ev.type == "BOOKMARK":
        meta = _decoder.decode(ev.object).get("metadata") or {}
        annotations = meta.get("annotations") or {}
        end = (
            isinstance(annotations, dict)
            and annotations.get(INITIAL_EVENTS_END_ANNOTATION) == "true"
        )
        return WatchEvent(
            "BOOKMARK", str(meta.get("resourceVersion", "")), None, None, initial_events_end=end
        )
    if ev.type not in ("ADDED", "MODIFIED", "DELETED"):
        raise DecodeError(f"unknown watch event type {ev.type!r}")
    try:
        record = decode(kind, ev.object)
    except DecodeError as exc:
        # The stream itself is fine: only this object cannot be read. The caller skips it
        # (and drops an older copy it may hold), then goes on with the next event.
        item = skipped(kind, ev.object, str(exc).removeprefix(f"malformed {kind}: "))
        return WatchEvent(ev.type, item.resource_version, None, None, item)
    return WatchEvent(
        ev.type,
        record.resource_version if hasattr(record, "resource_version") else "",
        record,
        None,
    )


def _shallow_event(line: bytes) -> wire.RawEvent:
    try:
        parts = shallow.members(line)
        kind_start, kind_end = parts.get("type", (0, 0))
        event_type = msgspec.json.decode(line[kind_start:kind_end]) if kind_end else ""
        start, end = parts.get("object", (0, 0))
        obj = msgspec.Raw(line[start:end]) if end else msgspec.Raw(b"{}")
    except (shallow.ShallowError, *_UNREADABLE) as exc:
        raise DecodeError(f"malformed watch event: {_reason(exc)}") from None
    return wire.RawEvent(type=event_type if isinstance(event_type, str) else "", object=obj)
