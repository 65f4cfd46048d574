"""Each row of the decision table (docs/cells.md), driven through `Matrix` from realistic
JSON dicts."""

from __future__ import annotations

import pytest

from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED, Matrix
from dashboard.coverage.states import State
from tests.helpers.k8s import (
    NOW,
    Clock,
    build,
    container_status,
    controller_revision,
    daemon_pod,
    daemonset,
    ds_key,
    node,
    notready_taints,
    plain_pod,
    taint,
    terminated,
    to_record,
    toleration,
    ts,
    waiting,
)

TOLERATE_ALL = [toleration(operator="Exists")]
N = "worker-1"


def cell_of(ds, *objs, node_name=N, clock=None):
    m = build([ds, *objs], clock=clock)
    return m.cells[(node_name, ds_key(ds))]


# --------------------------------------------------------------------------- rows 1–2


def test_row1_not_targeted_names_the_rule():
    ds = daemonset("win-agent", node_selector={"kubernetes.io/os": "windows"})
    cell = cell_of(ds, node(N))
    assert cell.state is State.NOT_TARGETED and not cell.should_run
    assert (
        cell.reason
        == "nodeSelector kubernetes.io/os=windows not matched (node has kubernetes.io/os=linux)"
    )
    assert cell.pod == "" and cell.pods == 0


def test_row2_misscheduled_kept_on_untolerated_noschedule():
    ds = daemonset("agent")
    n = node(N, taints=[taint("dedicated", "NoSchedule", "gpu")])
    cell = cell_of(ds, n, daemon_pod(ds, N))
    assert cell.state is State.MISSCHEDULED and not cell.should_run
    assert cell.reason == "kept, not desired: taint dedicated=gpu:NoSchedule not tolerated"
    assert cell.pod.startswith("agent-")


def test_row2_misscheduled_will_be_deleted_on_selector_mismatch():
    ds = daemonset("agent", node_selector={"pool": "infra"})
    cell = cell_of(ds, node(N, labels={"pool": "apps"}), daemon_pod(ds, N))
    assert cell.state is State.MISSCHEDULED
    assert (
        cell.reason == "will be deleted: nodeSelector pool=infra not matched (node has pool=apps)"
    )


def test_row2_misscheduled_will_be_deleted_on_noexecute():
    ds = daemonset("agent")
    cell = cell_of(ds, node(N, taints=[taint("maintenance", "NoExecute")]), daemon_pod(ds, N))
    assert cell.state is State.MISSCHEDULED
    assert cell.reason.startswith("will be deleted: taint maintenance:NoExecute not tolerated")


def test_notready_node_makes_a_running_pod_misscheduled_not_unavailable():
    ds = daemonset("agent")
    n = node(N, ready="False", taints=notready_taints())
    cell = cell_of(ds, n, daemon_pod(ds, N, ready=False, container_ready=False))
    assert cell.state is State.MISSCHEDULED
    assert (
        cell.reason
        == "kept, not desired: taint node.kubernetes.io/not-ready:NoSchedule not tolerated"
    )
    m = build([ds, n, daemon_pod(ds, N)])
    counts = m.ds_counts[ds_key(ds)]
    assert counts["targeted"] == 0 and counts["misscheduled"] == 1


def test_notready_node_with_tolerating_ds_is_not_ready_with_node_wording():
    ds = daemonset("cni", tolerations=TOLERATE_ALL)
    for ready, word in (("False", "node NotReady"), ("Unknown", "node unreachable")):
        key = (
            "node.kubernetes.io/not-ready" if ready == "False" else "node.kubernetes.io/unreachable"
        )
        n = node(N, ready=ready, taints=notready_taints(key))
        pod = daemon_pod(ds, N, ready=False, container_ready=False)
        cell = cell_of(ds, n, pod)
        assert cell.should_run
        assert (cell.state, cell.reason) == (State.NOT_READY, word)


# --------------------------------------------------------------------------- row 3: missing


