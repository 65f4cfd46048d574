"""Preemption advice for a daemon the scheduler could not fit: who it could evict, why it
cannot, and which PriorityClass would let it in (the scheduler's victim selection)."""

from __future__ import annotations

import copy

from dashboard.coverage.capacity import Member
from dashboard.coverage.matrix import ADDED, DELETED
from dashboard.coverage.preemption import victims
from dashboard.coverage.records import decode
from dashboard.coverage.states import State
from tests.helpers.k8s import (
    build,
    daemon_pod,
    daemonset,
    ds_key,
    mirror_pod,
    node,
    plain_pod,
    to_record,
)

INSUFFICIENT = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def _cluster(daemon_priority=0, class_name="", policy="", holder_priority=0, daemon_cpu="500m"):
    ds = daemonset("agent")
    ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": daemon_cpu}}
    full = node("node-a")
    full["status"]["allocatable"] = {"cpu": "1", "memory": "4Gi", "pods": "110"}
    pending = daemon_pod(
        ds, "node-a", bound=False, phase="Pending", unschedulable_message=INSUFFICIENT
    )
    # What the API server's Priority admission resolved when it created the pod.
    pending["spec"]["priority"] = daemon_priority
    pending["spec"].pop("priorityClassName", None)
    if class_name:
        pending["spec"]["priorityClassName"] = class_name
    if policy:
        pending["spec"]["preemptionPolicy"] = policy
    others = []
    for i, cpu in enumerate(("300m", "400m", "100m")):
        p = plain_pod(f"app-{i}", "node-a")
        p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
        p["spec"]["priority"] = holder_priority
        others.append(p)
    return ds, [ds, full, pending, *others]


def _reason(objects, extra=()):
    ds = objects[0]
    m = build([*objects, *extra])
    cell = m.cells[("node-a", ds_key(ds))]
    assert cell.state is State.UNSCHEDULABLE
    return m, cell.reason


def priority_class(name, value, policy=None):
    obj = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
        "value": value,
    }
    if policy:
        obj["preemptionPolicy"] = policy
    return obj


def test_without_a_priority_class_the_daemon_cannot_preempt_but_node_critical_would():
    _, objects = _cluster()
    _, reason = _reason(objects)
    # The scheduler's reprieve: all three removed, then kept back highest first while the
    # daemon still fits: app-0 (300m) stays, app-1 (400m) must go, app-2 (100m) stays.
    assert reason.endswith(
        "preemption: no PriorityClass (priority 0): the daemon cannot preempt (the pods "
        "holding the node have priority 0 (3 pods)); system-node-critical (2000001000) "
        "would preempt 1 pod (default/app-1)"
    )


def test_a_class_above_the_holders_could_preempt():
    _, objects = _cluster(daemon_priority=1000, class_name="agents")
    _, reason = _reason(objects)
    assert reason.endswith(
        "preemption: PriorityClass agents (priority 1000): the daemon could preempt 1 pod "
        "(default/app-1)"
    )


def test_preemption_policy_never_is_said():
    _, objects = _cluster(daemon_priority=1000, class_name="polite", policy="Never")
    _, reason = _reason(objects)
    assert reason.endswith(
        "preemption: PriorityClass polite (priority 1000) has preemptionPolicy Never: the "
        "daemon waits for room, it never preempts"
    )


def test_holders_of_the_highest_priority_leave_no_class_that_would():
    _, objects = _cluster(holder_priority=2000001000)
    _, reason = _reason(objects)
    assert reason.endswith(
        "the daemon cannot preempt (the pods holding the node have priority 2000001000 "
        "(3 pods)); no PriorityClass would"
    )


def test_no_priority_helps_a_daemon_larger_than_the_node():
    _, objects = _cluster(daemon_cpu="2")
    _, reason = _reason(objects)
    assert reason.endswith(
        "preemption cannot help: the daemon asks for more cpu than the node's allocatable"
    )


