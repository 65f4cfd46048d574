"""Namespaces included/excluded and the DaemonSet label selector really filter what the
collector shows — for any source — and a single included namespace is listed and watched
server-side."""

from __future__ import annotations

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.collect.status import ConnectionStatus
from dashboard.coverage.events import Change, Replace
from dashboard.coverage.matrix import ADDED, MODIFIED
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer
from tests.helpers import collectors, k8s


class ListSource:
    """A source that hands over whatever the test queues."""

    def __init__(self):
        self.items = []

    def drain(self):
        items, self.items = self.items, []
        return items

    def pending(self):
        return False

    def watch_stats(self):
        return {}

    def skipped(self):
        return []

    def status(self):
        return ConnectionStatus("synced", "")

    def stop(self):
        pass


def _ds(name, ns, **labels):
    ds = k8s.daemonset(name, ns, tolerations=[k8s.toleration()])
    ds["metadata"]["labels"].update(labels)
    return ds


def _world():
    nodes = [k8s.node("n1"), k8s.node("n2")]
    proxy = _ds("kube-proxy", "kube-system", tier="node")
    logs = _ds("fluent-bit", "logging", tier="obs")
    mon = _ds("node-exporter", "monitoring", tier="node")
    objs = [*nodes, proxy, logs, mon]
    for ds in (proxy, logs, mon):
        objs.append(k8s.controller_revision(ds, 1, "h"))
        objs += [k8s.daemon_pod(ds, "n1"), k8s.daemon_pod(ds, "n2")]
    return objs


def _replace(objs):
    by_kind = {}
    for o in objs:
        rec = k8s.to_record(o)
        by_kind.setdefault(o["kind"], []).append(rec)
    kinds = {"Node": "Node", "DaemonSet": "DaemonSet", "Pod": "Pod"}
    kinds["ControllerRevision"] = "ControllerRevision"
    return [Replace(kinds[k], recs) for k, recs in by_kind.items()]


def _collector(**scope) -> tuple[ClusterCollector, ListSource]:
    c = collectors.make(ClusterConfig(slug="s", name="S", **scope))
    src = ListSource()
    c.use_source(src)
    src.items = _replace(_world())
    c.tick()
    return c, src


def test_no_scope_shows_everything():
    c, _ = _collector()
    assert set(c.matrix.daemonsets) == {
        "kube-system/kube-proxy",
        "logging/fluent-bit",
        "monitoring/node-exporter",
    }
    assert c.runtime_status().pods == 6


def test_namespace_include_and_exclude():
    c, _ = _collector(
        namespaces_include=("kube-system", "logging"), namespaces_exclude=("logging",)
    )
    assert set(c.matrix.daemonsets) == {"kube-system/kube-proxy"}
    assert {p.namespace for p in c.matrix.pods.values()} == {"kube-system"}
    assert {r.namespace for r in c.matrix.revisions.values()} == {"kube-system"}
    rt = c.runtime_status()
    assert (rt.nodes, rt.daemonsets, rt.pods) == (2, 1, 2)
    c, _ = _collector(namespaces_exclude=("monitoring",))
    assert set(c.matrix.daemonsets) == {"kube-system/kube-proxy", "logging/fluent-bit"}


def test_daemonset_selector_and_labels_changing_under_it():
    c, src = _collector(daemonset_selector="tier=node")
    assert set(c.matrix.daemonsets) == {"kube-system/kube-proxy", "monitoring/node-exporter"}
    assert c.runtime_status().pods == 4  # pods of hidden DaemonSets are not counted
    # node-exporter's labels change: it leaves the scope, as if deleted.
    moved = _ds("node-exporter", "monitoring", tier="obs")
    src.items = [Change(MODIFIED, k8s.to_record(moved))]
    c.tick()
    assert set(c.matrix.daemonsets) == {"kube-system/kube-proxy"}
    assert not any(ds == "monitoring/node-exporter" for _, ds in c.matrix.cells)
    # ...and comes back with its pods, which were kept.
    back = _ds("node-exporter", "monitoring", tier="node")
    src.items = [Change(MODIFIED, k8s.to_record(back))]
    c.tick()
    assert c.matrix.cells[("n1", "monitoring/node-exporter")].state.value == "healthy"
    # A new DaemonSet outside the selector never appears.
    src.items = [Change(ADDED, k8s.to_record(_ds("other", "kube-system", tier="x")))]
    c.tick()
    assert "kube-system/other" not in c.matrix.daemonsets


def test_invalid_selector_shows_nothing_and_says_why():
    c, _ = _collector(daemonset_selector="tier in (")
    assert not c.matrix.daemonsets
    assert "DaemonSet label selector" in c.runtime_status().last_error


def test_simulated_cluster_is_filtered_too():
    c = collectors.make(
        ClusterConfig(slug="d", name="D", seed=3, namespaces_exclude=("kube-system",))
    )
    c.start_source(run_clock=False)
    c.tick()
    assert c.matrix.daemonsets
    assert all(ds.namespace != "kube-system" for ds in c.matrix.daemonsets.values())


def test_single_namespace_is_listed_and_watched_server_side(tmp_path):
    sim = Simulator.from_scenario("demo", seed=5)
    server = FakeApiServer(sim.store, port=0, token="tk", bookmark_interval=0.2).start()
    config = collectors.kubeconfig_cluster(
        server.write_kubeconfig(tmp_path / "kc"), "k", name="K", namespaces_include=("kube-system",)
    )
    assert config.single_namespace == "kube-system"
    c = collectors.make(config)
    try:
        c.start_source()
        assert collectors.synced(c), c.status
        c.tick()
        assert c.matrix.daemonsets and all(
            ds.namespace == "kube-system" for ds in c.matrix.daemonsets.values()
        )
        paths = [p for _, p in server.requests]
        assert any(p.startswith("/api/v1/namespaces/kube-system/pods") for p in paths)
        assert not any(p.startswith("/api/v1/pods") for p in paths)
        assert any(p.startswith("/api/v1/nodes") for p in paths)  # nodes stay cluster-wide
        rt = c.runtime_status()
        assert rt.last_sync is not None and rt.nodes > 0
    finally:
        c.stop_source()
        server.stop()


def test_cluster_scoped_records_pass_a_namespace_scope():
    # PriorityClasses have no namespace, and a node's events live in "default": a scope
    # of other namespaces must neither drop them nor fail on them.
    c, src = _collector(namespaces_include=("kube-system",))
    pc = {"kind": "PriorityClass", "metadata": {"name": "agents", "uid": "u1"}, "value": 1000}
    event = {
        "kind": "Event",
        "metadata": {"name": "n1.1", "namespace": "default", "uid": "e1"},
        "involvedObject": {"kind": "Node", "name": "n1"},
        "type": "Warning",
        "reason": "ContainerGCFailed",
        "message": "rpc error",
        "lastTimestamp": "2030-01-01T00:00:00Z",
    }
    src.items = [Change(ADDED, k8s.to_record(pc)), Change(ADDED, k8s.to_record(event))]
    c.tick()
    assert c.matrix.priority_classes["agents"].value == 1000
    assert [e.reason for e in c.matrix.events.of(("Node", "", "n1"))] == ["ContainerGCFailed"]
