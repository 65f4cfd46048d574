"""The DaemonSet tax: daemon requests against allocatable per node and per pool, and the
pools with no room for one more daemon of a given size."""

from __future__ import annotations

import pytest

from dashboard.coverage.report import SCHEMA, to_json
from dashboard.coverage.tax import node_tax, parse_size, pool_taxes
from tests.helpers.k8s import build, daemon_pod, daemonset, node, plain_pod

POOL = "cloud.google.com/gke-nodepool"


def _with_requests(obj, **requests):
    if obj["kind"] == "DaemonSet":
        obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": requests}
    else:
        obj["spec"]["containers"][0]["resources"] = {"requests": requests}
    return obj


def _world():
    nodes = []
    for name, pool, cpu in (("a-1", "small", "1"), ("a-2", "small", "2"), ("b-1", "big", "8")):
        n = node(name, labels={POOL: pool})
        n["status"]["allocatable"] = {"cpu": cpu, "memory": "4Gi", "pods": "110"}
        nodes.append(n)
    logs = _with_requests(daemonset("logs"), cpu="150m", memory="128Mi")
    proxy = _with_requests(daemonset("proxy"), cpu="100m")
    pods = []
    for n in ("a-1", "a-2", "b-1"):
        pods.append(_with_requests(daemon_pod(logs, n), cpu="150m", memory="128Mi"))
        pods.append(_with_requests(daemon_pod(proxy, n), cpu="100m"))
    app = _with_requests(plain_pod("app", "a-1"), cpu="600m", memory="1Gi")
    return [*nodes, logs, proxy, *pods, app]


def test_node_tax_is_daemon_requests_against_allocatable():
    m = build(_world())
    tax = node_tax(m, "a-1")
    assert tax.daemon_requests == {"cpu": 250, "memory": 128 * 2**20 * 1000}
    assert tax.daemon_pods == 2 and tax.pods == 3
    assert tax.share("cpu") == pytest.approx(25.0)
    assert tax.free("cpu") == 1000 - 850
    assert (
        tax.summary()
        == "daemons (2 pods) request cpu 250m of 1 (25.0%), memory 128Mi of 4Gi (3.1%)"
    )
    assert node_tax(m, "b-1").worst_share == pytest.approx(250 / 8000 * 100)


def test_pools_sum_and_say_which_nodes_have_no_room():
    m = build(_world())
    pools = {p.pool: p for p in pool_taxes(m, parse_size("cpu=200m"))}
    small = pools["small"]
    assert small.nodes == ["a-1", "a-2"]
    assert small.allocatable["cpu"] == 3000 and small.daemon_requests["cpu"] == 500
    assert small.room["cpu"] == 150  # a-1: 1 - 250m daemons - 600m app
    assert small.without_room == ["a-1"]  # 150m free < 200m
    assert pools["big"].without_room == []
    assert pool_taxes(m)[0].without_room == []  # no size asked: nothing judged


def test_coverage_json_carries_the_tax():
    m = build(_world())
    doc = to_json(m, daemon_size=parse_size("cpu=200m,memory=256Mi"))
    assert doc["schema"] == SCHEMA  # fields added, the schema unchanged
    a1 = next(n for n in doc["nodes"] if n["name"] == "a-1")
    assert a1["allocatable"] == {"cpu": "1", "memory": "4Gi", "pods": "110"}
    assert a1["daemon_requests"] == {"cpu": "250m", "memory": "128Mi"}
    assert (a1["pool"], a1["daemon_pods"]) == ("small", 2)
    assert doc["daemon_size"] == "cpu=200m,memory=256Mi"
    small = next(p for p in doc["pools"] if p["pool"] == "small")
    assert small == {
        "pool": "small",
        "nodes": 2,
        "allocatable": {"cpu": "3", "memory": "8Gi", "pods": "220"},
        "daemon_requests": {"cpu": "500m", "memory": "256Mi"},
        "room": {"cpu": "150m", "memory": "2.88Gi", "pods": "107"},
        "nodes_without_room": ["a-1"],
    }
    # Without a size: the largest daemon running (logs: 150m, 128Mi) is the question.
    assert to_json(m)["daemon_size"] == "cpu=150m,memory=128Mi"


@pytest.mark.parametrize(
    ("text", "message"),
    [("cpu", "is not resource=quantity"), ("cpu=lots", "'lots' is not a quantity")],
)
def test_a_bad_size_is_refused_clearly(text, message):
    with pytest.raises(ValueError, match=message):
        parse_size(text)


def test_a_snapshot_keeps_the_tax_for_the_web_workers():
    # Scale-out: web workers render a matrix decoded from the collector's snapshot, which
    # carries daemon pods only; the per-node sums travel so that the tax and free agree.
    from dashboard.collect.snapshots import decode_matrix, encode_matrix
    from dashboard.coverage.report import to_json

    m = build(_world())
    copy_ = decode_matrix(encode_matrix(m))
    assert node_tax(copy_, "a-1") == node_tax(m, "a-1")
    assert to_json(copy_)["pools"] == to_json(m)["pools"]