def test_the_lowest_watched_class_that_would_is_named_and_follows_the_watch():
    ds, objects = _cluster()
    classes = [
        priority_class("batch-high", 1000),
        priority_class("batch-higher", 5000),
        # For pods that may move to another node: no advice for a daemon.
        priority_class("system-cluster-critical", 2000000000),
    ]
    m, reason = _reason(objects, classes)
    assert reason.endswith(
        "; system-node-critical (2000001000) would preempt 1 pod (default/app-1), so would "
        "batch-high (1000)"
    )
    # A class that never preempts is no answer; a deleted class is gone from the advice.
    m.apply(ADDED, decode("PriorityClass", priority_class("quiet", 500, "Never")))
    assert "quiet" not in m.cells[("node-a", ds_key(ds))].reason
    m.apply(DELETED, decode("PriorityClass", priority_class("batch-high", 1000)))
    assert m.cells[("node-a", ds_key(ds))].reason.endswith(
        "system-node-critical (2000001000) would preempt 1 pod (default/app-1), so would "
        "batch-higher (5000)"
    )


def test_victims_remove_all_lower_then_reprieve_highest_first():
    members = {
        "a": Member("n", (("cpu", 300),), False, 10),
        "b": Member("n", (("cpu", 300),), False, 5),
        "c": Member("n", (("cpu", 300),), False, 0),
        "same": Member("n", (("cpu", 900),), False, 100),  # not lower: never a victim
    }
    # free 100m, need 400m: removing a, b, c gives 1000m; a (priority 10) is kept back
    # first (700m left), so is b (400m left), c can not be (100m).
    assert victims({"cpu": 400}, {"cpu": 100}, members, 100) == ["c"]
    # need 500m: a stays (700m), b cannot (400m), c cannot either.
    assert victims({"cpu": 500}, {"cpu": 100}, members, 100) == ["b", "c"]
    assert victims({"cpu": 500}, {"cpu": 100}, members, 1) is None  # only c is lower: 400m
    assert victims({"cpu": 1000}, {"cpu": 100}, members, 100) == ["a", "b", "c"]
    assert victims({"cpu": 1100}, {"cpu": 100}, members, 100) is None
    assert victims({"cpu": 50}, {"cpu": 100}, members, 100) == []


def test_a_pods_slot_is_a_resource_too():
    members = {f"p{i}": Member("n", (), False, 0) for i in range(3)}
    assert victims({"pods": 1000}, {"pods": 0}, members, 1) == ["p2"]


def test_holders_and_advice_follow_a_deleted_holder():
    ds, objects = _cluster()
    m, _ = _reason(objects)
    gone = copy.deepcopy(objects[4])  # app-1, 400m
    m.apply(DELETED, decode("Pod", gone))
    reason = m.cells[("node-a", ds_key(ds))].reason
    # 600m free now: the scheduler's next try fits it, there is nothing to advise.
    assert reason.endswith("→ 600m free; most held by default/app-0 300m, default/app-2 100m")
    assert "would preempt" not in reason


# --------------------------------------------------------------------------- host ports

NO_FREE_PORTS = (
    "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. "
    "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
)
PORT = [{"name": "metrics", "containerPort": 9100, "hostPort": 9100}]


def _port_cluster(daemon_priority=0, class_name="", policy="", holder=None):
    """node-a, where `holder` (a pod manifest) holds TCP/9100 and the agent's pod waits."""
    ds = daemonset("agent", ports=PORT)
    pending = daemon_pod(
        ds, "node-a", bound=False, phase="Pending", unschedulable_message=NO_FREE_PORTS
    )
    pending["spec"]["priority"] = daemon_priority
    pending["spec"].pop("priorityClassName", None)
    if class_name:
        pending["spec"]["priorityClassName"] = class_name
    if policy:
        pending["spec"]["preemptionPolicy"] = policy
    if holder is None:
        holder = plain_pod("exporter", "node-a")
        holder["spec"]["containers"][0]["ports"] = [{"containerPort": 9100, "hostPort": 9100}]
    return ds, [ds, node("node-a"), pending, holder]


def _port_cell(objects, extra=()):
    ds = objects[0]
    m = build([*objects, *extra])
    cell = m.cells[("node-a", ds_key(ds))]
    assert cell.state is State.UNSCHEDULABLE and cell.port_conflict
    return m, cell


