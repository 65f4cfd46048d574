"""Access paths through the kube layer, against the fake API server over real HTTP: the
collector lists and watches Services and EndpointSlices (in one namespace when the cluster
is scoped to one), a slice change reaches the cell, unrelated slices are not kept, and a
malformed slice is skipped without stopping the rest."""

from __future__ import annotations

import copy
import time

import pytest

from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors
from tests.helpers.k8s import (
    daemon_pod,
    daemonset,
    endpoint,
    endpoint_slice,
    mirror_pod,
    node,
    plain_pod,
    service,
)

NS = "logging"
KEY = f"{NS}/log-agent"


@pytest.fixture
def world():
    store = ObjectStore()
    for i in (1, 2):
        store.put("nodes", node(f"n{i}", internal_ip=f"192.0.2.{i}"))
    ds = store.put(
        "daemonsets",
        daemonset(
            "log-agent",
            NS,
            match_labels={"app": "log-agent"},
            ports=[{"name": "metrics", "containerPort": 9100, "hostPort": 9100}],
        ),
    )
    pods = {
        n: store.put("pods", daemon_pod(ds, n, pod_ip=f"10.244.{n[1]}.5")) for n in ("n1", "n2")
    }
    svc = store.put(
        "services",
        service(
            "log-agent",
            NS,
            selector={"app": "log-agent"},
            headless=True,
            ports=[{"name": "metrics", "port": 80, "targetPort": "metrics"}],
        ),
    )
    ports = [{"name": "metrics", "port": 9100, "protocol": "TCP"}]
    es = store.put(
        "endpointslices",
        endpoint_slice(
            svc, [endpoint(pods[n], f"10.244.{n[1]}.5") for n in ("n1", "n2")], ports=ports
        ),
    )
    web = store.put("services", service("web", NS, selector={"app": "web"}))
    web_pod = store.put("pods", plain_pod("web-1", "n1", NS))
    store.put("endpointslices", endpoint_slice(web, [endpoint(web_pod, "10.244.1.9")], suffix="w"))
    store.put("pods", mirror_pod("kube-apiserver", "n1"))
    server = FakeApiServer(store, port=0, token="tk", bookmark_interval=0.2).start()
    yield store, server, pods, es
    server.stop()


def _synced(c, until=lambda: True, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.tick()
        if c.status.state == "synced" and until():
            return
        time.sleep(0.05)
    raise AssertionError(f"not there after {timeout}s: {c.status}")


def _collector(tmp_path, server, **scope):
    kubeconfig = server.write_kubeconfig(tmp_path / "kc")
    return collectors.running(collectors.kubeconfig_cluster(kubeconfig, "k", name="K", **scope))


def test_slices_reach_cells_live_and_unrelated_ones_are_dropped(tmp_path, world):
    store, server, pods, es = world
    with _collector(tmp_path, server) as c:
        _synced(c, lambda: ("n2", KEY) in c.matrix.cells)
        cell = c.matrix.cells[("n2", KEY)]
        assert cell.in_service_endpoints is True
        reach = c.matrix.access_of("n2", KEY)
        assert set(reach.addresses) == {"10.244.2.5:9100", "192.0.2.2:9100"}
        assert set(c.matrix.access.slices) == {es["metadata"]["namespace"] + "/log-agent-abcde"}
        assert set(c.matrix.static_pods) == {"kube-system/kube-apiserver-n1"}
        # The controller marks n2's endpoint not ready: the watch brings the flag.
        changed = copy.deepcopy(es)
        changed["endpoints"][1]["conditions"] = {"ready": False, "serving": False}
        store.put("endpointslices", changed)
        _synced(c, lambda: c.matrix.cells[("n2", KEY)].out_of_endpoints)
        assert "listed by Service logging/log-agent as not ready" in (
            c.matrix.cells[("n2", KEY)].access_note
        )
        assert not c.matrix.cells[("n1", KEY)].out_of_endpoints
        paths = [p for _, p in server.requests]
        assert any(p.startswith("/apis/discovery.k8s.io/v1/endpointslices") for p in paths)
        assert any(p.startswith("/api/v1/services") for p in paths)
        assert server.non_get_requests == []


def test_single_namespace_lists_services_and_slices_in_it(tmp_path, world):
    _, server, _, _ = world
    with _collector(tmp_path, server, namespaces_include=(NS,)) as c:
        _synced(c, lambda: ("n1", KEY) in c.matrix.cells)
        assert c.matrix.cells[("n1", KEY)].in_service_endpoints is True
        paths = [p for _, p in server.requests]
        assert any(p.startswith(f"/api/v1/namespaces/{NS}/services") for p in paths)
        assert any(
            p.startswith(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices") for p in paths
        )
        assert not any(p.startswith("/api/v1/services") for p in paths)


def test_a_malformed_slice_is_skipped_and_the_rest_stays(tmp_path, world):
    store, server, _, _ = world
    bad = {
        "metadata": {"name": "evil", "namespace": NS, "labels": {}},
        "endpoints": "not a list",
    }
    store.put("endpointslices", bad)
    with _collector(tmp_path, server) as c:
        _synced(c, lambda: ("n1", KEY) in c.matrix.cells)
        assert c.matrix.cells[("n1", KEY)].in_service_endpoints is True
        assert f"{NS}/evil" not in c.matrix.access.slices
