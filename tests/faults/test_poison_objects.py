"""Poison objects: real inputs the API server accepts that once stopped a collector for
good (a non-ASCII digit in a node name, a Ready transition in year 9999 under
minReadySeconds, a minReadySeconds of 10¹²). Each must be shown, not crash anything."""

from __future__ import annotations

import pytest

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.coverage.events import Replace
from dashboard.coverage.records import decode
from dashboard.coverage.states import State
from dashboard.models import Cluster
from tests.helpers import collectors, k8s


class ListSource:
    """A source that hands the collector one fixed set of lists, as a first sync would."""

    def __init__(self, objs):
        self._events = []
        by_kind: dict[str, list] = {
            "Node": [],
            "DaemonSet": [],
            "Pod": [],
            "ControllerRevision": [],
        }
        for o in objs:
            by_kind[o["kind"]].append(decode(o["kind"], o))
        self._events = [Replace(kind, records) for kind, records in by_kind.items()]

    def start(self):
        pass

    def drain(self):
        events, self._events = self._events, []
        return events

    def pending(self):
        return bool(self._events)

    def status(self):
        from dashboard.collect.status import ConnectionStatus
        from dashboard.kube.connection import ConnectionState

        return ConnectionStatus(ConnectionState.SYNCED, "")

    def watch_stats(self):
        return {}

    def skipped(self):
        return []

    def stop(self):
        pass


def _poison_cluster():
    ds = k8s.daemonset("agent", min_ready_seconds=30)
    huge = k8s.daemonset("slow-agent", min_ready_seconds=10**12)
    nodes = [k8s.node(n) for n in ("node-1", "node-1²", "node-2", "node-10")]
    objs = [ds, huge, *nodes]
    objs.append(k8s.daemon_pod(ds, "node-1", ready_since="9999-12-31T23:59:59Z"))
    objs += [k8s.daemon_pod(ds, n) for n in ("node-1²", "node-2", "node-10")]
    objs += [k8s.daemon_pod(huge, n, ready_since=k8s.ts(-60)) for n in ("node-1", "node-2")]
    return objs


def test_a_collector_classifies_the_three_poison_inputs():
    collector = collectors.make(ClusterConfig(slug="p", name="Poison"))
    collector.use_source(ListSource(_poison_cluster()))
    delta = collector.tick()  # builds the grid's and the wall's payloads too
    assert delta is not None and not delta.empty
    cells = collector.matrix.cells
    assert cells[("node-1", "kube-system/agent")].state is State.NOT_AVAILABLE
    assert cells[("node-1²", "kube-system/agent")].state is State.HEALTHY
    assert cells[("node-2", "kube-system/slow-agent")].state is State.NOT_AVAILABLE


@pytest.mark.django_db
def test_the_grid_page_renders_a_node_named_with_a_superscript_digit(client, django_user_model):
    Cluster.objects.create(name="Poison", slug="p", source="simulated")
    collector = collectors.make(ClusterConfig(slug="p", name="Poison"))
    collector.matrix = k8s.build(_poison_cluster())
    registry.register(collector)
    try:
        client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123"))
        for url in ("/clusters/p/", "/clusters/p/grid/", "/clusters/p/nodes/node-1²/"):
            response = client.get(url)
            assert response.status_code == 200, url
        html = client.get("/clusters/p/").content.decode()
        assert html.index("node-1²") < html.index("node-2") < html.index("node-10")
    finally:
        registry.unregister("p")