def test_a_port_holder_of_equal_priority_cannot_be_preempted_but_node_critical_would():
    _, objects = _port_cluster()
    _, cell = _port_cell(objects)
    assert "TCP/9100 held by pod default/exporter" in cell.reason
    advice = (
        "preemption: no PriorityClass (priority 0): the daemon cannot preempt the 1 pod "
        "holding TCP/9100 (priority 0); system-node-critical (2000001000) would preempt it "
        "(default/exporter)"
    )
    assert cell.reason.endswith(advice) and cell.preemption == advice
    (held,) = cell.port_holders
    assert (held.pod, held.ports, held.priority, held.static) == (
        "default/exporter",
        ("TCP/9100",),
        0,
        False,
    )


def test_a_class_above_the_port_holder_could_preempt_it_and_the_json_says_so():
    from dashboard.coverage.report import to_json

    _, objects = _port_cluster(daemon_priority=1000, class_name="agents")
    m, cell = _port_cell(objects, [priority_class("agents", 1000)])
    assert cell.reason.endswith(
        "preemption: PriorityClass agents (priority 1000): the daemon could preempt the 1 pod "
        "holding TCP/9100 (default/exporter)"
    )
    out = next(c for c in to_json(m)["cells"] if c["daemonset"] == "kube-system/agent")
    assert out["port_holders"] == [
        {"pod": "default/exporter", "ports": ["TCP/9100"], "priority": 0, "static": False}
    ]
    assert out["preemption"] == cell.preemption
    assert "capacity" not in out  # a port is no resource shortage


def test_a_lower_class_of_the_cluster_is_named_after_node_critical():
    holder = plain_pod("exporter", "node-a")
    holder["spec"]["containers"][0]["ports"] = [{"containerPort": 9100, "hostPort": 9100}]
    holder["spec"]["priority"] = 100
    _, objects = _port_cluster(holder=holder)
    _, cell = _port_cell(objects, [priority_class("low", 50), priority_class("agents", 1000)])
    assert cell.reason.endswith(
        "cannot preempt the 1 pod holding TCP/9100 (priority 100); system-node-critical "
        "(2000001000) would preempt it (default/exporter), so would agents (1000)"
    )


def test_a_port_holder_at_node_critical_leaves_no_class_that_would():
    rival = daemonset("rival", "monitoring", ports=PORT)
    held = daemon_pod(rival, "node-a")
    held["spec"]["priority"] = 2000001000
    _, objects = _port_cluster(holder=held)
    _, cell = _port_cell([*objects, rival])
    assert f"held by DaemonSet monitoring/rival (pod {held['metadata']['name']})" in cell.reason
    assert cell.reason.endswith("(priority 2000001000); no PriorityClass would")


def test_a_static_pod_holding_the_port_cannot_be_preempted():
    static = mirror_pod("node-exporter", "node-a", host_ports=[9100])
    _, objects = _port_cluster(daemon_priority=2000001000, class_name="system-node-critical")
    objects[-1] = static
    _, cell = _port_cell(objects)
    assert cell.reason.endswith(
        "preemption cannot free TCP/9100: static pod kube-system/node-exporter-node-a holds it, "
        "and the kubelet runs a static pod from a file on the node (evicting its mirror pod "
        "does not stop it): move the port of one of the two"
    )
    assert cell.port_holders[0].static


def test_preemption_policy_never_waits_for_the_port():
    _, objects = _port_cluster(daemon_priority=1000, class_name="polite", policy="Never")
    _, cell = _port_cell(objects)
    assert cell.reason.endswith(
        "preemption: PriorityClass polite (priority 1000) has preemptionPolicy Never: the "
        "daemon waits for TCP/9100 to be released, it never preempts"
    )


def test_the_port_advice_leaves_with_the_holder():
    _, objects = _port_cluster()
    m, _ = _port_cell(objects)
    m.apply(DELETED, to_record(objects[-1]))
    cell = m.cells[("node-a", "kube-system/agent")]
    assert not cell.port_conflict and not cell.port_holders and not cell.preemption
