"""The wall display's aggregation (dashboard/wall/aggregate.py): node groups × DaemonSets proportions,
the exceptions worst first, and the incremental upkeep checked against a full recount."""

from __future__ import annotations

import json

import pytest

from dashboard import pipeline
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.sources import SimulatedSource
from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED, Matrix
from dashboard.coverage.states import State
from dashboard.wall import aggregate as wall
from tests.helpers import k8s

POOL = "eks.amazonaws.com/nodegroup"
ZONE = "topology.kubernetes.io/zone"


def _apply(matrix: Matrix, events) -> object:
    """What the collector does with a source's events (see ClusterCollector._apply)."""
    from dashboard.coverage.events import Replace
    from dashboard.coverage.matrix import Delta

    total = Delta(matrix.revision)
    for event in events:
        if isinstance(event, Replace):
            total.merge(matrix.replace_all({event.kind: event.records}))
        else:
            total.merge(matrix.apply(event.type, event.record))
    return total


def _recount(matrix: Matrix, label: str = "") -> dict:
    return wall.WallAggregate(matrix, label).snapshot(matrix)


def _state_of(agg: wall.WallAggregate) -> tuple:
    tallies = {g: [list(c) for c in t] for g, t in agg.tallies.items()}
    problems = {k: sorted(v) for k, v in agg.problems.items()}
    return tallies, problems, dict(agg.group_size), agg.cells, agg.label


@pytest.mark.parametrize(
    ("scenario", "nodes", "daemonsets", "mode"),
    [("demo", None, None, "cells"), ("large", 150, 12, "groups")],
)
def test_incremental_upkeep_equals_a_full_recount_under_churn(
    scenario, nodes, daemonsets, mode, monkeypatch
):
    monkeypatch.setattr(wall, "RECOUNT_CELLS", 0)  # fold every delta in, even small ones
    config = ClusterConfig(
        slug="s", name="s", scenario=scenario, nodes=nodes, daemonsets=daemonsets, churn=900.0
    )
    source = SimulatedSource(config)
    sim = source.simulator
    matrix = Matrix(clock=lambda: sim.now)
    _apply(matrix, source.drain())
    agg = wall.WallAggregate(matrix)
    assert agg.snapshot(matrix)["mode"] == mode
    deltas = 0
    for _ in range(120):
        sim.step(2.0)
        delta = _apply(matrix, source.drain())
        if delta.empty:
            continue
        deltas += 1
        agg.apply(matrix, delta)
        fresh = wall.WallAggregate(matrix)
        assert _state_of(agg) == _state_of(fresh)
        assert agg.snapshot(matrix) == fresh.snapshot(matrix)
    assert deltas > 50
    assert agg.rebuilds == 1  # every delta was folded in, never recounted


def _cluster(extra=()):
    nodes = [
        k8s.node(f"node-{i}", labels={POOL: "general" if i < 6 else "gpu", ZONE: "z1"})
        for i in range(1, 9)
    ]
    proxy = k8s.daemonset("kube-proxy", tolerations=[k8s.toleration()])
    agent = k8s.daemonset("log-agent", "logging", tolerations=[k8s.toleration()])
    objs = [*nodes, proxy, agent, k8s.controller_revision(proxy, 1, "h1")]
    objs.append(k8s.controller_revision(agent, 1, "a1"))
    for i in range(1, 9):
        objs.append(k8s.daemon_pod(proxy, f"node-{i}"))
    # log-agent: missing on node-7 and node-8, crash-looping on node-2, healthy elsewhere.
    for i in range(1, 7):
        state = {}
        if i == 2:
            state = {
                "container_state": k8s.waiting("CrashLoopBackOff", "back-off 5m0s"),
                "restarts": 12,
                "last_state": k8s.terminated("OOMKilled", 137),
            }
        objs.append(k8s.daemon_pod(agent, f"node-{i}", **state))
    return [*objs, *extra]


def test_small_cluster_snapshot_is_the_cell_matrix():
    matrix = k8s.build(_cluster())
    data = _recount(matrix)
    assert data["mode"] == "cells" and data["label"] == POOL
    assert data["node_names"] == [f"node-{i}" for i in range(1, 9)]
    assert data["daemonsets"] == [["kube-system", "kube-proxy"], ["logging", "log-agent"]]
    codes = {s["value"]: s["code"] for s in wall.state_table()}
    proxy, agent = data["cells"]
    assert proxy == codes["healthy"] * 8
    assert agent[1] == codes["crash-looping"] and agent[6:] == codes["missing"] * 2
    json.dumps(data)  # it travels in payloads, across Redis in the scale-out setup


def test_exceptions_worst_state_first_with_their_nodes():
    matrix = k8s.build(_cluster())
    data = _recount(matrix)
    codes = {s["code"]: s["value"] for s in wall.state_table()}
    lines = [
        (ns, name, codes[code], nodes, n) for ns, name, code, nodes, n, _ in data["exceptions"]
    ]
    assert lines == [
        ("logging", "log-agent", "missing", ["node-7", "node-8"], 2),
        ("logging", "log-agent", "crash-looping", ["node-2"], 1),
    ]
    assert State.MISSING.severity > State.CRASH_LOOPING.severity
    assert "OOMKilled" in data["exceptions"][1][5] or "back-off" in data["exceptions"][1][5]
    assert data["exception_lines"] == 2 and data["exception_cells"] == 3


