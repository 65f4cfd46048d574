"""Preemption advice for a daemon the scheduler could not fit: who it could evict, why it
cannot, and which PriorityClass would let it in (the scheduler's victim selection)."""

from __future__ import annotations

import copy

from dashboard.coverage.capacity import Member
from dashboard.coverage.matrix import ADDED, DELETED
from dashboard.coverage.preemption import victims
from dashboard.coverage.records import decode
from dashboard.coverage.states import State
from tests.helpers.k8s import build, daemon_pod, daemonset, ds_key, node, plain_pod

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
