"""Matrix deltas (pod → one cell, node → its row, DaemonSet → its column), revisions,
replace(), and the summaries built from the matrix's counters."""

from __future__ import annotations

import pytest

from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED, Delta
from dashboard.coverage.states import State
from dashboard.coverage.summary import (
    cluster_summary,
    daemonset_summary,
    node_summary,
    status_check,
)
from tests.helpers.k8s import (
    build,
    daemon_pod,
    daemonset,
    ds_key,
    node,
    notready_taints,
    plain_pod,
    taint,
    terminated,
    to_record,
    waiting,
)

NODES = ["node-a", "node-b", "node-c"]


@pytest.fixture
def cluster():
    agent = daemonset("agent")
    logs = daemonset("logs", "logging", node_selector={"pool": "apps"})
    nodes = [node(n, labels={"pool": "apps" if n != "node-c" else "infra"}) for n in NODES]
    pods = [daemon_pod(agent, n) for n in NODES] + [daemon_pod(logs, n) for n in NODES[:2]]
    objs = [agent, logs, *nodes, *pods]
    return {"agent": agent, "logs": logs, "nodes": nodes, "pods": pods, "objs": objs}


def test_initial_build(cluster):
    m = build(cluster["objs"])
    assert len(m.cells) == 6
    states = {k: c.state for k, c in m.cells.items()}
    assert states[("node-c", "logging/logs")] is State.NOT_TARGETED
    assert sum(s is State.HEALTHY for s in states.values()) == 5


