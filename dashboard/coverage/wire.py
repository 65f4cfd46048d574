"""Wire shapes: the parts of Kubernetes JSON objects the engine reads, and nothing else.

msgspec skips every field not declared here while decoding, which is what keeps decoding
150,000 pods fast and small (see bench/RESULTS.md). These structs are an implementation
detail of `records`; the rest of the engine works on the flat records built from them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct, field

IntOrString = int | str


class OwnerReference(Struct, gc=False):
    apiVersion: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool = False


class Meta(Struct):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    generation: int = 0
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ownerReferences: list[OwnerReference] = field(default_factory=list)


class MetaWithAnnotations(Meta):
    annotations: dict[str, str] = field(default_factory=dict)


# ---- shapes several kinds share ----


class Condition(Struct, gc=False):
    """A NodeCondition or a PodCondition: the API's two types share the fields read here."""

    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None


class ObjectReference(Struct, gc=False):
    """core/v1 ObjectReference: an EndpointSlice endpoint's targetRef; an Event's
    involvedObject adds a field (event_records)."""

    kind: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""


# ---- node affinity / tolerations / taints (shared by DaemonSet templates and pods) ----


class Requirement(Struct, gc=False):
    key: str = ""
    operator: str = ""
    values: list[str] = field(default_factory=list)


class NodeSelectorTerm(Struct, gc=False):
    matchExpressions: list[Requirement] = field(default_factory=list)
    matchFields: list[Requirement] = field(default_factory=list)


class NodeSelector(Struct, gc=False):
    nodeSelectorTerms: list[NodeSelectorTerm] = field(default_factory=list)


class NodeAffinity(Struct, gc=False):
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = None


class Affinity(Struct, gc=False):
    nodeAffinity: NodeAffinity | None = None


class Toleration(Struct, gc=False):
    key: str = ""
    operator: str = ""
    value: str = ""
    effect: str = ""


class Taint(Struct, gc=False):
    key: str = ""
    value: str = ""
    effect: str = ""


# ---- Node ----


class NodeInfo(Struct, gc=False):
    kubeletVersion: str = ""
    architecture: str = ""
    operatingSystem: str = ""


class NodeSpec(Struct, gc=False):
    unschedulable: bool = False
    taints: list[Taint] = field(default_factory=list)


class NodeAddress(Struct, gc=False):
    type: str = ""
    address: str = ""


class NodeStatus(Struct, gc=False):
    conditions: list[Condition] = field(default_factory=list)
    nodeInfo: NodeInfo | None = None
    addresses: list[NodeAddress] = field(default_factory=list)
    allocatable: dict[str, str] = field(default_factory=dict)


class WireNode(Struct):
    metadata: Meta = field(default_factory=Meta)
    spec: NodeSpec = field(default_factory=NodeSpec)
    status: NodeStatus = field(default_factory=NodeStatus)


# ---- Pod ----


class ContainerPort(Struct, gc=False):
    name: str = ""
    containerPort: int = 0
    hostPort: int = 0
    protocol: str = ""  # "" means TCP (the API default)


class Resources(Struct, gc=False):
    requests: dict[str, str] = field(default_factory=dict)


class Container(Struct, gc=False):
    name: str = ""
    image: str = ""
    restartPolicy: str | None = None  # only on init containers: "Always" marks a sidecar
    ports: list[ContainerPort] = field(default_factory=list)
    resources: Resources | None = None


class PodSpec(Struct, gc=False):
    """A pod's spec as the records read it. A pod's own nodeSelector and tolerations are
    never read (a cell is judged by its DaemonSet's template: TemplateSpec), and decoding
    a daemon pod's nine tolerations was a quarter of its decode (bench/RESULTS.md)."""

    nodeName: str = ""
    hostNetwork: bool = False
    affinity: Affinity | None = None
    containers: list[Container] = field(default_factory=list)
    initContainers: list[Container] = field(default_factory=list)
    overhead: dict[str, str] = field(default_factory=dict)
    priority: int | None = None
    priorityClassName: str = ""
    preemptionPolicy: str = ""


class StateWaiting(Struct, gc=False):
    reason: str = ""
    message: str = ""


class StateRunning(Struct, gc=False):
    startedAt: str | None = None


class StateTerminated(Struct, gc=False):
    exitCode: int = 0
    signal: int = 0
    reason: str = ""
    message: str = ""
    finishedAt: str | None = None


class ContainerState(Struct, gc=False):
    waiting: StateWaiting | None = None
    running: StateRunning | None = None
    terminated: StateTerminated | None = None


class ContainerStatus(Struct, gc=False):
    name: str = ""
    ready: bool = False
    restartCount: int = 0
    image: str = ""
    state: ContainerState = field(default_factory=ContainerState)
    lastState: ContainerState = field(default_factory=ContainerState)


