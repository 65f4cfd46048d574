"""Nodes: pools with realistic labels/taints, and the node lifecycle controller's taints.

A node is kept as a small `NodeState` (what the kubelet reports plus what admins set) and
rendered to a fresh Node dict on every change. Taints that follow conditions are derived
exactly as the node lifecycle controller keeps them (docs/cells.md, "Node health"): Ready=False →
not-ready NoSchedule+NoExecute, Ready=Unknown → unreachable NoSchedule+NoExecute (and the
pressure conditions go Unknown), pressure → its NoSchedule taint, cordon → unschedulable.
Labels follow the EKS convention of the fixtures (`eks.amazonaws.com/nodegroup`), plus
`node-role.kubernetes.io/control-plane` on the (self-managed) control plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .objects import rfc3339

Obj = dict[str, Any]

REGION = "us-east-2"
ZONES = ("us-east-2a", "us-east-2b", "us-east-2c")
KUBELET_VERSION = "v1.31.4-eks-aeac579"


@dataclass(frozen=True)
class Pool:
    name: str
    instance_type: str
    arch: str = "amd64"
    os: str = "linux"
    cpu: int = 8
    memory_gi: int = 32
    role: str = ""  # node-role.kubernetes.io/<role>
    taints: tuple[Obj, ...] = ()
    extra_labels: tuple[tuple[str, str], ...] = ()
    extra_capacity: tuple[tuple[str, str], ...] = ()


CONTROL_PLANE = Pool(
    "control-plane",
    "m6i.xlarge",
    cpu=4,
    memory_gi=16,
    role="control-plane",
    taints=({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"},),
)
GENERAL = Pool("general", "m6i.2xlarge")
ARM = Pool("arm64", "m7g.2xlarge", arch="arm64")
GPU = Pool(
    "gpu",
    "g5.2xlarge",
    memory_gi=32,
    taints=({"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"},),
    extra_labels=(("nvidia.com/gpu.present", "true"), ("nvidia.com/gpu.product", "NVIDIA-A10G")),
    extra_capacity=(("nvidia.com/gpu", "1"),),
)
WINDOWS = Pool(
    "windows",
    "m6i.xlarge",
    os="windows",
    cpu=4,
    memory_gi=16,
    taints=({"effect": "NoSchedule", "key": "os", "value": "windows"},),
)
POOLS = {p.name: p for p in (CONTROL_PLANE, GENERAL, ARM, GPU, WINDOWS)}

PRESSURE = {
    "MemoryPressure": (
        "node.kubernetes.io/memory-pressure",
        ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ),
    "DiskPressure": (
        "node.kubernetes.io/disk-pressure",
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    ),
    "PIDPressure": (
        "node.kubernetes.io/pid-pressure",
        ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
    ),
}
NETWORK_UNAVAILABLE = "NetworkUnavailable"
NOT_READY_MESSAGE = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)


@dataclass
class NodeState:
    name: str
    pool: Pool
    index: int  # allocation counter: derives the fake IPs and the pod CIDR
    zone: str
    created: float
    ready: str = "False"  # "True" | "False" | "Unknown"
    ready_reason: tuple[str, str] = ("KubeletNotReady", NOT_READY_MESSAGE)
    joining: bool = True  # registered, not yet Ready for the first time
    unschedulable: bool = False
    pressures: dict[str, bool] = field(default_factory=dict)
    network_unavailable: bool = False
    user_taints: list[Obj] = field(default_factory=list)
    # condition type -> lastTransitionTime; taint (key, effect) -> timeAdded
    transitions: dict[str, float] = field(default_factory=dict)
    taint_added: dict[tuple[str, str], float] = field(default_factory=dict)
    heartbeat: float = 0.0
    pod_counter: int = 0

    @property
    def ip(self) -> str:
        # 127/8 on purpose: these are strings in JSON, never addresses anything contacts.
        return f"127.0.{self.index // 250}.{self.index % 250 + 1}"

    def next_pod_ip(self, host_network: bool) -> str:
        if host_network:
            return self.ip
        self.pod_counter += 1
        return f"127.{64 + self.index // 256}.{self.index % 256}.{self.pod_counter % 250 + 2}"


def node_name(index: int) -> str:
    return f"ip-127-0-{index // 250}-{index % 250 + 1}.{REGION}.compute.internal"


def set_condition(state: NodeState, kind: str, old: str, new: str, now: float) -> None:
    if old != new:
        state.transitions[kind] = now


def taints(state: NodeState, now: float) -> list[Obj]:
    """Pool + admin taints, then the ones the node lifecycle controller keeps in sync."""
    out = [*state.pool.taints, *state.user_taints]
    derived: list[tuple[str, str]] = []
    if state.ready == "False":
        derived += [("node.kubernetes.io/not-ready", "NoSchedule")]
        # A joining node only has the NoSchedule taint the kubelet registers with; the
        # NoExecute one comes from the lifecycle controller for nodes that *went* NotReady.
        if not state.joining:
            derived += [("node.kubernetes.io/not-ready", "NoExecute")]
    elif state.ready == "Unknown":
        derived += [
            ("node.kubernetes.io/unreachable", "NoSchedule"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
        ]
    for kind, (key, _, _) in PRESSURE.items():
        if state.pressures.get(kind) and state.ready != "Unknown":
            derived.append((key, "NoSchedule"))
    if state.network_unavailable:
        derived.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    if state.unschedulable:
        derived.append(("node.kubernetes.io/unschedulable", "NoSchedule"))
    live = set(derived)
    for k in [k for k in state.taint_added if k not in live]:
        del state.taint_added[k]
    for key, effect in derived:
        added = state.taint_added.setdefault((key, effect), now)
        t: Obj = {"effect": effect, "key": key}
        if effect == "NoExecute":
            t["timeAdded"] = rfc3339(added)
        out.append(t)
    return out


def _conditions(state: NodeState) -> list[Obj]:
    hb = rfc3339(state.heartbeat)
    created = state.created
    out = []
    unknown = state.ready == "Unknown"
    for kind, (_, ok, bad) in PRESSURE.items():
        since = rfc3339(state.transitions.get(kind, created))
        if unknown:
            status, (reason, message) = (
                "Unknown",
                ("NodeStatusUnknown", "Kubelet stopped posting node status."),
            )
        elif state.pressures.get(kind):
            status, (reason, message) = "True", bad
        else:
            status, (reason, message) = "False", ok
        out.append({"lastHeartbeatTime": hb, "lastTransitionTime": since, "message": message,
                    "reason": reason, "status": status, "type": kind})  # fmt: skip
    reason, message = state.ready_reason
    out.append(
        {
            "lastHeartbeatTime": hb,
            "lastTransitionTime": rfc3339(state.transitions.get("Ready", created)),
            "message": message,
            "reason": reason,
            "status": state.ready,
            "type": "Ready",
        }
    )
    # Set once by the CNI (no heartbeat), as in the OpenShift fixture.
    net = {
        "lastHeartbeatTime": None,
        "lastTransitionTime": rfc3339(state.transitions.get(NETWORK_UNAVAILABLE, created + 5)),
        "status": "True" if state.network_unavailable else "False",
        "type": NETWORK_UNAVAILABLE,
    }
    if state.network_unavailable:
        net |= {"reason": "NoRouteCreated", "message": "Node created without a route"}
    else:
        net |= {"reason": "CiliumIsUp", "message": "Cilium is running on this node"}
    return [net, *out]


_capacity_cache: dict[str, tuple[Obj, Obj]] = {}


def _capacity(pool: Pool) -> tuple[Obj, Obj]:
    hit = _capacity_cache.get(pool.name)
    if hit is None:
        mem_ki = pool.memory_gi * 1024 * 1024
        extra = dict(pool.extra_capacity)
        capacity = {"cpu": str(pool.cpu), "ephemeral-storage": "104845292Ki",
                    "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": f"{mem_ki - 420_000}Ki",
                    "pods": "110", **extra}  # fmt: skip
        allocatable = {"cpu": f"{pool.cpu * 1000 - 90 - pool.cpu * 10}m",
                       "ephemeral-storage": "95551679124", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                       "memory": f"{mem_ki - 420_000 - 1_024_000}Ki", "pods": "110", **extra}  # fmt: skip
        hit = _capacity_cache[pool.name] = (capacity, allocatable)
    return hit


def render(state: NodeState, now: float) -> Obj:
    """A fresh Node dict for the store (never mutate a stored one)."""
    pool = state.pool
    name = state.name
    labels = {
        "beta.kubernetes.io/arch": pool.arch,
        "beta.kubernetes.io/instance-type": pool.instance_type,
        "beta.kubernetes.io/os": pool.os,
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": pool.name,
        "failure-domain.beta.kubernetes.io/region": REGION,
        "failure-domain.beta.kubernetes.io/zone": state.zone,
        "kubernetes.io/arch": pool.arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": pool.os,
        "node.kubernetes.io/instance-type": pool.instance_type,
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": state.zone,
        **dict(pool.extra_labels),
    }
    if pool.role:
        labels[f"node-role.kubernetes.io/{pool.role}"] = ""
    spec: Obj = {
        "podCIDR": f"127.{64 + state.index // 256}.{state.index % 256}.0/24",
        "podCIDRs": [f"127.{64 + state.index // 256}.{state.index % 256}.0/24"],
        "providerID": f"aws:///{state.zone}/i-{state.index:017x}",
    }
    node_taints = taints(state, now)
    if node_taints:
        spec["taints"] = node_taints
    if state.unschedulable:
        spec["unschedulable"] = True
    capacity, allocatable = _capacity(pool)
    windows = pool.os == "windows"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": state.ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "creationTimestamp": rfc3339(state.created),
            "labels": labels,
            "name": name,
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"address": state.ip, "type": "InternalIP"},
                {"address": name, "type": "InternalDNS"},
                {"address": name, "type": "Hostname"},
            ],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": _conditions(state),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": pool.arch,
                "bootID": f"{state.index:08x}-0000-4000-8000-{int(state.created):012x}",
                "containerRuntimeVersion": "containerd://1.7.23"
                if not windows
                else "containerd://1.7.20",
                "kernelVersion": "10.0.20348.2849"
                if windows
                else (
                    "6.1.115-126.197.amzn2023.aarch64"
                    if pool.arch == "arm64"
                    else "6.1.115-126.197.amzn2023.x86_64"
                ),
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": f"ec2{state.index:029x}",
                "operatingSystem": pool.os,
                "osImage": "Windows Server 2022 Datacenter"
                if windows
                else "Amazon Linux 2023.6.20241121",
                "systemUUID": f"ec2{state.index:05x}-0000-0000-0000-{int(state.created):012x}",
            },
        },
    }
