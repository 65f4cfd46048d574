"""Static pods of the simulated control plane, as the API mirrors them.

On a kubeadm-style control plane the kubelet runs etcd, kube-apiserver,
kube-controller-manager and kube-scheduler from manifest files and writes a *mirror pod*
for each: named `<manifest>-<node>`, annotated `kubernetes.io/config.mirror`, owned by its
Node (docs/access.md, "Static pods"). The demo leaves one scheduler out, so the grid shows
a static pod missing on one control-plane node while the other ones run it, and gives one
etcd a few restarts.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .objects import rfc3339

if TYPE_CHECKING:
    from .cluster import Simulator

Obj = dict[str, Any]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
CONTROL_PLANE = (
    ("etcd", "registry.k8s.io/etcd:3.5.16-0", 2381),
    ("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.31.4", 6443),
    ("kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.31.4", 10257),
    ("kube-scheduler", "registry.k8s.io/kube-scheduler:v1.31.4", 10259),
)


def mirror_pod(
    component: str, image: str, port: int, node: str, node_uid: str, host_ip: str,
    started: float, restarts: int = 0,
) -> Obj:  # fmt: skip
    digest = hashlib.sha256(f"{component}/{node}".encode()).hexdigest()[:32]
    since = rfc3339(started)
    status: Obj = {
        "phase": "Running",
        "hostIP": host_ip,
        "podIP": host_ip,  # hostNetwork
        "startTime": since,
        "qosClass": "Burstable",
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": since}
            for t in (
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            )
        ],
        "containerStatuses": [
            {
                "name": component,
                "image": image,
                "imageID": f"{image.split(':')[0]}@sha256:{digest}{digest}",
                "containerID": f"containerd://{digest}{digest}",
                "ready": True,
                "started": True,
                "restartCount": restarts,
                "state": {"running": {"startedAt": since}},
                "lastState": (
                    {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "OOMKilled",
                            "startedAt": since,
                            "finishedAt": since,
                        }
                    }
                    if restarts
                    else {}
                ),
            }
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{component}-{node.lower()}",
            "namespace": "kube-system",
            "labels": {"component": component, "tier": "control-plane"},
            "annotations": {
                MIRROR_ANNOTATION: digest,
                "kubernetes.io/config.hash": digest,
                "kubernetes.io/config.source": "file",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node,
                    "uid": node_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "priority": 2000001000,
            "containers": [
                {
                    "name": component,
                    "image": image,
                    "ports": [
                        {
                            "containerPort": port,
                            "hostPort": port,
                            "name": "probe-port",
                            "protocol": "TCP",
                        }
                    ],
                }
            ],
            "tolerations": [{"effect": "NoExecute", "operator": "Exists"}],
        },
        "status": status,
    }


def add_control_plane(sim: Simulator) -> int:
    """Mirror pods on every control-plane node (one scheduler left out); how many."""
    control = sorted(n for n, s in sim.nodes.items() if s.pool.role == "control-plane")
    written = 0
    for i, node in enumerate(control):
        record = sim.node_records.get(node)
        node_uid = record.uid if record is not None else ""
        state = sim.nodes[node]
        for component, image, port in CONTROL_PLANE:
            if component == "kube-scheduler" and i == len(control) - 1 and len(control) > 1:
                continue  # the demo's one gap: "absent here while present on the other 2"
            restarts = 3 if component == "etcd" and i == 1 else 0
            sim.store.put(
                "pods",
                mirror_pod(
                    component, image, port, node, node_uid, state.ip, state.created + 60, restarts
                ),
            )
            written += 1
    return written
