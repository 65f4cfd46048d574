"""Rollout budget and blockers (dashboard/coverage/rollout.py, docs/revisions.md).

The arithmetic is the DaemonSet controller's (kubernetes v1.36 pkg/controller/daemon:
util.UnavailableCount / SurgeCount, updatedDesiredNodeCounts; apimachinery
intstr.GetScaledValueFromIntOrPercent with roundUp=true) — not the Deployment's, which
rounds maxUnavailable down."""

from __future__ import annotations

import copy

import pytest

from dashboard.coverage.matrix import DELETED
from dashboard.coverage.records import decode
from dashboard.coverage.rollout import (
    BudgetError,
    budget_limits,
    column_rollout,
    rollout_of,
    scaled,
    under_way,
)
from tests.helpers.k8s import (
    build,
    container_status,
    controller_revision,
    daemon_pod,
    daemonset,
    ds_key,
    node,
    taint,
    terminated,
    to_record,
    toleration,
    ts,
    waiting,
)

# ---------------------------------------------------------------- the arithmetic


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        (1, 10, 1),
        (0, 10, 0),
        (5, 3, 5),  # an absolute number is not capped by the total
        ("25%", 10, 3),  # 2.5 rounds UP (a Deployment's maxUnavailable would give 2)
        ("10%", 5, 1),  # 0.5 → 1
        ("1%", 1, 1),  # 0.01 → 1: any non-zero percentage of a non-empty set is at least 1
        ("33%", 3, 1),  # 0.99 → 1
        ("34%", 3, 2),  # 1.02 → 2
        ("100%", 7, 7),
        ("0%", 100, 0),
        ("50%", 0, 0),  # nothing desired
        ("+5%", 100, 5),  # strconv.Atoi accepts a sign
        ("-5%", 100, -5),  # … and scales it (the API server's validation refuses it first)
        ("7%", 100, 7),  # 7*100/100 exactly in float64: no spurious 8
        ("29%", 100, 29),
        ("57%", 100, 57),
    ],
)
def test_scaled_rounds_up_like_the_daemonset_controller(value, total, expected):
    assert scaled(value, total) == expected


@pytest.mark.parametrize("value", ["5", "5 %", " 5%", "1_0%", "5.5%", "%", "abc%", None, True])
def test_scaled_refuses_what_intstr_refuses(value):
    with pytest.raises(BudgetError):
        scaled(value, 10)


def _ds(**kw):
    return decode("DaemonSet", daemonset("agent", **kw))


@pytest.mark.parametrize(
    ("kw", "desired", "expected"),
    [
        ({"max_unavailable": 1, "max_surge": 0}, 10, (1, 0, False)),
        ({"max_unavailable": "25%", "max_surge": 0}, 10, (3, 0, False)),
        ({"max_unavailable": 0, "max_surge": "10%"}, 5, (0, 1, False)),
        ({"max_unavailable": 0, "max_surge": 2}, 5, (0, 2, False)),
        # both 0: "impossible configuration", the controller accepts 1 unavailable
        ({"max_unavailable": 0, "max_surge": 0}, 10, (1, 0, True)),
        ({"max_unavailable": "0%", "max_surge": "0%"}, 10, (1, 0, True)),
        # … but only when some node should run the daemon
        ({"max_unavailable": 0, "max_surge": 0}, 0, (0, 0, False)),
        ({"max_unavailable": "10%", "max_surge": 0}, 0, (0, 0, False)),
        # OnDelete has no budget: 0 and 0, defaulted like any other
        ({"strategy": "OnDelete"}, 4, (1, 0, True)),
    ],
)
def test_budget_limits(kw, desired, expected):
    assert budget_limits(_ds(**kw), desired) == expected


def test_absent_max_surge_is_zero_and_absent_max_unavailable_is_one():
    obj = daemonset("agent")
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate"}  # apps/v1 defaults apply
    assert budget_limits(decode("DaemonSet", obj), 8) == (1, 0, False)


# ---------------------------------------------------------------- what holds it

NODES = ["node-1", "node-2", "node-3", "node-4"]


