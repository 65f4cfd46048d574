"""Node events with a single namespace (other than "default") watched, against the fake API
server: the kubelet's and node controller's events live in "default", so extra, optional
watches fetch them there, about nodes only. Allowed, the node's row head shows them;
refused (a namespaced Role that stops at its namespace), the cluster is still synced,
everything else is shown, the status says what is missing, and the refused watches are not
asked again in a hot loop."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.collect.sources import KubeSource
from dashboard.grid.model import make_row
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.probe import probe
from dashboard.kube.resources import NODE_EVENTS_FORBIDDEN
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors
from tests.helpers.kube_support import FAST, fill, read_only_server
from tests.helpers.wait import wait_until

NAMESPACE = "kube-system"


def node_event(name: str, node: str, reason: str, type_: str = "Warning") -> dict:
    # As the kubelet records it: no namespace of its own, so the API server's "default".
    return {
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": node, "uid": node},
        "reason": reason,
        "message": f"{reason} on {node}",
        "type": type_,
        "count": 1,
        "lastTimestamp": "2030-01-01T00:00:00Z",
        "source": {"component": "kubelet", "host": node},
    }


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s)
    s.put("events", node_event("node-0.rebooted", "node-0", "Rebooted"))
    # In "default" but about a pod: not a node event, never fetched by these watches.
    s.put(
        "events",
        {
            **node_event("web.failed", "node-0", "BackOff"),
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
        },
    )
    return s


@pytest.fixture
def server(store):
    with read_only_server(store, bookmark_interval=0.2) as srv:
        yield srv


def _collector(server, tmp_path, **options) -> ClusterCollector:
    config = ClusterConfig(
        slug="one",
        name="one",
        source="kubeconfig",
        kubeconfig_path=str(server.write_kubeconfig(tmp_path / "kubeconfig")),
        namespaces_include=(NAMESPACE,),
    )
    assert config.single_namespace == NAMESPACE
    collector = collectors.make(config)
    # Retries in milliseconds: a refused optional watch must still not be asked again.
    source = KubeSource(config, **{**FAST, **options})
    collector.use_source(source)
    source.start()
    return collector


def _synced(collector: ClusterCollector) -> bool:
    collector.tick()
    return collector.status.state == "synced"


def _default_event_requests(server) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(p).query)
        for _, p in server.requests
        if urlsplit(p).path == "/api/v1/namespaces/default/events"
    ]


def test_node_events_are_watched_in_default_and_shown_on_the_row(store, server, tmp_path):
    collector = _collector(server, tmp_path)
    try:
        wait_until(lambda: _synced(collector), 10, "synced")

        def reasons() -> list[str]:
            collector.tick()
            return [e.reason for e in collector.matrix.events.of(("Node", "", "node-0"))]

        wait_until(lambda: reasons() == ["Rebooted"], 10, "the node event listed")
        assert collector.status.message == ""  # nothing left out
        row = make_row(collector.matrix, "node-0", [])
        assert row.node_events == "1" and row.node_event == "Rebooted: Rebooted on node-0"

        # Watched, too: the node controller's NodeNotReady arrives on its own stream.
        store.put("events", node_event("node-1.nr", "node-1", "NodeNotReady", "Normal"))
        wait_until(
            lambda: collector.tick() or collector.matrix.events.of(("Node", "", "node-1")),
            10,
            "NodeNotReady watched",
        )
        # Relists of the namespace's own streams keep the node events (they are the node
        # streams'): cut every watch and have the events ones come back with a 410.
        server.faults.fail_next(410, count=7, resource="events", watch=True)
        server.faults.cut_watches()
        wait_until(lambda: collector.tick() or not server.faults.armed(), 10, "relisted")
        store.put(
            "events",
            {
                **node_event("agent.1", "node-0", "FailedCreate"),
                "metadata": {"name": "agent.1", "namespace": NAMESPACE},
                "involvedObject": {"kind": "DaemonSet", "namespace": NAMESPACE, "name": "agent"},
            },
        )
        wait_until(
            lambda: collector.tick() or f"{NAMESPACE}/agent.1" in collector.matrix.events.by_key,
            10,
            "the namespace's events still watched",
        )
        assert reasons() == ["Rebooted"]
    finally:
        collector.stop_source()
    queries = _default_event_requests(server)
    selectors = {q["fieldSelector"][0] for q in queries}
    assert selectors == {
        "involvedObject.kind=Node,type=Warning",
        "involvedObject.kind=Node,type=Normal,reason=NodeNotReady",
    }
    assert any(q.get("watch") == ["true"] for q in queries)
    # The namespace's own streams stay in it; nothing is asked cluster-wide.
    assert not any(urlsplit(p).path == "/api/v1/events" for _, p in server.requests)


def test_refused_node_events_leave_the_cluster_synced_with_a_note(store, server, tmp_path):
    server.faults.forbid("list", "events", namespace="default")
    server.faults.forbid("watch", "events", namespace="default")
    collector = _collector(server, tmp_path)
    try:
        wait_until(lambda: _synced(collector), 10, "synced despite the refusal")
        wait_until(
            lambda: collector.tick() or collector.status.message == NODE_EVENTS_FORBIDDEN,
            10,
            "the note",
        )
        assert collector.status.state == "synced"
        assert collector.runtime_status().message == NODE_EVENTS_FORBIDDEN
        # Everything else is there: nodes, the DaemonSet's cells, the namespace's events.
        assert set(collector.matrix.nodes) == {"node-0", "node-1", "node-2"}
        assert any(key[1] == f"{NAMESPACE}/agent" for key in collector.matrix.cells)
        assert not collector.matrix.events.of(("Node", "", "node-0"))
        asked = len(_default_event_requests(server))
        time.sleep(1.5)  # with FAST backoff, a required resource would be asked ~100 times
        collector.tick()
        assert len(_default_event_requests(server)) == asked
        # Two streams, each tried once as a streamed list and once page by page.
        assert asked <= 4
        assert collector.status.state == "synced"
    finally:
        collector.stop_source()


def test_the_connection_test_reports_the_optional_permission_as_a_note(server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc"))
    try:
        allowed = probe(client, namespace=NAMESPACE, timeout=3.0)
        server.faults.forbid("list", "events", namespace="default")
        server.faults.forbid("watch", "events", namespace="default")
        refused = probe(client, namespace=NAMESPACE, timeout=3.0)
        everywhere = probe(client, timeout=3.0)
    finally:
        client.close()
    assert allowed.ok and allowed.notes == []
    assert set(allowed.optional) == {"list events in default", "watch events in default"}
    assert all(c.ok for c in allowed.optional.values())
    # Refused: still ok (nothing the dashboard needs is missing), with the note.
    assert refused.ok and refused.notes == [NODE_EVENTS_FORBIDDEN]
    assert refused.missing == [] and refused.forbidden == []
    assert refused.resources["events"].ok  # in the namespace itself, events are allowed
    # Cluster-wide, "default" is covered by the events check itself: nothing optional.
    assert everywhere.optional == {} and everywhere.notes == []


def test_a_role_granted_later_brings_the_node_events_in(store, server, tmp_path):
    server.faults.forbid("list", "events", namespace="default")
    server.faults.forbid("watch", "events", namespace="default")
    collector = _collector(server, tmp_path, optional_forbidden_retry=0.5)
    try:
        wait_until(
            lambda: _synced(collector) and collector.status.message == NODE_EVENTS_FORBIDDEN,
            10,
            "synced, with the note",
        )
        server.faults.clear()  # the admin adds the Role in "default"
        wait_until(
            lambda: collector.tick() or collector.matrix.events.of(("Node", "", "node-0")),
            10,
            "the node event",
        )
        wait_until(lambda: collector.tick() or collector.status.message == "", 5, "no note")
        assert collector.status.state == "synced"
    finally:
        collector.stop_source()
