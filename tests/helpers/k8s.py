"""Builders for realistic Kubernetes JSON objects (dicts), shaped like the captured fixtures.

The shapes follow `tests/fixtures/`: a Node like `node-eks-ready-worker.json`, a
DaemonSet like `daemonset-efa-device-plugin-eks.json`, a daemon Pod like
`pod-daemonset-owned-running-eks.json` (controller ownerReference, the matchFields
`metadata.name In [node]` affinity term that replaces the template's, the auto-added
tolerations, labels `controller-revision-hash` / `pod-template-generation`), and an
`apps/v1` ControllerRevision. Every builder returns a fresh dict that callers may edit.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboard.coverage.matrix import ADDED, Matrix
from dashboard.coverage.records import Record, decode

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# A fixed "now" for every test that depends on time; objects are created before it.
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2024-05-01T10:00:00Z"  # two hours before NOW


def ts(delta_seconds: float = 0, base: datetime = NOW) -> str:
    """RFC 3339 timestamp `delta_seconds` after `base` (negative: before)."""
    return (base + timedelta(seconds=delta_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def fixed_clock(when: datetime = NOW):
    return lambda: when


class Clock:
    """A clock tests can move: Matrix(clock=clock)."""

    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def fixture_with_kind(name: str, kind: str, api_version: str = "v1") -> dict[str, Any]:
    """A fixture object with kind/apiVersion filled in (the OpenShift captures lack them)."""
    obj = load_fixture(name)
    obj.setdefault("kind", kind)
    obj.setdefault("apiVersion", api_version)
    return obj


def _uid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


# --------------------------------------------------------------------------- building blocks

AUTO_TOLERATIONS = [
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists"},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/disk-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/memory-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/pid-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
]
NETWORK_UNAVAILABLE_TOLERATION = {
    "effect": "NoSchedule",
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
}


def taint(key: str, effect: str = "NoSchedule", value: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"key": key, "effect": effect}
    if value is not None:
        t["value"] = value
    if effect == "NoExecute":
        t["timeAdded"] = ts(-600)
    return t


def toleration(
    key: str = "", operator: str | None = "Exists", value: str | None = None, effect: str = ""
) -> dict[str, Any]:
    t: dict[str, Any] = {}
    if key:
        t["key"] = key
    if operator is not None:
        t["operator"] = operator
    if value is not None:
        t["value"] = value
    if effect:
        t["effect"] = effect
    return t


def req(key: str, operator: str, *values: str) -> dict[str, Any]:
    r: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        r["values"] = list(values)
    return r


def term(*exprs: dict[str, Any], fields: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    t: dict[str, Any] = {}
    if exprs:
        t["matchExpressions"] = list(exprs)
    if fields:
        t["matchFields"] = list(fields)
    return t


# --------------------------------------------------------------------------- Node


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    taints: Iterable[dict[str, Any]] = (),
    ready: str = "True",
    unschedulable: bool = False,
    pressures: Iterable[str] = (),
    network_unavailable: bool | None = None,
    created: str = CREATED,
    deleting: bool = False,
    resource_version: str = "1000",
    arch: str = "amd64",
    internal_ip: str | None = None,
) -> dict[str, Any]:
    """A Node as the API serves it. The condition taints are *not* added implicitly:
    pass them (see `notready_taints`) so each test states what the node carries."""
    all_labels = {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    all_labels.update(labels or {})
    pressures = set(pressures)
    ready_text = {
        "True": ("KubeletReady", "kubelet is posting ready status"),
        "False": ("KubeletNotReady", "container runtime network not ready: NetworkReady=false"),
        "Unknown": ("NodeStatusUnknown", "Kubelet stopped posting node status."),
    }[ready]
    conditions = []
    if network_unavailable is not None:
        conditions.append(
            {
                "type": "NetworkUnavailable",
                "status": "True" if network_unavailable else "False",
                "reason": "NoRouteCreated" if network_unavailable else "RouteCreated",
                "message": "routes not created" if network_unavailable else "routes created",
                "lastTransitionTime": created,
            }
        )
    for cond in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        status = "Unknown" if ready == "Unknown" else ("True" if cond in pressures else "False")
        conditions.append(
            {
                "type": cond,
                "status": status,
                "reason": f"KubeletHas{cond}" if status == "True" else f"KubeletHasNo{cond}",
                "message": "",
                "lastHeartbeatTime": ts(-30),
                "lastTransitionTime": created,
            }
        )
    conditions.append(
        {
            "type": "Ready",
            "status": ready,
            "reason": ready_text[0],
            "message": ready_text[1],
            "lastHeartbeatTime": ts(-30),
            "lastTransitionTime": created,
        }
    )
    spec: dict[str, Any] = {"providerID": f"aws:///us-east-1a/i-{_uid(name)[:17]}"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = list(taints)
    meta: dict[str, Any] = {
        "name": name,
        "uid": _uid("node/" + name),
        "resourceVersion": resource_version,
        "creationTimestamp": created,
        "labels": all_labels,
        "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
    }
    if deleting:
        meta["deletionTimestamp"] = ts(-5)
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": spec,
        "status": {
            "conditions": conditions,
            "nodeInfo": {
                "architecture": arch,
                "kubeletVersion": "v1.29.3",
                "operatingSystem": "linux",
                "containerRuntimeVersion": "containerd://1.7.11",
            },
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3920m", "memory": "15Gi", "pods": "110"},
            **(
                {
                    "addresses": [
                        {"type": "InternalIP", "address": internal_ip},
                        {"type": "Hostname", "address": name},
                    ]
                }
                if internal_ip
                else {}
            ),
        },
    }


def notready_taints(key: str = "node.kubernetes.io/not-ready") -> list[dict[str, Any]]:
    """What the node lifecycle controller puts on a NotReady (or unreachable) node."""
    return [taint(key, "NoSchedule"), taint(key, "NoExecute")]


# --------------------------------------------------------------------------- DaemonSet


def daemonset(
    name: str,
    namespace: str = "kube-system",
    *,
    uid: str | None = None,
    match_labels: dict[str, str] | None = None,
    selector: dict[str, Any] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity_terms: Sequence[dict[str, Any]] | None = None,
    tolerations: Sequence[dict[str, Any]] = (),
    host_network: bool = False,
    node_name: str | None = None,
    strategy: str = "RollingUpdate",
    max_unavailable: int | str = 1,
    max_surge: int | str = 0,
    min_ready_seconds: int = 0,
    generation: int = 1,
    observed_generation: int | None = None,
    template_generation: str | None = "1",
    status: dict[str, int] | None = None,
    deleting: bool = False,
    image: str = "registry.k8s.io/example/agent:v1.0.0",
    resource_version: str = "2000",
    ports: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """`ports`: the container's `ports` entries, e.g. {"name": "metrics", "containerPort": 9100}."""
    labels = match_labels if match_labels is not None else {"app.kubernetes.io/name": name}
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        ],
        "dnsPolicy": "ClusterFirst",
        "priorityClassName": "system-node-critical",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccountName": name,
        "terminationGracePeriodSeconds": 30,
    }
    if ports:
        pod_spec["containers"][0]["ports"] = [{"protocol": "TCP", **p} for p in ports]
    if host_network:
        pod_spec["hostNetwork"] = True
    if node_name:
        pod_spec["nodeName"] = node_name
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    if affinity_terms is not None:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": list(affinity_terms)
                }
            }
        }
    if tolerations:
        pod_spec["tolerations"] = list(tolerations)
    strategy_obj: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        strategy_obj["rollingUpdate"] = {"maxUnavailable": max_unavailable, "maxSurge": max_surge}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid or _uid(f"ds/{namespace}/{name}"),
        "resourceVersion": resource_version,
        "generation": generation,
        "creationTimestamp": "2024-04-01T00:00:00Z",
        "labels": {"app.kubernetes.io/name": name},
        "annotations": {},
    }
    if template_generation is not None:
        meta["annotations"]["deprecated.daemonset.template.generation"] = template_generation
    if deleting:
        meta["deletionTimestamp"] = ts(-5)
        meta["finalizers"] = ["foregroundDeletion"]
    st = {
        "currentNumberScheduled": 0,
        "desiredNumberScheduled": 0,
        "numberAvailable": 0,
        "numberMisscheduled": 0,
        "numberReady": 0,
        "numberUnavailable": 0,
        "updatedNumberScheduled": 0,
        "observedGeneration": generation if observed_generation is None else observed_generation,
    }
    st.update(status or {})
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 10,
        "selector": selector if selector is not None else {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": dict(labels)},
            "spec": pod_spec,
        },
        "updateStrategy": strategy_obj,
    }
    if min_ready_seconds:
        spec["minReadySeconds"] = min_ready_seconds
    return {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": meta,
        "spec": spec,
        "status": st,
    }


