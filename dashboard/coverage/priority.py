"""PriorityClasses (scheduling.k8s.io/v1), read-only: what lets a daemon preempt.

A pod's priority is resolved once, by the API server's Priority admission when the pod is
created: `spec.priority` and `spec.preemptionPolicy` come from its `priorityClassName` (or
the class marked `globalDefault`, else 0 and PreemptLowerPriority). The classes themselves
are watched so that the advice for a Pending daemon can name one that *would* let it in.
"""

from __future__ import annotations

from msgspec import Struct, field

from .wire import Meta

NEVER = "Never"
PREEMPT_LOWER = "PreemptLowerPriority"
# Created by every kube-apiserver (pkg/apis/scheduling/v1/helpers.go); the node agent
# class is what a DaemonSet that must run on every node uses.
SYSTEM_NODE_CRITICAL = "system-node-critical"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
BUILT_IN_VALUES = {SYSTEM_NODE_CRITICAL: 2000001000, SYSTEM_CLUSTER_CRITICAL: 2000000000}


class WirePriorityClass(Struct):
    metadata: Meta = field(default_factory=Meta)
    value: int = 0
    globalDefault: bool = False
    preemptionPolicy: str = ""


class PriorityClass(Struct, frozen=True, gc=False):
    name: str
    uid: str
    resource_version: str
    value: int
    global_default: bool
    preemption_policy: str  # PreemptLowerPriority | Never

    @property
    def key(self) -> str:
        return self.name  # cluster-scoped

    @property
    def preempts(self) -> bool:
        return self.preemption_policy != NEVER


def priority_class_from_wire(w: WirePriorityClass) -> PriorityClass:
    meta = w.metadata
    return PriorityClass(
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resourceVersion,
        value=w.value,
        global_default=w.globalDefault,
        preemption_policy=w.preemptionPolicy or PREEMPT_LOWER,
    )


def built_in(name: str) -> PriorityClass:
    return PriorityClass(name, "", "", BUILT_IN_VALUES[name], False, PREEMPT_LOWER)
