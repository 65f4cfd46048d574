"""Identical exits grouped across a DaemonSet's nodes (dashboard/coverage/exits.py), and
the matrix's running count of them as cells change."""

from __future__ import annotations

from dashboard.coverage.exits import ExitKey
from dashboard.coverage.matrix import DELETED, MODIFIED
from dashboard.coverage.report import to_json
from tests.helpers.k8s import (
    build,
    daemon_pod,
    daemonset,
    ds_key,
    node,
    terminated,
    to_record,
    ts,
    waiting,
)


def crashing(ds, node_name: str, reason="OOMKilled", code=137, restarts=3, finished=-300):
    return daemon_pod(
        ds,
        node_name,
        container_state=waiting("CrashLoopBackOff", "back-off 5m0s restarting"),
        restarts=restarts,
        last_state=terminated(reason, code, finished=ts(finished)),
    )


def _cluster():
    agent = daemonset("agent")
    nodes = [node(f"node-{i}") for i in range(6)]
    pods = [
        # Four OOMKilled crash loops, each with its own age and restart count: the cells'
        # reasons differ, the exit is the same.
        *(crashing(agent, f"node-{i}", restarts=i + 1, finished=-60 * (i + 1)) for i in range(4)),
        crashing(agent, "node-4", reason="Error", code=1),
        daemon_pod(agent, "node-5"),
    ]
    return agent, nodes, pods


def test_failing_cells_are_grouped_by_their_exit_commonest_first():
    agent, nodes, pods = _cluster()
    m = build([agent, *nodes, *pods])
    reasons = {m.cells[(f"node-{i}", ds_key(agent))].reason for i in range(4)}
    assert len(reasons) == 4  # what made the DaemonSet page list them apart
    oom, error = m.exit_groups(ds_key(agent))
    container = pods[0]["spec"]["containers"][0]["name"]
    assert oom.key == ExitKey(container, "OOMKilled", 137, 0)
    assert oom.nodes == ("node-0", "node-1", "node-2", "node-3")
    assert oom.words == "same exit (137, OOMKilled) on 4 nodes"
    assert error.words == "same exit (1, Error) on 1 node"
    assert m.ds_exits[ds_key(agent)] == {oom.key: 4, error.key: 1}


def test_the_running_count_follows_cells_that_recover_or_leave():
    agent, nodes, pods = _cluster()
    m = build([agent, *nodes, *pods])
    key = m.exit_groups(ds_key(agent))[0].key
    healed = daemon_pod(agent, "node-0")
    healed["metadata"].update(name=pods[0]["metadata"]["name"], uid=pods[0]["metadata"]["uid"])
    m.apply(MODIFIED, to_record(healed))
    assert m.ds_exits[ds_key(agent)][key] == 3
    m.apply(DELETED, to_record(nodes[1]))
    assert m.ds_exits[ds_key(agent)][key] == 2
    m.apply(DELETED, to_record(agent))
    assert ds_key(agent) not in m.ds_exits


def test_a_signalled_exit_is_worded_by_its_signal():
    assert ExitKey("c", "Error", 137, 9).words == "exit (signal 9, Error)"


def test_restore_rebuilds_the_counts_from_the_cells():
    from dashboard.coverage.matrix import Matrix

    agent, nodes, pods = _cluster()
    m = build([agent, *nodes, *pods])
    copy = Matrix()
    copy.restore(
        revision=m.revision,
        nodes=m.nodes,
        health=m.health,
        daemonsets=m.daemonsets,
        pods=m.pods,
        revisions=m.revisions,
        cells=m.cells,
        eligibility=m.eligibilities(),
        current_hash=m.current_hashes(),
        ds_counts=m.ds_counts,
        node_counts=m.node_counts,
    )
    assert copy.ds_exits == m.ds_exits


def test_coverage_json_lists_each_daemonsets_exits():
    agent, nodes, pods = _cluster()
    doc = to_json(build([agent, *nodes, *pods]))
    (ds,) = doc["daemonsets"]
    first = ds["exits"][0]
    assert (first["reason"], first["exit_code"], first["signal"], first["count"]) == (
        "OOMKilled",
        137,
        0,
        4,
    )
    assert first["nodes"] == ["node-0", "node-1", "node-2", "node-3"]
