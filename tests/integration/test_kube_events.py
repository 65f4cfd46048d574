"""Events through the kube layer, against the fake API server: one cluster-wide core/v1
watch with the server-side filter `type=Warning`, and the collector turning a DaemonSet's
FailedCreate into the reason of its missing cells."""

from __future__ import annotations

import pytest

from dashboard.coverage.states import State
from dashboard.coverage.why import RELEVANT_NORMAL
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.reflector import ClusterWatch
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors
from tests.helpers.kube_support import FAST, Mirror, fill, node, read_only_server
from tests.helpers.wait import wait_until

QUOTA = (
    'Error creating: pods "agent-x7k2p" is forbidden: exceeded quota: no-pods, '
    "requested: pods=1, used: pods=0, limited: pods=0"
)


def k8s_event(name: str, kind: str, about: str, reason: str, message: str, type_: str) -> dict:
    namespace = "kube-system" if kind != "Node" else "default"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "kind": kind,
            "namespace": "" if kind == "Node" else namespace,
            "name": about,
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "count": 1,
        "lastTimestamp": "2030-01-01T00:00:00Z",
        "source": {"component": "daemonset-controller"},
    }


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s)
    agent = s.get("daemonsets", "kube-system", "agent")
    assert agent is not None
    s.put("daemonsets", {**agent, "status": {"observedGeneration": 1}})  # the controller caught up
    s.put("events", k8s_event("agent.1", "DaemonSet", "agent", "FailedCreate", QUOTA, "Warning"))
    s.put("events", k8s_event("agent.2", "DaemonSet", "agent", "SuccessfulCreate", "ok", "Normal"))
    return s


@pytest.fixture
def server(store):
    with read_only_server(store, bookmark_interval=0.2) as srv:
        yield srv


def test_events_are_listed_and_watched_warning_only(store, server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))
    mirror = Mirror()
    watch = ClusterWatch(client, mirror, **FAST)
    try:
        assert watch.wait_synced(10)
        assert set(mirror.objects["events"]) == {"kube-system/agent.1"}
        store.put("events", k8s_event("n.1", "Node", "node-0", "Rebooted", "rebooted", "Warning"))
        store.put("events", k8s_event("agent.3", "DaemonSet", "agent", "Created", "", "Normal"))
        wait_until(lambda: "default/n.1" in mirror.objects["events"], 5, "node event watched")
        assert "kube-system/agent.3" not in mirror.objects["events"]
    finally:
        watch.stop()
    paths = [p for _, p in server.requests if p.startswith("/api/v1/events")]
    # A list and a watch per stream, each filtered by the server, cluster-wide: Warning,
    # and one per Normal reason that matters (selectors cannot OR).
    selectors = {
        "fieldSelector=type%3DWarning&",
        *(f"fieldSelector=type%3DNormal%2Creason%3D{r}&" for r in RELEVANT_NORMAL),
    }
    assert paths and all(any(s in p + "&" for s in selectors) for p in paths), paths
    for s in selectors:
        assert any("watch=true" in p and s in p + "&" for p in paths), s


def test_collector_shows_the_failed_create_as_the_missing_cells_reason(store, server, tmp_path):
    store.put("nodes", node("node-new"))  # no agent pod there: a missing cell
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    with collectors.running(collectors.kubeconfig_cluster(kubeconfig, "ev")) as collector:
        key = ("node-new", "kube-system/agent")

        def cell():
            collector.tick()
            return collector.matrix.cells.get(key)

        wait_until(lambda: (c := cell()) is not None and c.events, 10, "event attached")
        c = cell()
        assert c.state is State.MISSING
        assert c.reason == "FailedCreate: " + QUOTA.removeprefix("Error creating: ")
        # The event goes away (TTL in etcd, or deleted): the reason goes with it.
        store.delete("events", "kube-system", "agent.1")
        wait_until(lambda: not cell().events, 10, "event gone")
        assert cell().reason.startswith("node joined ")


def test_the_normal_reasons_that_matter_are_watched_and_attached(store, server, tmp_path):
    """A victim's Preempted and an image-pull BackOff are Normal events: each has a watch
    of its own; a relist of one stream keeps the others' events."""
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    with collectors.running(collectors.kubeconfig_cluster(kubeconfig, "ev2")) as collector:
        wait_until(lambda: collector.tick() or collector.status.state == "synced", 10, "synced")
        store.put(
            "events",
            k8s_event(
                "n.2",
                "Node",
                "node-0",
                "NodeNotReady",
                "Node node-0 status is now: NodeNotReady",
                "Normal",
            ),
        )
        store.put("events", k8s_event("n.3", "Node", "node-0", "Starting", "routine", "Normal"))

        def reasons() -> list[str]:
            collector.tick()
            return [e.reason for e in collector.matrix.events.of(("Node", "", "node-0"))]

        wait_until(lambda: reasons() == ["NodeNotReady"], 30, "NodeNotReady kept")
        # Routine Normal events never reach the dashboard: no stream selects them.
        assert not any("Starting" in p for _, p in server.requests)
        assert "kube-system/agent.1" in collector.matrix.events.by_key  # the Warning too
