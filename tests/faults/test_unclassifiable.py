"""An object the engine cannot classify (an exception while computing one of its cells, from
a shape no decoder foresaw) is left out as if deleted, counted with its kind, namespace and
name, logged once, and tried again when a new version arrives; every other cell is computed
as usual. The records below are bent by hand into what the engine cannot handle: that is
the point of the test, since every real input known to do this is fixed."""

from __future__ import annotations

import logging

import msgspec

from dashboard.coverage.matrix import ADDED, MODIFIED
from dashboard.coverage.states import State
from tests.helpers import k8s

NODES = ("node-1", "node-2", "node-3")


def _cluster(min_ready_seconds: int = 30):
    ds = k8s.daemonset("agent", min_ready_seconds=min_ready_seconds)
    objs = [ds, *(k8s.node(n) for n in NODES)]
    pods = [k8s.daemon_pod(ds, n, ready_since=k8s.ts(-3600)) for n in NODES]
    return ds, objs, pods


def _bent(record, **changes):
    # msgspec does not check types on replace: the record now holds what no decoder makes.
    return msgspec.structs.replace(record, **changes)


def test_a_pod_that_cannot_be_classified_is_left_out_and_counted(caplog):
    ds, objs, pods = _cluster()
    m = k8s.build(objs)
    good = [k8s.to_record(p) for p in pods]
    bad = _bent(good[1], ready_since=12345)  # parse_time(12345) raises AttributeError
    with caplog.at_level(logging.WARNING, logger="dashboard.coverage.matrix"):
        m.apply_many([(ADDED, good[0]), (ADDED, bad), (ADDED, good[2])])
        m.apply(MODIFIED, _bent(bad, restarts=1, ready_since=54321))  # still bad: no new log
        m.refresh_timed()
    key = k8s.ds_key(ds)
    assert m.cells[("node-1", key)].state is State.HEALTHY
    assert m.cells[("node-3", key)].state is State.HEALTHY
    assert m.cells[("node-2", key)].state is State.MISSING  # as if the pod were not there
    [(object_key, item)] = m.unclassifiable.items()
    assert object_key == ("Pod", bad.key)
    assert (item.kind, item.namespace, item.name) == ("Pod", bad.namespace, bad.name)
    assert item.reason.startswith("cannot be classified: AttributeError")
    logged = [r for r in caplog.records if "cannot be classified" in r.getMessage()]
    assert len(logged) == 1 and bad.name in logged[0].getMessage()

    m.apply(MODIFIED, good[1])  # a fixed version arrives
    assert m.cells[("node-2", key)].state is State.HEALTHY
    assert m.unclassifiable == {}


def test_a_daemonset_that_cannot_be_classified_leaves_its_column_not_its_pods():
    ds, objs, pods = _cluster()
    other = k8s.daemonset("other")
    m = k8s.build([*objs, other, *(k8s.daemon_pod(other, n) for n in NODES)])
    bad = _bent(k8s.to_record(ds), min_ready_seconds="thirty")  # `"thirty" <= 0` raises
    m.apply_many([(MODIFIED, bad), *((ADDED, k8s.to_record(p)) for p in pods)])
    assert list(m.unclassifiable) == [("DaemonSet", bad.key)]
    assert bad.key not in m.daemonsets
    assert all(m.cells[(n, k8s.ds_key(other))].state is State.HEALTHY for n in NODES)
    # Replaced by a relist without it: it is gone, and no longer counted.
    m.replace("DaemonSet", [k8s.to_record(other)])
    assert m.unclassifiable == {}


def test_a_node_that_cannot_be_targeted_leaves_its_row():
    ds, objs, pods = _cluster(min_ready_seconds=0)
    m = k8s.build([*objs, *pods])
    good = k8s.to_record(k8s.node("node-2"))
    m.apply(MODIFIED, _bent(good, taints=(None,)))  # None.effect raises
    assert list(m.unclassifiable) == [("Node", "node-2")]
    assert "node-2" not in m.nodes
    assert {n for n, _ in m.cells} == {"node-1", "node-3"}
    m.apply(MODIFIED, good)
    assert m.unclassifiable == {} and ("node-2", k8s.ds_key(ds)) in m.cells