@pytest.mark.parametrize(
    ("ds_kwargs", "node_kwargs", "reason"),
    [
        ({}, {}, "eligible but no daemon pod: check the DaemonSet's FailedCreate events"),
        (
            {"generation": 3, "observed_generation": 2},
            {},
            "controller has not observed generation 3 yet (observedGeneration 2)",
        ),
        (
            {},
            {"created": ts(-20)},
            "node joined 20s ago; the controller has not created the pod yet",
        ),
        ({"deleting": True}, {}, "DaemonSet is being deleted: no new pods are created"),
        (
            {"selector": {}},
            {},
            "DaemonSet selector is empty: the controller never syncs it (event SelectingAll)",
        ),
    ],
    ids=["no-explanation", "observedGeneration-lag", "new-node", "ds-deleting", "empty-selector"],
)
def test_row3_missing_with_its_reason(ds_kwargs, node_kwargs, reason):
    ds = daemonset("agent", **ds_kwargs)
    # A pod of another DaemonSet and a non-daemon pod on the node change nothing.
    other = daemonset("other")
    cell = cell_of(ds, other, node(N, **node_kwargs), daemon_pod(other, N), plain_pod("web", N))
    assert cell.state is State.MISSING and cell.should_run
    assert cell.reason.startswith(reason)
    assert cell.pods == 0


def test_row3_missing_after_a_failed_pod_is_being_deleted():
    ds = daemonset("agent")
    failed = daemon_pod(
        ds, N, phase="Failed", reason="OutOfcpu", container_state=terminated(), deleting=True
    )
    cell = cell_of(ds, node(N), failed)
    assert cell.state is State.MISSING
    assert (
        cell.reason
        == f"previous pod {failed['metadata']['name']} failed: OutOfcpu; re-created after back-off"
    )
    assert cell.pods == 1


def test_selector_that_matches_nothing_leaves_every_node_missing():
    # The selector does not match the template labels (the API would reject it, but a
    # snapshot can still hold such an object); pods are attributed by ownerReference only.
    ds = daemonset("agent", selector={"matchLabels": {"app": "nothing-has-this"}})
    m = build([ds, node("a"), node("b"), plain_pod("web", "a")])
    assert {k: c.state for k, c in m.cells.items()} == {
        ("a", ds_key(ds)): State.MISSING,
        ("b", ds_key(ds)): State.MISSING,
    }
    assert m.ds_counts[ds_key(ds)]["targeted"] == 2


# --------------------------------------------------------------------------- row 4: surge / duplicate


def test_row4_surge_one_old_one_new():
    ds = daemonset("agent", max_surge=1, max_unavailable=0, template_generation="2")
    old = daemon_pod(
        ds, N, suffix="old01", revision_hash="aaa", template_generation="1", created=ts(-3600)
    )
    new = daemon_pod(
        ds, N, suffix="new01", revision_hash="bbb", template_generation="2", created=ts(-10)
    )
    cell = cell_of(
        ds, node(N), old, new, controller_revision(ds, 1, "aaa"), controller_revision(ds, 2, "bbb")
    )
    assert cell.state is State.SURGE
    assert cell.reason == "surge rollout: new pod agent-new01 starting beside the old one"
    assert cell.pods == 2
    # The DaemonSet status counts the oldest pod, which is the outdated one.
    assert cell.pod == "agent-old01" and cell.updated is False


def test_row4_duplicate_without_surge():
    ds = daemonset("agent")
    a = daemon_pod(ds, N, suffix="aaaaa", created=ts(-3600))
    b = daemon_pod(ds, N, suffix="bbbbb", created=ts(-60))
    cell = cell_of(ds, node(N), a, b)
    assert cell.state is State.SURGE
    assert cell.reason == "2 daemon pods on one node: the controller prunes the excess"


def test_two_pods_one_terminating_is_not_a_duplicate():
    ds = daemonset("agent")
    going = daemon_pod(ds, N, suffix="going", created=ts(-3600), deleting=True)
    fresh = daemon_pod(ds, N, suffix="fresh", created=ts(-60))
    cell = cell_of(ds, node(N), going, fresh)
    assert cell.state is State.HEALTHY and cell.pod == "agent-fresh" and cell.pods == 2


# --------------------------------------------------------------------------- rows 5–7


def test_row5_terminating():
    ds = daemonset("agent")
    cell = cell_of(ds, node(N), daemon_pod(ds, N, deleting=True))
    assert cell.state is State.TERMINATING
    assert cell.status_word == "Terminating"
    assert cell.reason == "pod is being deleted; the controller will create a new one"


def test_row5_terminating_on_unreachable_node():
    ds = daemonset("agent", tolerations=TOLERATE_ALL)
    n = node(N, ready="Unknown", taints=notready_taints("node.kubernetes.io/unreachable"))
    cell = cell_of(ds, n, daemon_pod(ds, N, deleting=True, reason="NodeLost"))
    assert cell.state is State.TERMINATING
    assert cell.status_word == "Unknown"
    assert cell.reason == "node unreachable: pod deletion pending, status is stale"


