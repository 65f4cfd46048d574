"""PriorityClasses through the kube layer, against the fake API server: listed and watched
cluster-wide (also in single-namespace mode: they are cluster-scoped), probed by the
connection test, and followed by a Pending daemon's preemption advice in the collector."""

from __future__ import annotations

import pytest

from dashboard.coverage.states import State
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.probe import probe
from dashboard.kube.reflector import ClusterWatch
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors
from tests.helpers.kube_support import FAST, Mirror, fill, node, read_only_server
from tests.helpers.wait import wait_until

INSUFFICIENT = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def priority_class(name: str, value: int) -> dict:
    return {"metadata": {"name": name}, "value": value, "preemptionPolicy": "PreemptLowerPriority"}


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s, nodes=1, pods=0)
    s.put("priorityclasses", priority_class("system-node-critical", 2000001000))
    return s


@pytest.fixture
def server(store):
    with read_only_server(store, bookmark_interval=0.2) as srv:
        yield srv


@pytest.mark.parametrize("namespace", [None, "kube-system"])
def test_priority_classes_are_listed_and_watched_cluster_wide(store, server, tmp_path, namespace):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))
    mirror = Mirror()
    watch = ClusterWatch(client, mirror, namespace=namespace, **FAST)
    try:
        assert watch.wait_synced(10)
        assert set(mirror.objects["priorityclasses"]) == {"system-node-critical"}
        store.put("priorityclasses", priority_class("agents", 1000))
        wait_until(lambda: "agents" in mirror.objects["priorityclasses"], 5, "class watched")
        assert mirror.objects["priorityclasses"]["agents"].value == 1000
        store.delete("priorityclasses", "", "agents")
        wait_until(lambda: "agents" not in mirror.objects["priorityclasses"], 5, "class gone")
    finally:
        watch.stop()
    paths = [p for _, p in server.requests if "priorityclasses" in p]
    assert paths and all(p.startswith("/apis/scheduling.k8s.io/v1/priorityclasses") for p in paths)
    assert any("watch=true" in p for p in paths)


def test_the_probe_names_a_refused_priority_class_grant(server, tmp_path):
    server.faults.forbid("list", "priorityclasses")
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))
    report = probe(client, timeout=3.0)
    assert ("list", "priorityclasses") in report.missing
    assert report.resources["priorityclasses"].detail.startswith(
        "forbidden: cannot list priorityclasses.scheduling.k8s.io at the cluster scope"
    )


def test_the_advice_follows_the_watched_classes(store, server, tmp_path):
    full = node("node-0")
    full["status"]["allocatable"] = {"cpu": "1", "pods": "110"}
    store.put("nodes", full)
    hog = {
        "metadata": {"name": "hog", "namespace": "default"},
        "spec": {
            "nodeName": "node-0",
            "priority": 0,
            "containers": [{"name": "c", "image": "c", "resources": {"requests": {"cpu": "800m"}}}],
        },
        "status": {"phase": "Running"},
    }
    store.put("pods", hog)
    agent = store.get("daemonsets", "kube-system", "agent")
    assert agent is not None
    store.put("daemonsets", {**agent, "status": {"observedGeneration": 1}})
    pending = {
        "metadata": {
            "name": "agent-x",
            "namespace": "kube-system",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "agent",
                    "uid": agent["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "priority": 0,
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": ["node-0"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "containers": [{"name": "c", "image": "c", "resources": {"requests": {"cpu": "500m"}}}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": INSUFFICIENT,
                }
            ],
        },
    }
    store.put("pods", pending)
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    with collectors.running(collectors.kubeconfig_cluster(kubeconfig, "pc")) as collector:
        key = ("node-0", "kube-system/agent")

        def reason() -> str:
            collector.tick()
            cell = collector.matrix.cells.get(key)
            return cell.reason if cell is not None and cell.state is State.UNSCHEDULABLE else ""

        wait_until(lambda: "would preempt" in reason(), 10, "advice")
        assert reason().endswith(
            "no PriorityClass (priority 0): the daemon cannot preempt (the pods holding the "
            "node have priority 0 (1 pod)); system-node-critical (2000001000) would preempt "
            "1 pod (default/hog)"
        )
        assert "most held by default/hog 800m" in reason()
        store.put("priorityclasses", priority_class("agents", 1000))
        wait_until(lambda: reason().endswith("so would agents (1000)"), 10, "new class advised")
        store.delete("priorityclasses", "", "agents")
        wait_until(lambda: "agents" not in reason(), 10, "deleted class forgotten")