def ds_key(ds: dict[str, Any]) -> str:
    return f"{ds['metadata']['namespace']}/{ds['metadata']['name']}"


def owner_ref(ds: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "blockOwnerDeletion": True,
        "controller": True,
        "kind": "DaemonSet",
        "name": ds["metadata"]["name"],
        "uid": ds["metadata"]["uid"],
    }


def give_owner(pod: dict[str, Any], ds: dict[str, Any]) -> dict[str, Any]:
    """Make `pod` a daemon pod of `ds` (replacing its controller ownerReference)."""
    pod = copy.deepcopy(pod)
    pod["metadata"]["ownerReferences"] = [owner_ref(ds)]
    return pod


# --------------------------------------------------------------------------- Pod


def running(started: str = CREATED) -> dict[str, Any]:
    return {"running": {"startedAt": started}}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    w: dict[str, Any] = {"reason": reason}
    if message:
        w["message"] = message
    return {"waiting": w}


def terminated(
    reason: str = "Error", exit_code: int = 1, finished: str | None = None, signal: int = 0
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": ts(-400),
        "finishedAt": finished or ts(-300),
        "containerID": "containerd://" + "0" * 64,
    }
    if signal:
        t["signal"] = signal
    return {"terminated": t}


def container_status(
    name: str,
    state: dict[str, Any],
    *,
    ready: bool | None = None,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
    image: str = "registry.k8s.io/example/agent:v1.0.0",
) -> dict[str, Any]:
    is_running = "running" in state
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": is_running if ready is None else ready,
        "started": is_running,
        "restartCount": restarts,
        "state": state,
        "lastState": last or {},
    }