def test_pod_event_changes_only_its_cell(cluster):
    m = build(cluster["objs"])
    agent = cluster["agent"]
    before = dict(m.cells)
    crashing = daemon_pod(
        agent,
        "node-b",
        container_state=waiting("CrashLoopBackOff"),
        restarts=4,
        last_state=terminated("Error", 1),
    )
    delta = m.apply(MODIFIED, to_record(crashing))
    key = ("node-b", ds_key(agent))
    assert list(delta.cells) == [key]
    assert delta.cells[key].state is State.CRASH_LOOPING
    assert {k: v for k, v in m.cells.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    assert not (delta.added_nodes or delta.changed_nodes or delta.changed_daemonsets)


def test_pod_delete_makes_its_cell_missing(cluster):
    m = build(cluster["objs"])
    agent = cluster["agent"]
    delta = m.apply(DELETED, to_record(daemon_pod(agent, "node-a")))
    key = ("node-a", ds_key(agent))
    assert list(delta.cells) == [key] and delta.cells[key].state is State.MISSING


def test_non_daemon_pod_event_changes_nothing(cluster):
    m = build(cluster["objs"])
    rev = m.revision
    delta = m.apply(ADDED, to_record(plain_pod("web", "node-a")))
    assert delta.empty and delta.revision == rev == m.revision


def test_node_event_changes_only_its_row(cluster):
    m = build(cluster["objs"])
    tainted = node(
        "node-a", labels={"pool": "apps"}, taints=[taint("dedicated", "NoSchedule", "db")]
    )
    delta = m.apply(MODIFIED, to_record(tainted))
    assert {k[0] for k in delta.cells} == {"node-a"}
    assert set(delta.cells) == {("node-a", "kube-system/agent"), ("node-a", "logging/logs")}
    assert all(c.state is State.MISSCHEDULED for c in delta.cells.values())
    # Only the taints changed, not the node's health badge.
    assert delta.changed_nodes == []


def test_node_health_change_is_reported(cluster):
    m = build(cluster["objs"])
    cordoned = node(
        "node-b",
        labels={"pool": "apps"},
        unschedulable=True,
        taints=[taint("node.kubernetes.io/unschedulable")],
    )
    delta = m.apply(MODIFIED, to_record(cordoned))
    assert delta.changed_nodes == ["node-b"]
    assert delta.cells == {}  # cordoned nodes stay targeted, pods stay healthy
    assert m.health["node-b"].word == "Ready,SchedulingDisabled"


def test_node_notready_moves_row_to_misscheduled(cluster):
    m = build(cluster["objs"])
    sick = node("node-a", labels={"pool": "apps"}, ready="False", taints=notready_taints())
    delta = m.apply(MODIFIED, to_record(sick))
    assert delta.changed_nodes == ["node-a"]
    assert {k: c.state for k, c in delta.cells.items()} == {
        ("node-a", "kube-system/agent"): State.MISSCHEDULED,
        ("node-a", "logging/logs"): State.MISSCHEDULED,
    }
    assert cluster_summary(m).nodes_not_ready == 1


def test_daemonset_event_changes_only_its_column(cluster):
    m = build(cluster["objs"])
    widened = daemonset("logs", "logging")  # no nodeSelector any more
    delta = m.apply(MODIFIED, to_record(widened))
    assert {k[1] for k in delta.cells} == {"logging/logs"}
    assert delta.cells == {("node-c", "logging/logs"): m.cells[("node-c", "logging/logs")]}
    assert m.cells[("node-c", "logging/logs")].state is State.MISSING
    assert delta.changed_daemonsets == ["logging/logs"]


def test_node_added_and_deleted(cluster):
    m = build(cluster["objs"])
    delta = m.apply(ADDED, to_record(node("node-d", labels={"pool": "apps"})))
    assert delta.added_nodes == ["node-d"]
    assert {k: c.state for k, c in delta.cells.items()} == {
        ("node-d", "kube-system/agent"): State.MISSING,
        ("node-d", "logging/logs"): State.MISSING,
    }
    delta = m.apply(DELETED, to_record(cluster["nodes"][0]))
    assert delta.removed_nodes == ["node-a"]
    assert delta.cells == {("node-a", "kube-system/agent"): None, ("node-a", "logging/logs"): None}
    assert not any(k[0] == "node-a" for k in m.cells)
    assert "node-a" not in m.node_counts
    assert m.ds_counts["kube-system/agent"]["targeted"] == 3  # b, c, d


def test_daemonset_deleted_removes_column(cluster):
    m = build(cluster["objs"])
    delta = m.apply(DELETED, to_record(cluster["logs"]))
    assert delta.removed_daemonsets == ["logging/logs"]
    assert delta.cells == {(n, "logging/logs"): None for n in NODES}
    assert not any(k[1] == "logging/logs" for k in m.cells)
    assert "logging/logs" not in m.ds_counts
    # Deleting again is a no-op.
    rev = m.revision
    assert m.apply(DELETED, to_record(cluster["logs"])).empty and m.revision == rev


def test_revision_is_monotonic_and_unchanged_by_noops(cluster):
    m = build([])
    seen = [m.revision]
    for obj in cluster["objs"]:
        delta = m.apply(ADDED, to_record(obj))
        assert delta.revision == m.revision
        seen.append(m.revision)
    assert seen == sorted(seen) and seen[-1] > seen[0]
    rev = m.revision
    for obj in cluster["objs"]:
        delta = m.apply(MODIFIED, to_record(obj))
        assert delta.empty, f"re-applying an unchanged {obj['kind']} produced {delta}"
        assert delta.revision == rev == m.revision


def test_unknown_event_type_is_rejected(cluster):
    m = build(cluster["objs"])
    with pytest.raises(ValueError, match="unknown event type"):
        m.apply("BOOKMARK", to_record(cluster["nodes"][0]))


def test_replace_emits_exactly_the_differences(cluster):
    m = build(cluster["objs"])
    agent, logs = cluster["agent"], cluster["logs"]
    pods = [
        daemon_pod(agent, "node-a"),  # unchanged
        daemon_pod(agent, "node-b", ready=False, container_ready=False),  # changed
        # agent on node-c: gone
        daemon_pod(logs, "node-a"),
        daemon_pod(logs, "node-b"),
    ]
    rev = m.revision
    delta = m.replace("Pod", [to_record(p) for p in pods])
    assert {k: c.state for k, c in delta.cells.items()} == {
        ("node-b", "kube-system/agent"): State.NOT_READY,
        ("node-c", "kube-system/agent"): State.MISSING,
    }
    assert m.revision == rev + 1
    fresh = build([agent, logs, *cluster["nodes"], *pods])
    assert m.cells == fresh.cells
    assert m.ds_counts == fresh.ds_counts
    # Replacing with the same records again changes nothing.
    again = m.replace("Pod", [to_record(p) for p in pods])
    assert again.empty and m.revision == rev + 1


def test_replace_nodes_removes_rows(cluster):
    m = build(cluster["objs"])
    delta = m.replace("Node", [to_record(n) for n in cluster["nodes"][1:]])
    assert delta.removed_nodes == ["node-a"]
    assert set(delta.cells) == {("node-a", "kube-system/agent"), ("node-a", "logging/logs")}
    assert all(v is None for v in delta.cells.values())


def test_delta_merge_keeps_the_last_word():
    a = Delta(1, cells={("n", "d"): None}, added_nodes=["x"], removed_nodes=["y"])
    b = Delta(2, removed_nodes=["x"], added_nodes=["y"])
    a.merge(b)
    assert a.revision == 2 and a.added_nodes == ["y"] and a.removed_nodes == ["x"]


# --------------------------------------------------------------------------- summaries


def _mixed():
    """agent on 4 nodes: healthy, crash-looping, missing, outdated; plus one untargeted."""
    agent = daemonset(
        "agent",
        node_selector={"kubernetes.io/os": "linux"},
        template_generation="2",
        generation=2,
        status={
            "desiredNumberScheduled": 4,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "numberAvailable": 2,
            "numberUnavailable": 2,
            "updatedNumberScheduled": 2,
            "numberMisscheduled": 0,
        },
    )
    nodes = [node(n) for n in ("n1", "n2", "n3", "n4")]
    nodes.append(node("win", labels={"kubernetes.io/os": "windows"}))
    pods = [
        daemon_pod(agent, "n1", template_generation="2"),
        daemon_pod(
            agent,
            "n2",
            template_generation="2",
            container_state=waiting("CrashLoopBackOff"),
            restarts=3,
            last_state=terminated(),
        ),
        daemon_pod(agent, "n4", template_generation="1"),
    ]
    return agent, build([agent, *nodes, *pods])


def test_daemonset_summary_counts_and_coverage():
    agent, m = _mixed()
    s = daemonset_summary(m, ds_key(agent))
    c = s.counts
    assert (c.targeted, c.healthy, c.outdated, c.missing, c.failing, c.crash_looping) == (
        4,
        2,
        1,
        1,
        1,
        1,
    )
    assert c.misscheduled == 0 and c.progressing == 0
    assert c.coverage == 50.0
    assert c.problems == 2
    assert c.states == {
        "healthy": 1,
        "outdated": 1,
        "missing": 1,
        "crash-looping": 1,
        "not-targeted": 1,
    }
    assert s.status.lagging == "" and s.status.mismatches == []
    assert s.rollout_progress == 50.0


def test_status_check_flags_mismatches_and_lag():
    agent, m = _mixed()
    lying = daemonset(
        "agent",
        generation=3,
        observed_generation=2,
        status={
            "desiredNumberScheduled": 5,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 2,
            "numberMisscheduled": 1,
        },
    )
    check = status_check(to_record(lying), m.ds_counts[ds_key(agent)])
    assert "has not observed generation 3 (observedGeneration 2)" in check.lagging
    assert check.mismatches == [
        "desiredNumberScheduled 5 ≠ 4 seen",
        "numberMisscheduled 1 ≠ 0 seen",
    ]


def test_status_check_agrees_on_misscheduled():
    ds = daemonset("agent", status={"numberMisscheduled": 1})
    sick = node("n1", ready="False", taints=notready_taints())
    m = build([ds, sick, daemon_pod(ds, "n1")])
    check = status_check(m.daemonsets[ds_key(ds)], m.ds_counts[ds_key(ds)])
    assert check.mismatches == []
    assert daemonset_summary(m, ds_key(ds)).counts.misscheduled == 1
    assert daemonset_summary(m, ds_key(ds)).counts.coverage is None  # nothing targeted


def test_node_and_cluster_summaries():
    agent, m = _mixed()
    assert node_summary(m, "n2").crash_looping == 1
    assert node_summary(m, "win").targeted == 0
    assert node_summary(m, "n1").coverage == 100.0
    cs = cluster_summary(m)
    assert (cs.nodes, cs.daemonsets, cs.pods, cs.nodes_not_ready) == (5, 1, 3, 0)
    assert cs.counts.coverage == 50.0
    assert cs.worst_daemonsets == [ds_key(agent)]


def test_counters_follow_cell_changes():
    agent, m = _mixed()
    key = ds_key(agent)
    m.apply(ADDED, to_record(daemon_pod(agent, "n3", template_generation="2")))
    m.apply(MODIFIED, to_record(daemon_pod(agent, "n2", template_generation="2")))
    c = daemonset_summary(m, key).counts
    assert (c.targeted, c.healthy, c.missing, c.failing) == (4, 4, 0, 0)
    assert c.coverage == 100.0
    assert cluster_summary(m).worst_daemonsets == []