class PodStatus(Struct, gc=False):
    phase: str = ""
    podIP: str = ""
    reason: str = ""
    message: str = ""
    conditions: list[Condition] = field(default_factory=list)
    containerStatuses: list[ContainerStatus] = field(default_factory=list)
    initContainerStatuses: list[ContainerStatus] = field(default_factory=list)


class WirePod(Struct):
    # Annotations only for the kubelet's mirror-pod marker (records.MIRROR_ANNOTATION).
    metadata: MetaWithAnnotations = field(default_factory=MetaWithAnnotations)
    spec: PodSpec = field(default_factory=PodSpec)
    status: PodStatus = field(default_factory=PodStatus)


# ---- DaemonSet ----


class LabelSelector(Struct, gc=False):
    matchLabels: dict[str, str] = field(default_factory=dict)
    matchExpressions: list[Requirement] = field(default_factory=list)


class TemplateMeta(Struct, gc=False):
    labels: dict[str, str] = field(default_factory=dict)


class TemplateSpec(PodSpec):
    """A DaemonSet template's spec: what eligibility reads besides the pod's fields."""

    nodeSelector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Toleration] = field(default_factory=list)


class PodTemplate(Struct, gc=False):
    metadata: TemplateMeta = field(default_factory=TemplateMeta)
    spec: TemplateSpec = field(default_factory=TemplateSpec)


class RollingUpdate(Struct, gc=False):
    maxUnavailable: IntOrString | None = None
    maxSurge: IntOrString | None = None


class UpdateStrategy(Struct, gc=False):
    type: str = "RollingUpdate"
    rollingUpdate: RollingUpdate | None = None


class DaemonSetSpec(Struct, gc=False):
    selector: LabelSelector | None = None
    template: PodTemplate = field(default_factory=PodTemplate)
    updateStrategy: UpdateStrategy = field(default_factory=UpdateStrategy)
    minReadySeconds: int = 0


class DaemonSetStatus(Struct, gc=False):
    currentNumberScheduled: int = 0
    desiredNumberScheduled: int = 0
    numberAvailable: int = 0
    numberMisscheduled: int = 0
    numberReady: int = 0
    numberUnavailable: int = 0
    updatedNumberScheduled: int = 0
    observedGeneration: int = 0


class WireDaemonSet(Struct):
    metadata: MetaWithAnnotations = field(default_factory=MetaWithAnnotations)
    spec: DaemonSetSpec = field(default_factory=DaemonSetSpec)
    status: DaemonSetStatus = field(default_factory=DaemonSetStatus)


# ---- ControllerRevision ----


class WireControllerRevision(Struct):
    metadata: Meta = field(default_factory=Meta)
    revision: int = 0
    # Free-form JSON; the DaemonSet controller stores {"spec": {"template": …}} here. Kept
    # only for revisions a DaemonSet controls (records.revision_from_wire).
    data: Any = None


# ---- Service and EndpointSlice (access paths) ----


class ServicePort(Struct, gc=False):
    name: str = ""
    protocol: str = ""
    port: int = 0
    targetPort: IntOrString | None = None  # None: same as port


class ServiceSpec(Struct, gc=False):
    type: str = "ClusterIP"
    clusterIP: str = ""
    selector: dict[str, str] | None = None
    ports: list[ServicePort] = field(default_factory=list)
    internalTrafficPolicy: str | None = None
    publishNotReadyAddresses: bool = False


class WireService(Struct):
    metadata: Meta = field(default_factory=Meta)
    spec: ServiceSpec = field(default_factory=ServiceSpec)


class EndpointConditions(Struct, gc=False):
    # The API says nil ready/serving mean true and nil terminating means false.
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class Endpoint(Struct, gc=False):
    addresses: list[str] = field(default_factory=list)
    conditions: EndpointConditions = field(default_factory=EndpointConditions)
    hostname: str | None = None
    targetRef: ObjectReference | None = None


class EndpointPort(Struct, gc=False):
    name: str | None = None
    protocol: str | None = None
    port: int | None = None


class WireEndpointSlice(Struct):
    metadata: Meta = field(default_factory=Meta)
    addressType: str = ""
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointPort] | None = None


# ---- envelopes ----


class Kinded(Struct):
    """Just enough to tell what an object or list is before decoding it properly."""

    kind: str = ""
    apiVersion: str = ""


class ListMeta(Struct, gc=False):
    resourceVersion: str = ""
    # `continue` is a Python keyword, hence the rename.
    continue_: str = field(default="", name="continue")


class RawList(Struct):
    """A list whose items stay raw so each can be decoded by its own kind (a v1 List)."""

    kind: str = ""
    apiVersion: str = ""
    metadata: ListMeta = field(default_factory=ListMeta)
    items: list[msgspec.Raw] = field(default_factory=list)


class RawEvent(Struct):
    """One line of a watch stream; the object stays raw until its type is known."""

    type: str = ""
    object: msgspec.Raw = msgspec.Raw(b"{}")