def _cond(kind: str, status: str, when: str, reason: str = "", message: str = "") -> dict:
    c: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": when,
    }
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def daemon_pod(
    ds: dict[str, Any],
    node_name: str,
    *,
    name: str | None = None,
    suffix: str | None = None,
    bound: bool = True,
    phase: str = "Running",
    ready: bool | None = None,
    ready_since: str | None = None,
    container_state: dict[str, Any] | None = None,
    container_ready: bool | None = None,
    restarts: int = 0,
    last_state: dict[str, Any] | None = None,
    init_statuses: Sequence[dict[str, Any]] | None = None,
    init_containers: Sequence[dict[str, Any]] | None = None,
    initialized: bool | None = None,
    scheduled: bool | None = None,
    unschedulable_message: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    revision_hash: str | None = "rev1hash",
    template_generation: str | None = "1",
    deleting: bool = False,
    created: str = CREATED,
    owner: dict[str, Any] | None = None,
    resource_version: str = "3000",
    pod_ip: str | None = None,
) -> dict[str, Any]:
    """A pod the DaemonSet controller created for `node_name`.

    Defaults: bound, Running, one container running and Ready since `created`. Pass
    `container_state` (see `waiting`/`terminated`/`running`) for other states; `ready`
    defaults to "the container is running and ready".
    """
    ds_name = ds["metadata"]["name"]
    namespace = ds["metadata"]["namespace"]
    suffix = suffix or _uid(f"{ds_name}/{node_name}")[:5]
    name = name or f"{ds_name}-{suffix}"
    tmpl = copy.deepcopy(ds["spec"]["template"])
    spec = tmpl["spec"]
    # The controller replaces the template's required terms with the matchFields term.
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [node_name]}
                        ]
                    }
                ]
            }
        }
    }
    tols = list(spec.get("tolerations", [])) + copy.deepcopy(AUTO_TOLERATIONS)
    if spec.get("hostNetwork"):
        tols.append(dict(NETWORK_UNAVAILABLE_TOLERATION))
    spec["tolerations"] = tols
    if bound:
        spec["nodeName"] = node_name
    else:
        spec.pop("nodeName", None)
    if init_containers is not None:
        spec["initContainers"] = list(init_containers)
    labels = dict(tmpl["metadata"].get("labels") or {})
    if revision_hash is not None:
        labels["controller-revision-hash"] = revision_hash
    if template_generation is not None:
        labels["pod-template-generation"] = template_generation

    cname = spec["containers"][0]["name"]
    state = container_state if container_state is not None else running(created)
    statuses = []
    if bound and phase != "Pending" or container_state is not None:
        statuses = [
            container_status(
                cname, state, ready=container_ready, restarts=restarts, last=last_state
            )
        ]
    if ready is None:
        ready = bool(statuses) and statuses[0]["ready"] and phase == "Running"
    conditions = []
    if bound:
        if initialized is None:
            initialized = not init_statuses or all(
                "terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0
                for s in init_statuses
            )
        conditions.append(
            _cond(
                "Initialized",
                "True" if initialized else "False",
                created,
                "" if initialized else "ContainersNotInitialized",
            )
        )
        since = ready_since or created
        conditions.append(
            _cond(
                "Ready", "True" if ready else "False", since, "" if ready else "ContainersNotReady"
            )
        )
        conditions.append(
            _cond(
                "ContainersReady",
                "True" if ready else "False",
                since,
                "" if ready else "ContainersNotReady",
            )
        )
    if scheduled is None:
        scheduled = bound
    if scheduled:
        conditions.append(_cond("PodScheduled", "True", created))
    elif unschedulable_message is not None:
        conditions.append(
            _cond("PodScheduled", "False", created, "Unschedulable", unschedulable_message)
        )
    status: dict[str, Any] = {"phase": phase, "conditions": conditions, "qosClass": "BestEffort"}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if statuses:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = list(init_statuses)
    if bound:
        status["hostIP"] = "10.0.0.10"
        status["startTime"] = created
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
    meta: dict[str, Any] = {
        "name": name,
        "generateName": f"{ds_name}-",
        "namespace": namespace,
        "uid": _uid(f"pod/{namespace}/{name}"),
        "resourceVersion": resource_version,
        "creationTimestamp": created,
        "labels": labels,
        "ownerReferences": [owner if owner is not None else owner_ref(ds)],
    }
    if deleting:
        meta["deletionTimestamp"] = ts(30)
        meta["deletionGracePeriodSeconds"] = 30
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}