def test_big_cluster_snapshot_is_groups_by_daemonset_proportions(monkeypatch):
    monkeypatch.setattr(wall, "CELLS_MAX_NODES", 4)
    matrix = k8s.build(_cluster())
    data = _recount(matrix)
    assert data["mode"] == "groups" and "cells" not in data
    assert data["groups"] == [["general", 5], ["gpu", 3]]
    # tally[DaemonSet][group] = healthy, outdated, progressing, bad, idle
    proxy, agent = data["tally"]
    assert proxy == [[5, 0, 0, 0, 0], [3, 0, 0, 0, 0]]
    assert agent == [[4, 0, 0, 1, 0], [1, 0, 0, 2, 0]]
    # A configured label wins over the default (pool, then zone).
    assert _recount(matrix, ZONE)["groups"] == [["z1", 8]]


def test_group_and_daemonset_caps_keep_the_worst(monkeypatch):
    monkeypatch.setattr(wall, "CELLS_MAX_NODES", 0)
    monkeypatch.setattr(wall, "MAX_GROUPS", 2)
    monkeypatch.setattr(wall, "MAX_DAEMONSETS", 1)
    nodes = [k8s.node(f"n{i}", labels={POOL: f"p{i}"}) for i in range(4)]
    objs = _cluster(extra=nodes)
    data = _recount(k8s.build(objs))
    # 6 groups (general, gpu, p0..p3): the worst one kept, the others merged.
    assert [g[0] for g in data["groups"]] == ["gpu", "+5 more"]
    assert data["groups"][1][1] == 5 + 4
    assert data["daemonsets"] == [["logging", "log-agent"]] and data["hidden_daemonsets"] == 1
    assert len(data["tally"]) == 1 and len(data["tally"][0]) == 2


def test_exception_list_is_capped(monkeypatch):
    monkeypatch.setattr(wall, "MAX_EXCEPTIONS", 1)
    monkeypatch.setattr(wall, "NODES_PER_EXCEPTION", 1)
    data = _recount(k8s.build(_cluster()))
    assert len(data["exceptions"]) == 1 and data["exception_lines"] == 2
    assert data["exceptions"][0][3] == ["node-7"] and data["exceptions"][0][4] == 2


def test_nodes_leaving_joining_and_relabelled_are_followed(monkeypatch):
    monkeypatch.setattr(wall, "RECOUNT_CELLS", 0)
    matrix = k8s.build(_cluster())
    agg = wall.WallAggregate(matrix)
    steps = [
        (DELETED, k8s.node("node-8", labels={POOL: "gpu"})),
        # moved to another pool, and cordoned (a health change: the delta names the node)
        (MODIFIED, k8s.node("node-1", labels={POOL: "gpu"}, unschedulable=True)),
        (ADDED, k8s.node("node-9", labels={POOL: "new"})),
    ]
    for event, obj in steps:
        delta = matrix.apply(event, k8s.to_record(obj))
        agg.apply(matrix, delta)
        assert _state_of(agg) == _state_of(wall.WallAggregate(matrix))
    assert dict(agg.group_size) == {"general": 4, "gpu": 3, "new": 1}
    assert agg.rebuilds == 1


def test_small_clusters_are_recounted_on_every_delta():
    # A label-only change makes no delta at all (no cell changes); small clusters pick it
    # up with the next delta, whatever it is about.
    matrix = k8s.build(_cluster())
    agg = wall.WallAggregate(matrix)
    delta = matrix.apply(MODIFIED, k8s.to_record(k8s.node("node-1", labels={POOL: "gpu"})))
    assert delta.empty
    delta = matrix.apply(ADDED, k8s.to_record(k8s.node("node-10", labels={POOL: "new"})))
    agg.apply(matrix, delta)
    assert agg.group_of["node-1"] == "gpu" and agg.group_of["node-10"] == "new"


def test_a_change_that_bypassed_the_aggregate_is_recounted():
    matrix = k8s.build(_cluster())
    agg = wall.aggregate(matrix)
    matrix.apply(DELETED, k8s.to_record(k8s.node("node-3")))  # nobody told the aggregate
    data = wall.payload_data(matrix, None, {"coverage": 1.0})
    assert "node-3" not in data["node_names"] and agg.rebuilds == 2
    assert data["headline"] == {"coverage": 1.0} and data["revision"] == matrix.revision


def test_delta_payload_carries_the_wall_data():

    matrix = k8s.build(_cluster())
    base = matrix.revision
    delta = matrix.apply(ADDED, k8s.to_record(k8s.node("node-10", labels={POOL: "gpu"})))
    payload = pipeline.delta_payload(ClusterConfig(slug="x", name="x"), matrix, delta)
    data = payload["wall"]
    assert matrix.revision == base + 1 and data["revision"] == matrix.revision
    assert "node-10" in data["node_names"] and data["headline"]["nodes"] == 9
    json.dumps(payload)