def _rolling(image: str = "registry.k8s.io/agent:v2", **kw):
    """A DaemonSet on revision 2 (image v2) whose revision 1 ran image v1."""
    ds = daemonset("agent", image=image, template_generation="2", generation=2, **kw)
    old = copy.deepcopy(ds)
    old["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.k8s.io/agent:v1"
    return ds, [controller_revision(old, 1, "aaa111"), controller_revision(ds, 2, "bbb222")]


def _old(ds, n, **kw):
    return daemon_pod(ds, n, revision_hash="aaa111", template_generation="1", **kw)


def _new(ds, n, **kw):
    return daemon_pod(
        ds, n, revision_hash="bbb222", template_generation="2", suffix=f"n{n[-1]}", **kw
    )


def _crashing(ds, n):
    return _new(
        ds,
        n,
        container_state=waiting("CrashLoopBackOff", "back-off 40s restarting failed container"),
        last_state=terminated("Error", 1, finished=ts(-30)),
        restarts=4,
        created=ts(-600),
    )


def test_crash_looping_new_pod_holds_max_unavailable_1():
    ds, revs = _rolling()
    objs = [node(n) for n in NODES] + [ds, *revs]
    objs += [_crashing(ds, "node-1")] + [_old(ds, n) for n in NODES[1:]]
    r = rollout_of(build(objs), ds_key(ds))
    assert r is not None and r.state in ("waiting", "stalled")
    assert [b.node for b in r.blocked_by] == ["node-1"]
    assert r.blocked_by[0].kind == "unavailable"
    assert "crash-looping" in r.blocked_by[0].reason and "exit 1" in r.blocked_by[0].reason
    assert r.budget is not None and (r.budget.used, r.budget.limit, r.budget.remaining) == (1, 1, 0)
    assert (r.desired, r.updated, r.available, r.old_nodes) == (4, 1, 0, 3)
    assert r.headline().startswith("Rollout ")
    assert "on 1 node: node-1 (crash-looping: " in r.headline()
    doc = r.as_json()
    assert doc["blocked_by"][0]["node"] == "node-1"
    assert doc["budget"]["max_unavailable"] == {"spec": 1, "value": 1}


def test_the_same_pods_with_a_larger_budget_are_progressing():
    ds, revs = _rolling(max_unavailable="50%")  # of 4 → 2
    objs = [node(n) for n in NODES] + [ds, *revs]
    objs += [_crashing(ds, "node-1")] + [_old(ds, n) for n in NODES[1:]]
    r = rollout_of(build(objs), ds_key(ds))
    assert r is not None and r.state == "progressing" and r.blocked_by == ()
    assert r.budget is not None and (r.budget.used, r.budget.limit) == (1, 2)


def test_unknown_node_keeping_a_pod_is_named_with_its_condition_since():
    # The DaemonSet tolerates everything, so the Unknown node stays targeted and its pod
    # (not Ready any more) holds the budget; the old pod is replaced at once, and the new
    # one never starts on a dead kubelet.
    ds, revs = _rolling(tolerations=[toleration(operator="Exists")])
    dead = node("node-2", ready="Unknown")
    for c in dead["status"]["conditions"]:
        if c["type"] == "Ready":
            c["lastTransitionTime"] = "2026-12-02T14:02:00Z"
    objs = [node(n) for n in NODES if n != "node-2"] + [dead, ds, *revs]
    objs += [_new(ds, "node-1")]
    objs += [_old(ds, "node-2", ready=False, container_ready=False)]
    objs += [_old(ds, n) for n in ("node-3", "node-4")]
    r = rollout_of(build(objs), ds_key(ds))
    assert r is not None and r.state in ("waiting", "stalled")
    assert [(b.node, b.kind, b.reason) for b in r.blocked_by] == [
        ("node-2", "node-not-ready", "Unknown since 14:02")
    ]


def test_surge_pod_that_cannot_schedule_holds_max_surge():
    ds, revs = _rolling(max_unavailable=0, max_surge=1)
    objs = [node(n) for n in NODES] + [ds, *revs] + [_old(ds, n) for n in NODES]
    pending = _new(
        ds,
        "node-3",
        bound=False,
        phase="Pending",
        scheduled=False,
        unschedulable_message="0/4 nodes are available: 1 Insufficient memory.",
    )
    pending["status"].pop("containerStatuses", None)
    objs.append(pending)
    r = rollout_of(build(objs), ds_key(ds))
    assert r is not None and r.state in ("waiting", "stalled")
    assert [(b.node, b.kind) for b in r.blocked_by] == [("node-3", "surge-pending")]
    assert r.blocked_by[0].reason.startswith("new pod unschedulable: ")
    assert "Insufficient memory" in r.blocked_by[0].reason
    assert r.budget is not None and r.budget.as_json()["holds"] == "surge"


def test_complete_when_every_node_runs_the_current_template_and_is_available():
    ds, revs = _rolling()
    objs = [node(n) for n in NODES] + [ds, *revs] + [_new(ds, n) for n in NODES]
    r = rollout_of(build(objs), ds_key(ds))
    assert r is not None and r.state == "complete" and not r.in_flight
    assert (r.updated, r.available, r.desired) == (4, 4, 4)


def test_on_delete_names_the_nodes_on_the_old_template():
    ds, revs = _rolling(strategy="OnDelete")
    objs = [node(n) for n in NODES] + [ds, *revs]
    objs += [_new(ds, "node-1"), _old(ds, "node-2"), _old(ds, "node-3"), _new(ds, "node-4")]
    r = rollout_of(build(objs), ds_key(ds))
    assert r is not None and r.state == "on-delete" and r.budget is None
    assert [b.node for b in r.blocked_by] == ["node-2", "node-3"]
    assert r.headline() == (
        "OnDelete: 2 nodes still run an older template (node-2, node-3); "
        "only deleting their pods updates them"
    )


def test_since_progress_is_the_newest_current_pod_event():
    ds, revs = _rolling()
    objs = [node(n) for n in NODES] + [ds, *revs]
    objs += [_crashing(ds, "node-1")] + [_old(ds, n) for n in NODES[1:]]
    r = rollout_of(build(objs), ds_key(ds))
    # the crash-looping pod was created 600 s before the fixed clock, never Ready since
    assert r is not None and r.since_progress == pytest.approx(600, abs=1)
    assert r.state == "stalled"  # waiting, and no progress for 5 minutes or more


def test_container_status_helper_still_shapes_a_ready_pod():
    # guards the builders the tests above rely on
    assert container_status("agent", {"running": {}}, ready=True)["ready"] is True


# ---------------------------------------------------------------- under way, O(1)


def _with_a_misscheduled_pod(pod_of):
    """Four targeted nodes on the current template and a tainted fifth (not targeted any
    more) still running the pod `pod_of` makes."""
    ds, revs = _rolling()
    objs = [node(n) for n in NODES] + [node("node-5", taints=[taint("dedicated")])]
    objs += [ds, *revs] + [_new(ds, n) for n in NODES] + [pod_of(ds, "node-5")]
    m = build(objs)
    assert m.cells[("node-5", ds_key(ds))].state.value == "misscheduled"
    return m, ds_key(ds)


def test_a_current_pod_where_none_is_wanted_is_no_rollout_under_way():
    # Counting every misscheduled cell as "may run an older template" walked such columns
    # on every delta (the heads and the wall's rollout lines).
    m, key = _with_a_misscheduled_pod(_new)
    assert not under_way(m, key)
    r = rollout_of(m, key)
    assert r is not None and r.old_nodes == 0  # the full walk agrees
    assert column_rollout(m, key).state == ""


def test_an_older_pod_where_none_is_wanted_is_still_seen_under_way():
    m, key = _with_a_misscheduled_pod(_old)
    assert under_way(m, key)
    r = rollout_of(m, key)
    assert r is not None and r.old_nodes == 1


def test_an_old_targeted_pod_is_under_way_and_its_update_settles_it():
    ds, revs = _rolling()
    objs = [node(n) for n in NODES] + [ds, *revs]
    objs += [_new(ds, n) for n in NODES[:3]] + [_old(ds, "node-4")]
    m = build(objs)
    key = ds_key(ds)
    assert under_way(m, key)
    m.apply(DELETED, to_record(_old(ds, "node-4")))
    m.apply("ADDED", to_record(_new(ds, "node-4")))
    assert not under_way(m, key)
