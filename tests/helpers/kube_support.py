"""Shared helpers for the kube-layer tests: objects, a mirror sink that applies reflector
events like the matrix will, and waiting until that mirror equals the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dashboard.kube.reflector import CLUSTER, Change, Replace, Status
from dashboard.kube.resources import record_key
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers.wait import wait_until

TOKEN = "secret-token"
RESOURCES = ("nodes", "pods", "daemonsets", "controllerrevisions", "services", "endpointslices")
# Fast retries so failure tests take milliseconds, not seconds.
FAST = {"backoff_base": 0.01, "backoff_cap": 0.1, "read_timeout": 10.0}


@contextmanager
def read_only_server(store: ObjectStore, **options: Any) -> Iterator[FakeApiServer]:
    """The fake API server for `store` on a free port, with the test token. When the block
    ends it stops, and it must have seen nothing but GETs: whatever a test did, the
    dashboard stays read-only toward clusters."""
    srv = FakeApiServer(store, port=0, token=TOKEN, **options).start()
    try:
        yield srv
    finally:
        srv.stop()
    assert srv.non_get_requests == []


def node(name: str, **labels: str) -> dict:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def daemonset(namespace: str, name: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": f"{name}:1"}]},
            },
        },
        "status": {},
    }


def pod(namespace: str, name: str, node_name: str = "", owner_uid: str = "", **labels) -> dict:
    meta: dict = {"name": name, "namespace": namespace, "labels": labels}
    if owner_uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": "ds",
                "uid": owner_uid,
                "controller": True,
            }
        ]
    return {
        "metadata": meta,
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "c:1"}]},
        "status": {"phase": "Running"},
    }


def revision(namespace: str, name: str, number: int = 1) -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "revision": number}


def fill(store: ObjectStore, nodes: int = 3, pods: int = 10) -> None:
    for i in range(nodes):
        store.put("nodes", node(f"node-{i}"))
    ds = store.put("daemonsets", daemonset("kube-system", "agent"))
    store.put("controllerrevisions", revision("kube-system", "agent-1"))
    for i in range(pods):
        owner = ds["metadata"]["uid"] if i % 2 == 0 else ""
        store.put("pods", pod(f"ns-{i % 3}", f"pod-{i}", f"node-{i % max(nodes, 1)}", owner))
    store.put(
        "services",
        {
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {"selector": {"app": "agent"}, "clusterIP": "None", "ports": [{"port": 80}]},
        },
    )
    store.put(
        "endpointslices",
        {
            "metadata": {
                "name": "agent-x1",
                "namespace": "kube-system",
                "labels": {"kubernetes.io/service-name": "agent"},
            },
            "addressType": "IPv4",
            "endpoints": [],
        },
    )


def store_state(store: ObjectStore) -> dict[str, dict[str, str]]:
    """{resource: {key: resourceVersion}}, keys as the reflector's records name them."""
    out = {}
    for resource in RESOURCES:
        items, _ = store.list(resource)
        out[resource] = {
            (
                f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                if o["metadata"].get("namespace")
                else o["metadata"]["name"]
            ): o["metadata"]["resourceVersion"]
            for o, _ in items
        }
    return out


class Mirror:
    """A sink that keeps {resource: {key: record}} exactly as a consumer would."""

    def __init__(self):
        self.lock = threading.Lock()
        self.objects: dict[str, dict] = {r: {} for r in RESOURCES}
        self.replaces: dict[str, int] = dict.fromkeys(RESOURCES, 0)
        self.statuses: list[tuple[str, Status]] = []

    def __call__(self, resource: str, event) -> None:
        with self.lock:
            if isinstance(event, Replace):
                self.objects[resource] = {record_key(r): r for r in event.records}
                self.replaces[resource] = self.replaces.get(resource, 0) + 1
            elif isinstance(event, Change):
                key = record_key(event.record)
                if event.type == "DELETED":
                    self.objects.setdefault(resource, {}).pop(key, None)
                else:
                    self.objects.setdefault(resource, {})[key] = event.record
            elif isinstance(event, Status):
                self.statuses.append((resource, event))

    def state(self) -> dict[str, dict[str, str]]:
        with self.lock:
            # The resources `store_state` compares (events: tests/integration/test_kube_events.py).
            return {
                r: {k: rec.resource_version for k, rec in objs.items()}
                for r, objs in self.objects.items()
                if r in RESOURCES
            }

    def cluster_states(self) -> list[str]:
        with self.lock:
            return [s.state for r, s in self.statuses if r == CLUSTER]

    def problems(self) -> list:
        with self.lock:
            return [s.problem for _, s in self.statuses if s.problem is not None]


def wait_mirrors(mirror: Mirror, store: ObjectStore, timeout: float = 5.0) -> None:
    try:
        wait_until(lambda: mirror.state() == store_state(store), timeout, "mirror == store")
    except AssertionError:
        got, want = mirror.state(), store_state(store)
        diff = {r: (len(got[r]), len(want[r])) for r in RESOURCES if got[r] != want[r]}
        raise AssertionError(f"mirror differs from store (got, want sizes): {diff}") from None
