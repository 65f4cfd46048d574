"""The e2e workload: ~20 kwok nodes in four pools, five DaemonSets that exercise nodeSelector,
required node affinity, tolerations and hostNetwork, and the admin-side helpers the tests
use to change the cluster (the dashboard itself only ever reads, with its ServiceAccount).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

from dashboard.collect.collector import ClusterCollector
from tests.helpers import collectors

NAMESPACE = "e2e"
KWOK_NODE_ANNOTATION = {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}

# pool -> (count, extra labels, taints)
POOLS: dict[str, tuple[int, dict[str, str], list[dict[str, str]]]] = {
    "general": (8, {"kubernetes.io/arch": "amd64"}, []),
    "gpu": (
        4,
        {"kubernetes.io/arch": "amd64", "accelerator": "nvidia"},
        [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    ),
    "infra": (
        4,
        {"kubernetes.io/arch": "amd64", "node-role.kubernetes.io/infra": ""},
        [{"key": "dedicated", "value": "infra", "effect": "NoExecute"}],
    ),
    "edge": (4, {"kubernetes.io/arch": "arm64"}, []),
}


def node_names(pool: str) -> list[str]:
    return [f"{pool}-{i}" for i in range(1, POOLS[pool][0] + 1)]


ALL_NODES = [n for pool in POOLS for n in node_names(pool)]


def node_number(name: str) -> int:
    """1.. for the workload's nodes; nodes that join later get numbers from 200 on."""
    if name in ALL_NODES:
        return ALL_NODES.index(name) + 1
    return 200 + zlib.crc32(name.encode()) % 50


def node_ip(name: str) -> str:
    # TEST-NET-1 (RFC 5737): addresses that only ever appear inside API objects. They must
    # not be loopback: the EndpointSlice controller refuses those, and slices stay empty.
    return f"192.0.2.{node_number(name)}"


def node_pod_cidr(name: str) -> str:
    return f"10.244.{node_number(name)}.0/24"  # kwok takes pod IPs from the node's podCIDR


def node_manifest(name: str, pool: str) -> dict[str, Any]:
    _, extra, taints = POOLS[pool]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict(KWOK_NODE_ANNOTATION),
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                "pool": pool,
                "topology.kubernetes.io/zone": f"zone-{'ab'[int(name.rsplit('-', 1)[1]) % 2]}",
                **extra,
            },
        },
        "spec": {"taints": [dict(t) for t in taints], "podCIDR": node_pod_cidr(name)},
        # A node may be created with its status (kubelets register that way); kwok's
        # node-initialize stage keeps addresses it finds.
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node_ip(name)},
                {"type": "Hostname", "address": name},
            ]
        },
    }


def _container(name: str, image: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }


def daemonset_manifest(
    name: str,
    *,
    image: str,
    node_selector: dict[str, str] | None = None,
    affinity_terms: list[dict[str, Any]] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    host_network: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container(name, image)]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity_terms:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": affinity_terms
                }
            }
        }
    if tolerations:
        spec["tolerations"] = tolerations
    if host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def access_daemonset_manifest(name: str, host_port: int) -> dict[str, Any]:
    """A node agent reached two ways: a hostPort on the node's address, and a named port
    behind a headless Service (access_service_manifest)."""
    manifest = daemonset_manifest(
        name, image=f"registry.example/{name}:1", node_selector={"pool": "general"}
    )
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [
        {"name": "metrics", "containerPort": 9400, "hostPort": host_port, "protocol": "TCP"}
    ]
    return manifest


def access_service_manifest(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [{"name": "metrics", "port": 80, "targetPort": "metrics"}],
        },
    }


def mirror_pod_manifest(component: str, node: Any) -> dict[str, Any]:
    """A pod as a kubelet mirrors a static pod: the config.mirror annotation, named
    `<manifest>-<node>`, a controller ownerReference to its Node, bound to it. No
    ServiceAccount: admission refuses one on a mirror pod."""
    digest = f"{zlib.crc32(component.encode()):08x}" * 4
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{component}-{node.metadata.name}",
            "namespace": NAMESPACE,
            "labels": {"component": component, "tier": "control-plane"},
            "annotations": {
                "kubernetes.io/config.mirror": digest,
                "kubernetes.io/config.hash": digest,
                "kubernetes.io/config.source": "file",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node.metadata.name,
                    "uid": node.metadata.uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node.metadata.name,
            "automountServiceAccountToken": False,
            "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
            "containers": [_container(component, f"registry.example/{component}:1")],
        },
    }


DAEMONSETS: dict[str, dict[str, Any]] = {
    # Every node, whatever its taints; hostNetwork adds the network-unavailable toleration.
    "node-exporter": daemonset_manifest(
        "node-exporter",
        image="registry.example/node-exporter:1.8.0",
        tolerations=[{"operator": "Exists"}],
        host_network=True,
    ),
    # nodeSelector + a toleration for the GPU pool's NoSchedule taint.
    "gpu-plugin": daemonset_manifest(
        "gpu-plugin",
        image="registry.example/gpu-plugin:0.15",
        node_selector={"accelerator": "nvidia"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    ),
    # Required node affinity over two pools, no tolerations.
    "log-agent": daemonset_manifest(
        "log-agent",
        image="registry.example/log-agent:1.0",
        affinity_terms=[
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["general", "edge"]}]}
        ],
    ),
    # Affinity to the infra pool + an Equal toleration of its NoExecute taint.
    "infra-agent": daemonset_manifest(
        "infra-agent",
        image="registry.example/infra-agent:2.1",
        affinity_terms=[
            {"matchExpressions": [{"key": "node-role.kubernetes.io/infra", "operator": "Exists"}]}
        ],
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoExecute"}
        ],
    ),
    # NotIn affinity (no arm64), no tolerations: the tainted pools drop out by their taints.
    "amd64-only": daemonset_manifest(
        "amd64-only",
        image="registry.example/amd64-only:3",
        affinity_terms=[
            {
                "matchExpressions": [
                    {"key": "kubernetes.io/arch", "operator": "NotIn", "values": ["arm64"]}
                ]
            }
        ],
    ),
}