def plain_pod(name: str, node_name: str, namespace: str = "default") -> dict[str, Any]:
    """A ReplicaSet-owned pod: not a daemon pod."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": _uid(f"pod/{namespace}/{name}"),
            "resourceVersion": "4000",
            "creationTimestamp": CREATED,
            "labels": {"app": name, "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{name}-5d8f7c9b6",
                    "uid": _uid(f"rs/{name}"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": name, "image": "nginx:1.25"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [_cond("Ready", "True", CREATED)],
            "containerStatuses": [container_status(name, running(), image="nginx:1.25")],
        },
    }


def mirror_pod(
    component: str,
    node_name: str,
    *,
    namespace: str = "kube-system",
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    host_ports: Sequence[int] = (),
    host_network: bool = True,
    node_uid: str | None = None,
) -> dict[str, Any]:
    """The API's copy of a kubelet's static pod, as the kubelet creates it: named
    `<manifest name>-<node name>`, the config.mirror annotation, a controller ownerReference
    to its Node (pkg/kubelet/pod/mirror_client.go)."""
    name = f"{component}-{node_name.lower()}"
    config_hash = _uid(f"static/{namespace}/{name}").replace("-", "")
    ports = [{"containerPort": p, "hostPort": p, "protocol": "TCP"} for p in host_ports]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": _uid(f"pod/{namespace}/{name}"),
            "resourceVersion": "4100",
            "creationTimestamp": CREATED,
            "labels": {"component": component, "tier": "control-plane"},
            "annotations": {
                "kubernetes.io/config.hash": config_hash,
                "kubernetes.io/config.mirror": config_hash,
                "kubernetes.io/config.seen": CREATED,
                "kubernetes.io/config.source": "file",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node_name,
                    "uid": node_uid or _uid("node/" + node_name),
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node_name,
            "hostNetwork": host_network,
            "containers": [
                {"name": component, "image": f"registry.k8s.io/{component}:v1.29.3", "ports": ports}
            ],
            "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
        },
        "status": {
            "phase": phase,
            "conditions": [_cond("Ready", "True" if ready else "False", CREATED)],
            "containerStatuses": [
                container_status(component, running(), ready=ready, restarts=restarts)
            ],
        },
    }


# --------------------------------------------------------------------------- Service, EndpointSlice


def service(
    name: str,
    namespace: str = "kube-system",
    *,
    selector: dict[str, str] | None = None,
    ports: Sequence[dict[str, Any]] = ({"name": "metrics", "port": 9100, "targetPort": 9100},),
    headless: bool = False,
    type_: str = "ClusterIP",
    internal_traffic_policy: str = "Cluster",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type_,
        "clusterIP": "None" if headless else "10.96.0." + str(int(_uid(name)[:2], 16) % 250 + 2),
        "ports": [{"protocol": "TCP", **p} for p in ports],
        "internalTrafficPolicy": internal_traffic_policy,
        "sessionAffinity": "None",
    }
    if selector is not None:
        spec["selector"] = dict(selector)
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": _uid(f"svc/{namespace}/{name}"),
            "resourceVersion": "6000",
            "creationTimestamp": CREATED,
            "labels": dict(labels or {}),
        },
        "spec": spec,
    }


def endpoint(
    pod: dict[str, Any],
    address: str,
    *,
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = None,
) -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    if ready is not None:
        conditions["ready"] = ready
    conditions["serving"] = ready if serving is None else serving
    if terminating is not None:
        conditions["terminating"] = terminating
    meta = pod["metadata"]
    return {
        "addresses": [address],
        "conditions": conditions,
        "nodeName": pod["spec"].get("nodeName", ""),
        "targetRef": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }


def endpoint_slice(
    svc: dict[str, Any],
    endpoints: Sequence[dict[str, Any]],
    *,
    suffix: str = "abcde",
    ports: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An EndpointSlice as the EndpointSlice controller writes it for `svc`."""
    name = svc["metadata"]["name"]
    namespace = svc["metadata"]["namespace"]
    if ports is None:
        ports = [
            {"name": p.get("name", ""), "port": p["targetPort"], "protocol": "TCP"}
            for p in svc["spec"]["ports"]
            if isinstance(p.get("targetPort"), int)
        ]
    labels = {
        "kubernetes.io/service-name": name,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    if svc["spec"].get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": f"{name}-{suffix}",
            "namespace": namespace,
            "uid": _uid(f"es/{namespace}/{name}/{suffix}"),
            "resourceVersion": "7000",
            "generateName": f"{name}-",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": svc["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": list(endpoints),
        "ports": list(ports),
    }