def test_row6_failed_by_kubelet_admission():
    ds = daemonset("agent")
    msg = "Pod Node didn't have enough resource: cpu, requested: 500, used: 3800, capacity: 4000"
    pod = daemon_pod(ds, N, phase="Failed", reason="OutOfcpu", message=msg, ready=False)
    pod["status"].pop("containerStatuses", None)
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.FAILED
    assert cell.status_word == "OutOfcpu"
    assert cell.reason == (
        f"pod failed (OutOfcpu: {msg}); the controller deletes and re-creates it with back-off"
    )


def test_row6_succeeded_pod_is_finished():
    ds = daemonset("agent")
    pod = daemon_pod(
        ds, N, phase="Succeeded", container_state=terminated("Completed", 0), ready=False
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.FAILED
    assert cell.reason.startswith("pod succeeded; the controller deletes")


def test_row7_unschedulable():
    ds = daemonset("agent")
    msg = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
    pod = daemon_pod(
        ds, N, bound=False, phase="Pending", scheduled=False, unschedulable_message=msg
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.UNSCHEDULABLE
    assert cell.reason == f"scheduler: {msg}"
    assert cell.status_word == "Pending"


# --------------------------------------------------------------------------- row 8: pending, scheduled


def test_row8_starting_not_yet_bound():
    ds = daemonset("agent")
    pod = daemon_pod(ds, N, bound=False, phase="Pending", scheduled=False)
    cell = cell_of(ds, node(N), pod)
    assert (cell.state, cell.reason) == (
        State.STARTING,
        "waiting for the scheduler to bind the pod",
    )


def test_row8_starting_container_creating():
    ds = daemonset("agent")
    pod = daemon_pod(ds, N, phase="Pending", container_state=waiting("ContainerCreating"))
    cell = cell_of(ds, node(N), pod)
    assert (cell.state, cell.reason) == (State.STARTING, "starting: ContainerCreating")
    assert cell.status_word == "ContainerCreating"


def test_row8_init_error():
    ds = daemonset("agent")
    init = [
        container_status(
            "install-cni",
            waiting("CrashLoopBackOff", "back-off 40s restarting failed container=install-cni"),
            restarts=3,
            last=terminated("Error", 2, finished=ts(-45)),
        )
    ]
    pod = daemon_pod(
        ds,
        N,
        phase="Pending",
        init_containers=[{"name": "install-cni", "image": "cni:1"}],
        init_statuses=init,
        container_state=waiting("PodInitializing"),
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.INIT_ERROR
    assert cell.status_word == "Init:CrashLoopBackOff"
    assert (
        cell.reason
        == "init container install-cni: CrashLoopBackOff, last Error (exit 2) 45s ago, 3 restarts"
    )


def test_row8_init_container_image_error_is_an_image_error():
    ds = daemonset("agent")
    init = [
        container_status(
            "setup", waiting("ImagePullBackOff", 'Back-off pulling image "setup:nope"')
        )
    ]
    pod = daemon_pod(
        ds,
        N,
        phase="Pending",
        init_containers=[{"name": "setup", "image": "setup:nope"}],
        init_statuses=init,
        container_state=waiting("PodInitializing"),
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.IMAGE_ERROR
    assert cell.status_word == "Init:ImagePullBackOff"
    assert (
        cell.reason == 'init container setup: ImagePullBackOff: Back-off pulling image "setup:nope"'
    )


def test_row8_image_error():
    ds = daemonset("agent", image="registry.example.com/agent:v9-typo")
    msg = 'Back-off pulling image "registry.example.com/agent:v9-typo"'
    pod = daemon_pod(ds, N, phase="Pending", container_state=waiting("ImagePullBackOff", msg))
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.IMAGE_ERROR
    assert cell.status_word == "ImagePullBackOff"
    assert cell.reason == f"container agent: ImagePullBackOff: {msg}"


def test_row8_config_error():
    ds = daemonset("agent")
    msg = 'configmap "agent-config" not found'
    pod = daemon_pod(
        ds, N, phase="Pending", container_state=waiting("CreateContainerConfigError", msg)
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.CONFIG_ERROR
    assert cell.reason == f"container agent: CreateContainerConfigError: {msg}"


# --------------------------------------------------------------------------- rows 9–11


def test_row9_crash_looping():
    ds = daemonset("agent")
    pod = daemon_pod(
        ds,
        N,
        container_state=waiting(
            "CrashLoopBackOff", "back-off 5m0s restarting failed container=agent"
        ),
        restarts=12,
        last_state=terminated("OOMKilled", 137, finished=ts(-120)),
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.CRASH_LOOPING
    assert (
        cell.reason
        == "container agent CrashLoopBackOff, last OOMKilled (exit 137) 2m ago, 12 restarts"
    )
    assert cell.restarts == 12 and cell.ready_containers == "0/1"


def test_row9_crash_looping_after_completed_exit_0():
    ds = daemonset("agent")
    pod = daemon_pod(
        ds,
        N,
        container_state=waiting("CrashLoopBackOff"),
        restarts=8,
        last_state=terminated("Completed", 0, finished=ts(-300)),
    )
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.CRASH_LOOPING
    assert "last Completed (exit 0) 5m ago" in cell.reason and "8 restarts" in cell.reason
    assert cell.last_termination is not None and cell.last_termination.exit_code == 0


def test_row10_not_ready_on_a_ready_node():
    ds = daemonset("agent")
    pod = daemon_pod(ds, N, ready=False, container_ready=False)
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.NOT_READY
    assert cell.reason == "running but not Ready: readiness probe failing or readiness gate"
    assert cell.ready is False and cell.available is False


def test_row11_ready_not_available_then_available_as_time_passes():
    clock = Clock()
    ds = daemonset("agent", min_ready_seconds=300)
    pod = daemon_pod(ds, N, ready_since=ts(-60))
    m = build([ds, node(N), pod], clock=clock)
    key = (N, ds_key(ds))
    assert m.cells[key].state is State.NOT_AVAILABLE
    assert m.cells[key].reason == "Ready 60s ago; available after minReadySeconds 300"
    assert m.cells[key].ready is True and m.cells[key].available is False
    assert m.ds_counts[ds_key(ds)]["ready"] == 1 and m.ds_counts[ds_key(ds)]["available"] == 0
    clock.advance(120)
    delta = m.refresh_timed()  # 180 s: still inside minReadySeconds, only the wording moves
    assert m.cells[key].state is State.NOT_AVAILABLE
    assert m.cells[key].reason == "Ready 3m ago; available after minReadySeconds 300"
    assert set(delta.cells) <= {key}
    clock.advance(121)
    delta = m.refresh_timed()
    assert list(delta.cells) == [key]
    assert m.cells[key].state is State.HEALTHY
    assert m.ds_counts[ds_key(ds)]["available"] == 1


# --------------------------------------------------------------------------- rows 12–13


def _rollout(strategy: str = "RollingUpdate", **pod_kwargs):
    ds = daemonset("agent", strategy=strategy, template_generation="2", generation=2)
    revs = [
        controller_revision(ds, 1, "aaa"),
        controller_revision(ds, 2, "bbb"),
        # Not owned by this DaemonSet: a higher .revision must not win.
        controller_revision(ds, 9, "zzz", owner_uid="11111111-2222-3333-4444-555555555555"),
    ]
    return ds, revs


def test_row12_outdated_via_controller_revision():
    ds, revs = _rollout()
    old = daemon_pod(ds, N, revision_hash="aaa", template_generation="1")
    cell = cell_of(ds, node(N), old, *revs)
    assert cell.state is State.OUTDATED and cell.updated is False
    assert cell.reason == "on an older revision: the rolling update has not reached this node"


def test_row12_current_hash_wins_even_with_an_old_generation_label():
    # After `rollout undo`, pods may carry the restored hash but an older generation.
    ds, revs = _rollout()
    pod = daemon_pod(ds, N, revision_hash="bbb", template_generation="1")
    cell = cell_of(ds, node(N), pod, *revs)
    assert cell.state is State.HEALTHY and cell.updated is True


def test_row12_pod_of_foreign_revision_is_outdated():
    ds, revs = _rollout()
    pod = daemon_pod(ds, N, revision_hash="zzz", template_generation="1")
    assert cell_of(ds, node(N), pod, *revs).state is State.OUTDATED


def test_row12_outdated_via_template_generation_fallback():
    ds = daemonset("agent", template_generation="3", generation=3)
    old = daemon_pod(ds, N, revision_hash="whatever", template_generation="2")
    cell = cell_of(ds, node(N), old)
    assert cell.state is State.OUTDATED and cell.updated is False
    new = daemon_pod(ds, N, revision_hash="whatever", template_generation="3")
    assert cell_of(ds, node(N), new).state is State.HEALTHY


def test_row12_no_revision_signal_at_all_is_healthy():
    ds = daemonset("agent", template_generation=None)
    pod = daemon_pod(ds, N, revision_hash=None, template_generation=None)
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.HEALTHY and cell.updated is None


def test_row12_ondelete_outdated_is_informational():
    ds, revs = _rollout("OnDelete")
    cell = cell_of(
        ds, node(N), daemon_pod(ds, N, revision_hash="aaa", template_generation="1"), *revs
    )
    assert cell.state is State.OUTDATED
    assert "OnDelete" in cell.reason
    assert not cell.state.is_problem


def test_revision_events_move_the_current_hash():
    ds = daemonset("agent", template_generation=None)
    m = build(
        [ds, node(N), daemon_pod(ds, N, revision_hash="aaa"), controller_revision(ds, 1, "aaa")]
    )
    key = (N, ds_key(ds))
    assert m.cells[key].state is State.HEALTHY
    delta = m.apply(ADDED, to_record(controller_revision(ds, 2, "bbb")))
    assert m.cells[key].state is State.OUTDATED and delta.cells == {key: m.cells[key]}
    assert m.current_hash(ds_key(ds)) == "bbb"
    m.apply(DELETED, to_record(controller_revision(ds, 2, "bbb")))
    assert m.cells[key].state is State.HEALTHY
    assert m.current_hash(ds_key(ds)) == "aaa"


def test_row13_healthy():
    ds = daemonset("agent")
    pod = daemon_pod(ds, N, restarts=2)
    cell = cell_of(ds, node(N), pod)
    assert cell.state is State.HEALTHY
    assert cell.reason == "running, ready, 2 restarts"
    assert (cell.status_word, cell.ready_containers, cell.ready, cell.available) == (
        "Running",
        "1/1",
        True,
        True,
    )


# --------------------------------------------------------------------------- ownership


def test_pod_of_a_recreated_daemonset_is_not_counted():
    old_ds = daemonset("agent", uid="aaaaaaaa-0000-0000-0000-000000000001")
    new_ds = daemonset("agent", uid="bbbbbbbb-0000-0000-0000-000000000002")
    orphan = daemon_pod(old_ds, N)
    m = build([new_ds, node(N), orphan])
    assert m.cells[(N, ds_key(new_ds))].state is State.MISSING
    # Re-creating the DaemonSet in place (MODIFIED with a new uid) drops the old pod too.
    m2 = build([old_ds, node(N), orphan])
    assert m2.cells[(N, ds_key(old_ds))].state is State.HEALTHY
    m2.apply(MODIFIED, to_record(new_ds))
    assert m2.cells[(N, ds_key(new_ds))].state is State.MISSING


def test_non_daemonset_pods_are_ignored():
    ds = daemonset("agent")
    m = build([ds, node(N), plain_pod("web", N), plain_pod("api", N)])
    assert m.pods == {}
    assert m.cells[(N, ds_key(ds))].state is State.MISSING


def test_pod_on_unknown_node_has_no_cell_until_the_node_appears():
    ds = daemonset("agent")
    m = Matrix(clock=lambda: NOW)
    m.apply_many([(ADDED, to_record(ds)), (ADDED, to_record(daemon_pod(ds, "late")))])
    assert m.cells == {}
    delta = m.apply(ADDED, to_record(node("late")))
    assert delta.added_nodes == ["late"]
    assert m.cells[("late", ds_key(ds))].state is State.HEALTHY


def test_available_only_strictly_after_min_ready_seconds():
    # podutil.IsPodAvailable: lastTransitionTime + minReadySeconds must be *before* now.
    clock = Clock()
    ds = daemonset("agent", min_ready_seconds=60)
    m = build([ds, node(N), daemon_pod(ds, N, ready_since=ts(-60))], clock=clock)
    key = (N, ds_key(ds))
    assert m.cells[key].state is State.NOT_AVAILABLE
    clock.advance(1)
    m.refresh_timed()
    assert m.cells[key].state is State.HEALTHY and m.cells[key].available


def test_new_node_missing_reason_ages_with_refresh():
    clock = Clock()
    ds = daemonset("agent")
    m = build([ds, node(N, created=ts(-10))], clock=clock)
    key = (N, ds_key(ds))
    assert m.cells[key].reason.startswith("node joined 10s ago")
    clock.advance(60)
    delta = m.refresh_timed()
    assert list(delta.cells) == [key]
    assert m.cells[key].reason.startswith("eligible but no daemon pod")


def test_nodeselector_matching_no_node_targets_nothing():
    from dashboard.coverage.report import below
    from dashboard.coverage.summary import cluster_summary, daemonset_summary

    ds = daemonset("gpu-driver", node_selector={"nvidia.com/gpu.present": "true"})
    m = build([ds, node("a"), node("b")])
    assert {c.state for c in m.cells.values()} == {State.NOT_TARGETED}
    counts = daemonset_summary(m, ds_key(ds)).counts
    assert counts.targeted == 0 and counts.coverage is None
    assert cluster_summary(m).worst_daemonsets == []
    assert below(m, 100.0) == []


@pytest.mark.parametrize(
    ("pod_kwargs", "word"),
    [
        ({}, "Running"),
        (
            {"phase": "Pending", "container_state": waiting("ContainerCreating")},
            "ContainerCreating",
        ),
        ({"container_state": terminated("", 137, signal=9)}, "Signal:9"),
        ({"container_state": terminated("", 3)}, "ExitCode:3"),
        ({"phase": "Failed", "reason": "Evicted", "ready": False}, "Evicted"),
        ({"deleting": True, "phase": "Failed", "ready": False}, "Failed"),
        (
            {
                "phase": "Pending",
                "init_containers": [{"name": "a"}, {"name": "b"}],
                "init_statuses": [
                    container_status("a", terminated("Completed", 0)),
                    container_status("b", {"running": {"startedAt": ts(-5)}}),
                ],
                "container_state": waiting("PodInitializing"),
            },
            "Init:1/2",
        ),
        (
            {
                "phase": "Pending",
                "init_containers": [{"name": "a"}],
                "init_statuses": [container_status("a", terminated("", 1))],
                "container_state": waiting("PodInitializing"),
            },
            "Init:ExitCode:1",
        ),
    ],
    ids=[
        "running",
        "creating",
        "signal",
        "exit-code",
        "evicted",
        "terminal-deleting",
        "init-n-of-m",
        "init-exit",
    ],
)
def test_kubectl_status_word(pod_kwargs, word):
    ds = daemonset("agent")
    assert to_record(daemon_pod(ds, N, **pod_kwargs)).status_word == word


def test_sidecar_init_container_counts_as_a_container():
    ds = daemonset("agent")
    pod = daemon_pod(
        ds,
        N,
        init_containers=[{"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"}],
        init_statuses=[container_status("proxy", {"running": {"startedAt": ts(-60)}})],
        initialized=True,
    )
    rec = to_record(pod)
    assert (rec.status_word, rec.ready_containers, rec.total_containers) == ("Running", 2, 2)
    assert cell_of(ds, node(N), pod).state is State.HEALTHY


# --------------------------------------------------------------------------- poison inputs
# Values the API server accepts and Python's datetime cannot add up (issue: one odd object
# must never stop a cluster). Go's time arithmetic answers "not available yet" for both.


def test_ready_since_year_9999_under_min_ready_seconds_is_not_available_yet():
    ds = daemonset("agent", min_ready_seconds=30)
    cell = cell_of(ds, node(N), daemon_pod(ds, N, ready_since="9999-12-31T23:59:59Z"))
    assert cell.state is State.NOT_AVAILABLE
    assert cell.ready is True and cell.available is False
    assert "available after minReadySeconds 30" in cell.reason


def test_min_ready_seconds_of_ten_to_the_twelve_is_not_available_yet():
    ds = daemonset("agent", min_ready_seconds=10**12)
    cell = cell_of(ds, node(N), daemon_pod(ds, N, ready_since=ts(-3600)))
    assert cell.state is State.NOT_AVAILABLE
    assert "available after minReadySeconds 1000000000000" in cell.reason


def test_natural_order_survives_non_ascii_digits():
    from dashboard.coverage.grouping import natural_key

    names = ["node-10", "node-1²", "node-2", "node-٣", "node-1", "5", ""]
    # "²" and "٣" pass str.isdigit(); int("²") raises. They sort as text here.
    assert sorted(names, key=natural_key) == [
        "",
        "5",
        "node-1",
        "node-1²",
        "node-2",
        "node-10",
        "node-٣",
    ]