# Which pools each DaemonSet should cover at rest (worked out by hand from the rules of
# docs/cells.md (Targeting), not by the code under test).
EXPECTED_POOLS = {
    "node-exporter": {"general", "gpu", "infra", "edge"},
    "gpu-plugin": {"gpu"},
    "log-agent": {"general", "edge"},
    "infra-agent": {"infra"},
    "amd64-only": {"general"},
}
# Why a node is not targeted: a fragment of the reason the dashboard must show.
EXPECTED_EXCLUSION = {
    ("gpu-plugin", "general"): "nodeSelector accelerator=nvidia",
    ("gpu-plugin", "infra"): "nodeSelector accelerator=nvidia",
    ("gpu-plugin", "edge"): "nodeSelector accelerator=nvidia",
    ("log-agent", "gpu"): "required node affinity",
    ("log-agent", "infra"): "required node affinity",
    ("infra-agent", "general"): "required node affinity",
    ("infra-agent", "gpu"): "required node affinity",
    ("infra-agent", "edge"): "required node affinity",
    ("amd64-only", "gpu"): "nvidia.com/gpu=present:NoSchedule",
    ("amd64-only", "infra"): "dedicated=infra:NoExecute",
    ("amd64-only", "edge"): "required node affinity",
}


def ds_key(name: str) -> str:
    return f"{NAMESPACE}/{name}"


def pool_of(node: str) -> str:
    return node.rsplit("-", 1)[0]


# --------------------------------------------------------------------------- admin helpers


class Admin:
    """Writes to the cluster as the admin (tests only; the dashboard never writes)."""

    def __init__(self, api: ApiClient):
        self.core = CoreV1Api(api)
        self.apps = AppsV1Api(api)

    def create_node(self, name: str, pool: str) -> None:
        self.core.create_node(node_manifest(name, pool))

    def ensure_node(self, manifest: dict[str, Any]) -> None:
        """Create the node; one of that name already there (409) is left as it is."""
        try:
            self.core.create_node(manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def create_namespace(self, name: str) -> None:
        try:
            self.core.create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    def wait_default_service_account(self, namespace: str) -> None:
        """Until the ServiceAccount controller has made `default` in a new namespace, the
        API server refuses pods there (and so the DaemonSet controller's creates)."""
        wait_until(
            f"ServiceAccount {namespace}/default",
            lambda: any(
                sa.metadata.name == "default"
                for sa in self.core.list_namespaced_service_account(namespace).items
            ),
        )

    def create_daemonset(self, manifest: dict[str, Any]) -> None:
        self.apps.create_namespaced_daemon_set(NAMESPACE, manifest)

    def daemonset(self, name: str):
        return self.apps.read_namespaced_daemon_set(name, NAMESPACE)

    def pods_of(self, name: str) -> list:
        return self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items

    def pod_on(self, ds: str, node: str):
        pods = [p for p in self.pods_of(ds) if p.spec.node_name == node]
        return pods[0] if pods else None

    def touch_daemonset(self, name: str) -> None:
        """A metadata-only change: the DaemonSet controller re-syncs (and recomputes the
        status of) every DaemonSet it sees updated; the generation stays the same."""
        self.apps.patch_namespaced_daemon_set(
            name,
            NAMESPACE,
            {"metadata": {"annotations": {"e2e.daemonviz.dev/touched": f"{time.time():.6f}"}}},
        )

    def patch_node(self, name: str, body: dict[str, Any]) -> None:
        self.core.patch_node(name, body)

    def set_taints(self, name: str, taints: list[dict[str, str]]) -> None:
        # A JSON merge patch replaces the whole list, so the lifecycle controller's own
        # taints would be dropped too; the tests only change nodes that have none.
        self.core.patch_node(name, {"spec": {"taints": taints or None}})


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float = 90.0,
    interval: float = 0.25,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll `check` until it returns something truthy; fail with a description on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except AssertionError as exc:  # a check may assert to say why it is not there yet
            last_exc, result = exc, None
        if result:
            return result
        time.sleep(interval)
    detail = describe() if describe else (str(last_exc) if last_exc else "")
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")


def controller_at_rest(ds) -> bool:
    """The DaemonSet controller has caught up and every targeted node runs a ready,
    current pod (what `kubectl rollout status ds` waits for), nothing misscheduled."""
    s = ds.status
    return (
        (s.observed_generation or 0) >= ds.metadata.generation
        and s.desired_number_scheduled == (s.current_number_scheduled or 0)
        and s.desired_number_scheduled == (s.updated_number_scheduled or 0)
        and s.desired_number_scheduled == (s.number_ready or 0)
        and s.desired_number_scheduled == (s.number_available or 0)
    )


@contextmanager
def synced_collector(kubeconfig: Path, slug: str) -> Iterator[ClusterCollector]:
    """A collector following the control plane through `kubeconfig`, ticked until it has
    synced; its source stops when the block ends."""
    with collectors.running(collectors.kubeconfig_cluster(kubeconfig, slug)) as collector:

        def synced() -> bool:
            collector.tick()
            return collector.status.state == "synced"

        wait_until("collector synced", synced, timeout=60)
        yield collector