# --------------------------------------------------------------------------- ControllerRevision


def controller_revision(
    ds: dict[str, Any], revision: int, hash_: str, *, owner_uid: str | None = None
) -> dict[str, Any]:
    name = ds["metadata"]["name"]
    ref = owner_ref(ds)
    if owner_uid is not None:
        ref["uid"] = owner_uid
    return {
        "kind": "ControllerRevision",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": f"{name}-{hash_}",
            "namespace": ds["metadata"]["namespace"],
            "uid": _uid(f"cr/{name}/{hash_}/{ref['uid']}"),
            "resourceVersion": str(5000 + revision),
            "creationTimestamp": CREATED,
            "labels": {
                **ds["spec"]["template"]["metadata"]["labels"],
                "controller-revision-hash": hash_,
            },
            "ownerReferences": [ref],
        },
        "data": {"spec": {"template": {"$patch": "replace", **ds["spec"]["template"]}}},
        "revision": revision,
    }


# --------------------------------------------------------------------------- lists and matrices


def v1_list(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What `kubectl get nodes,daemonsets,pods,controllerrevisions -A -o json` prints."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": list(items),
        "metadata": {"resourceVersion": ""},
    }


def to_record(obj: dict[str, Any]) -> Record:
    return decode(obj["kind"], obj)


def build(objs: Iterable[dict[str, Any]], clock=None) -> Matrix:
    """A matrix built by ADDED events of every object, with a fixed clock by default."""
    m = Matrix(clock=clock or fixed_clock())
    m.apply_many((ADDED, to_record(o)) for o in objs)
    return m
