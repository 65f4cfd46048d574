"""Services for some of the simulated daemons, and an EndpointSlice controller for them.

The demo's access paths (docs/access.md) need what a real cluster has: a Service that
selects a DaemonSet's pods and the slices the EndpointSlice controller writes for it. The
rules followed are the real controller's, in short: a pod is listed once it has an IP and
is not terminal; `serving` follows its Ready condition, `terminating` its deletion, and
`ready` is serving and not terminating; at most 100 endpoints a slice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cluster import Simulator

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice-controller.k8s.io"
PER_SLICE = 100

# (namespace, DaemonSet name, Service port, target port name, container port, headless)
DAEMON_SERVICES = (
    ("monitoring", "prometheus-node-exporter", 9100, "metrics", 9100, True),
    ("logging", "fluent-bit", 2020, "metrics", 2020, False),
)


def service(namespace: str, name: str, port: int, target: str, headless: bool) -> Obj:
    spec: Obj = {
        "type": "ClusterIP",
        "selector": {"app.kubernetes.io/name": name},
        "ports": [{"name": "metrics", "port": port, "protocol": "TCP", "targetPort": target}],
        "internalTrafficPolicy": "Cluster",
        "sessionAffinity": "None",
    }
    spec["clusterIP"] = "None" if headless else f"10.96.{len(name)}.{port % 250}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": name},
        },
        "spec": spec,
    }


class EndpointSliceController:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.services: list[tuple[str, str, dict[str, str], int]] = []
        self._written: dict[tuple[str, str], Any] = {}  # slice key -> what it last listed
        self._slices: dict[tuple[str, str], int] = {}  # Service -> how many slices it has
        # Service -> the DaemonSet it was made for: only that one's pods are looked at (a
        # 1,000-node scenario has 20,000 pods; each tick would otherwise scan them all).
        self._daemonsets: dict[tuple[str, str], str] = {}
        self._seen_rv = -1

    def add_defaults(self) -> None:
        for namespace, name, port, target, container_port, headless in DAEMON_SERVICES:
            if f"{namespace}/{name}" not in self.sim.controller.daemonsets:
                continue
            obj = self.sim.store.put("services", service(namespace, name, port, target, headless))
            self.services.append((namespace, name, obj["spec"]["selector"], container_port))
            self._daemonsets[(namespace, name)] = f"{namespace}/{name}"
        self.sync()

    def sync(self) -> None:
        """Rewrite the slices whose endpoints changed (cheap when nothing did)."""
        rv = self.sim.store.resource_version
        if not self.services or rv == self._seen_rv:
            return
        for namespace, name, selector, port in self.services:
            endpoints = self._endpoints(self._daemonsets[(namespace, name)], namespace, selector)
            chunks = [endpoints[i : i + PER_SLICE] for i in range(0, len(endpoints), PER_SLICE)]
            for i, chunk in enumerate(chunks or [[]]):
                self._write(namespace, name, f"{name}-{i:05x}", chunk, port)
            kept = max(1, len(chunks))
            for i in range(kept, self._slices.get((namespace, name), 0)):
                self.sim.store.delete("endpointslices", namespace, f"{name}-{i:05x}")
                self._written.pop((namespace, f"{name}-{i:05x}"), None)
            self._slices[(namespace, name)] = kept
        self._seen_rv = self.sim.store.resource_version

    def _endpoints(self, ds_key: str, namespace: str, selector: dict[str, str]) -> list[Obj]:
        ds = self.sim.controller.daemonsets.get(ds_key)
        if ds is None:
            return []
        out = []
        pods = [p for on_node in ds.pods.values() for p in on_node]
        for pod in sorted(pods, key=lambda p: p.name):
            labels = pod.base.labels
            if pod.namespace != namespace or any(labels.get(k) != v for k, v in selector.items()):
                continue
            if not pod.pod_ip or pod.stage in ("pending", "failed"):
                continue
            serving = pod.ready
            terminating = pod.deletion is not None
            out.append(
                {
                    "addresses": [pod.pod_ip],
                    "conditions": {
                        "ready": serving and not terminating,
                        "serving": serving,
                        "terminating": terminating,
                    },
                    "nodeName": pod.node,
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": namespace,
                        "name": pod.name,
                        "uid": pod.uid,
                    },
                }
            )
        return out

    def _write(
        self, namespace: str, service_name: str, name: str, endpoints: list[Obj], port: int
    ) -> None:
        key = (namespace, name)
        if self._written.get(key) == endpoints:
            return
        self._written[key] = endpoints
        self.sim.store.put(
            "endpointslices",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "generateName": f"{service_name}-",
                    "labels": {
                        SERVICE_NAME_LABEL: service_name,
                        "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                    },
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{"name": "metrics", "port": port, "protocol": "TCP"}],
            },
        )
