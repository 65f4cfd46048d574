"""Every captured object in tests/fixtures/ decodes, and the facts SOURCES.md states hold."""

from __future__ import annotations

import json

import msgspec
import pytest

from dashboard.coverage.cells import node_health
from dashboard.coverage.eligibility import evaluate
from dashboard.coverage.records import (
    DaemonSet,
    Node,
    Pod,
    decode,
    decode_event,
    decode_list,
    kind_of,
)
from dashboard.coverage.states import State
from tests.helpers.k8s import (
    build,
    controller_revision,
    daemonset,
    ds_key,
    give_owner,
    node,
    v1_list,
)

EFA_DS = "daemonset-efa-device-plugin-eks.json"
EFA_UID = "64cbfeb6-f251-4797-8b92-07ef6c3a40db"

KIND_OF_FILE = {
    "daemonset-efa-device-plugin-eks.json": "DaemonSet",
    "node-eks-cordoned.DERIVED.json": "Node",
    "node-eks-notready-unreachable.DERIVED.json": "Node",
    "node-eks-ready-missing-extended-resource.json": "Node",
    "node-eks-ready-worker.json": "Node",
    "node-openshift-gcp-worker-ready.json": "Node",
    "node-openshift-master-tainted.json": "Node",
    "pod-daemonset-crashloopbackoff-eks.DERIVED.json": "Pod",
    "pod-daemonset-owned-running-eks.json": "Pod",
    "pod-init-crashloopbackoff-pending.json": "Pod",
    "pod-pending-unschedulable.json": "Pod",
}


def _load(fixtures_dir, name: str) -> dict:
    return json.loads((fixtures_dir / name).read_text())


def _rec(fixtures_dir, name: str):
    return decode(KIND_OF_FILE[name], (fixtures_dir / name).read_bytes())


def test_every_json_fixture_is_covered(fixtures_dir):
    assert {p.name for p in fixtures_dir.glob("*.json")} == set(KIND_OF_FILE)


@pytest.mark.parametrize("name", sorted(KIND_OF_FILE))
def test_fixture_decodes_from_bytes_and_dict_alike(fixtures_dir, name):
    kind = KIND_OF_FILE[name]
    raw = (fixtures_dir / name).read_bytes()
    obj = json.loads(raw)
    from_bytes = decode(kind, raw)
    from_dict = decode(kind, obj)
    assert from_bytes == from_dict
    assert type(from_bytes).__name__ == ("Revision" if kind == "ControllerRevision" else kind)
    assert from_bytes.name == obj["metadata"]["name"]
    assert from_bytes.uid == obj["metadata"]["uid"]
    # The OpenShift captures carry no kind; the kubectl-style ones do.
    assert kind_of(raw) == obj.get("kind", "")


def test_openshift_fixtures_lack_kind_but_decode_in_a_v1_list_once_kinded(fixtures_dir):
    names = [n for n in KIND_OF_FILE if "openshift" in n or "pending" in n]
    items = []
    for n in names:
        obj = _load(fixtures_dir, n)
        assert "kind" not in obj
        items.append({"kind": KIND_OF_FILE[n], "apiVersion": "v1", **obj})
    decoded = decode_list(msgspec.json.encode(v1_list(items)))
    assert [r.name for r in decoded.records] == [
        _load(fixtures_dir, n)["metadata"]["name"] for n in names
    ]
    assert decoded.skipped == {}


def test_watch_event_shapes_decode(fixtures_dir):
    lines = (fixtures_dir / "watch-event-shapes.DERIVED.jsonl").read_bytes().splitlines()
    events = [decode_event(line, "Pod") for line in lines if line.strip()]
    assert [e.type for e in events] == ["ADDED", "BOOKMARK", "BOOKMARK", "ERROR"]
    added, bookmark, initial_end, error = events
    assert isinstance(added.record, Pod)
    assert added.record.name == "aws-efa-k8s-device-plugin-daemonset-vc9gd"
    assert added.resource_version == "2416"
    assert bookmark.resource_version == "12746" and bookmark.record is None
    assert initial_end.resource_version == "10245"
    assert error.status is not None and error.status["code"] == 410
    assert error.status["reason"] == "Expired"


# --------------------------------------------------------------------------- record facts


def test_efa_daemonset_record(fixtures_dir):
    ds = _rec(fixtures_dir, EFA_DS)
    assert isinstance(ds, DaemonSet)
    assert ds.key == "kube-system/aws-efa-k8s-device-plugin-daemonset"
    assert ds.uid == EFA_UID
    assert ds.host_network is True
    assert ds.template_generation == "1"
    assert (ds.strategy, ds.max_unavailable, ds.max_surge) == ("RollingUpdate", 1, 0)
    assert ds.required_terms is not None and len(ds.required_terms) == 2
    assert ds.selector is not None and ds.selector.matchLabels == {
        "name": "aws-efa-k8s-device-plugin"
    }
    st = ds.status
    assert (st.desiredNumberScheduled, st.currentNumberScheduled, st.numberReady) == (8, 8, 3)
    assert (st.numberAvailable, st.numberUnavailable, st.updatedNumberScheduled) == (3, 5, 8)


def test_node_records_health(fixtures_dir):
    ready = _rec(fixtures_dir, "node-eks-ready-worker.json")
    cordoned = _rec(fixtures_dir, "node-eks-cordoned.DERIVED.json")
    unreachable = _rec(fixtures_dir, "node-eks-notready-unreachable.DERIVED.json")
    master = _rec(fixtures_dir, "node-openshift-master-tainted.json")
    gcp = _rec(fixtures_dir, "node-openshift-gcp-worker-ready.json")
    assert all(isinstance(n, Node) for n in (ready, cordoned, unreachable, master, gcp))
    assert node_health(ready).word == "Ready" and node_health(ready).healthy
    assert node_health(cordoned).word == "Ready,SchedulingDisabled"
    assert node_health(unreachable).word == "Unknown"
    assert unreachable.ready_reason == "NodeStatusUnknown"
    assert [(t.key, t.effect) for t in unreachable.taints] == [
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    ]
    # Unknown pressure conditions are not alarms; only "True" ones are.
    assert unreachable.pressures == ()
    assert [(t.key, t.effect) for t in master.taints] == [
        ("node-role.kubernetes.io/master", "NoSchedule")
    ]
    assert gcp.network_unavailable is False
    assert gcp.labels["node-role.kubernetes.io/worker"] == ""


def test_running_daemon_pod_record(fixtures_dir):
    pod = _rec(fixtures_dir, "pod-daemonset-owned-running-eks.json")
    assert pod.owner_uid == EFA_UID
    assert pod.node == "ip-192-168-2-48.ec2.internal" and pod.bound
    assert pod.status_word == "Running" and pod.ready
    assert (pod.ready_containers, pod.total_containers, pod.restarts) == (1, 1, 0)
    assert (pod.revision_hash, pod.template_generation) == ("5bc5db57b", "1")
    assert pod.ready_since == "2023-07-28T17:11:03Z"


def test_target_node_comes_from_matchfields_before_binding(fixtures_dir):
    obj = _load(fixtures_dir, "pod-daemonset-owned-running-eks.json")
    del obj["spec"]["nodeName"]
    pod = decode("Pod", obj)
    assert pod.node == "ip-192-168-2-48.ec2.internal"
    assert pod.bound is False


def test_crashloop_pod_record(fixtures_dir):
    pod = _rec(fixtures_dir, "pod-daemonset-crashloopbackoff-eks.DERIVED.json")
    assert pod.status_word == "CrashLoopBackOff"
    assert pod.crash_looping and not pod.ready
    assert pod.restarts == 8
    t = pod.last_termination
    assert t is not None
    assert (t.reason, t.exit_code, t.finished_at) == ("Completed", 0, "2023-07-28T17:27:06Z")


def test_init_crashloop_pod_record(fixtures_dir):
    pod = _rec(fixtures_dir, "pod-init-crashloopbackoff-pending.json")
    assert pod.status_word == "Init:CrashLoopBackOff"
    assert pod.owner_uid == ""  # a ReplicaSet pod is not a daemon pod
    assert pod.initialized is False
    assert pod.problem is not None and pod.problem.init
    assert (pod.problem.container, pod.problem.reason) == ("vsystem-hana-init", "CrashLoopBackOff")
    assert pod.restarts == 7527
    assert (pod.ready_containers, pod.total_containers) == (0, 2)
    assert pod.last_termination is not None
    assert (pod.last_termination.reason, pod.last_termination.exit_code) == ("Error", 1)


def test_unschedulable_pod_record(fixtures_dir):
    pod = _rec(fixtures_dir, "pod-pending-unschedulable.json")
    assert pod.phase == "Pending" and pod.status_word == "Pending"
    assert pod.bound is False and pod.node == ""
    assert pod.unschedulable_message is not None
    assert pod.unschedulable_message.startswith(
        "0/2 nodes are available: 1 node(s) didn't have free ports"
    )


# --------------------------------------------------------------------------- eligibility facts


@pytest.mark.parametrize(
    ("node_file", "should_run", "may_continue", "reason_part"),
    [
        ("node-eks-ready-worker.json", True, True, ""),
        ("node-eks-ready-missing-extended-resource.json", True, True, ""),
        ("node-eks-cordoned.DERIVED.json", True, True, ""),
        (
            "node-eks-notready-unreachable.DERIVED.json",
            False,
            True,
            "taint node.kubernetes.io/unreachable:NoSchedule not tolerated",
        ),
        (
            "node-openshift-gcp-worker-ready.json",
            False,
            False,
            "(node has node.kubernetes.io/instance-type=n1-standard-4)",
        ),
        (
            "node-openshift-master-tainted.json",
            False,
            False,
            "(node has no node.kubernetes.io/instance-type label)",
        ),
    ],
)
def test_efa_eligibility_on_fixture_nodes(
    fixtures_dir, node_file, should_run, may_continue, reason_part
):
    ds = _rec(fixtures_dir, EFA_DS)
    elig = evaluate(ds, _rec(fixtures_dir, node_file))
    assert (elig.should_run, elig.may_continue) == (should_run, may_continue)
    if should_run:
        assert elig.reason == ""
    else:
        assert reason_part in elig.reason
    if "openshift" in node_file:
        assert elig.reason.startswith(
            "required node affinity not matched: node.kubernetes.io/instance-type in ("
        )
        # The two identical terms of the real manifest are named once.
        assert " OR " not in elig.reason


# --------------------------------------------------------------------------- through the matrix


def _efa(fixtures_dir) -> dict:
    return _load(fixtures_dir, EFA_DS)


def test_efa_matrix_over_fixture_nodes(fixtures_dir):
    ds = _efa(fixtures_dir)
    key = ds_key(ds)
    crash = _load(fixtures_dir, "pod-daemonset-crashloopbackoff-eks.DERIVED.json")
    running = _load(fixtures_dir, "pod-daemonset-owned-running-eks.json")
    # A node for the running pod: the fixture node's labels under the pod's node name.
    sibling = node(
        "ip-192-168-2-48.ec2.internal",
        labels=_load(fixtures_dir, "node-eks-ready-worker.json")["metadata"]["labels"]
        | {"kubernetes.io/hostname": "ip-192-168-2-48.ec2.internal"},
    )
    objs = [
        ds,
        controller_revision(ds, 1, "5bc5db57b"),
        _load(fixtures_dir, "node-eks-ready-missing-extended-resource.json"),
        _load(fixtures_dir, "node-eks-ready-worker.json"),
        {
            "kind": "Node",
            "apiVersion": "v1",
            **_load(fixtures_dir, "node-openshift-master-tainted.json"),
        },
        {
            "kind": "Node",
            "apiVersion": "v1",
            **_load(fixtures_dir, "node-openshift-gcp-worker-ready.json"),
        },
        sibling,
        crash,
        running,
    ]
    m = build(objs)
    crash_cell = m.cells[("ip-192-168-25-169.ec2.internal", key)]
    assert crash_cell.state is State.CRASH_LOOPING
    assert crash_cell.pod == "aws-efa-k8s-device-plugin-daemonset-4kwqn"
    assert crash_cell.restarts == 8
    assert crash_cell.last_termination is not None
    assert (crash_cell.last_termination.reason, crash_cell.last_termination.exit_code) == (
        "Completed",
        0,
    )
    assert "Completed (exit 0)" in crash_cell.reason and "8 restarts" in crash_cell.reason
    assert crash_cell.status_word == "CrashLoopBackOff" and crash_cell.ready_containers == "0/1"
    assert crash_cell.updated is True  # hash 5bc5db57b is the DS's only revision

    assert m.cells[("ip-192-168-2-48.ec2.internal", key)].state is State.HEALTHY
    assert m.cells[("ip-192-168-0-161.ec2.internal", key)].state is State.MISSING
    for name in (
        "master-0.imeixner20210707.lab.upshift.rdu2.redhat.com",
        "ci-ln-ywdpkbt-f76d1-vw6lz-worker-d-rmh8w",
    ):
        cell = m.cells[(name, key)]
        assert cell.state is State.NOT_TARGETED
        assert cell.reason.startswith("required node affinity not matched")

    counts = m.ds_counts[key]
    assert counts["targeted"] == 3 and counts["current"] == 2 and counts["ready"] == 1


@pytest.mark.parametrize(
    ("node_file", "state", "reason_part"),
    [
        ("node-eks-cordoned.DERIVED.json", State.HEALTHY, "running, ready"),
        (
            "node-eks-notready-unreachable.DERIVED.json",
            State.MISSCHEDULED,
            "kept, not desired: taint node.kubernetes.io/unreachable:NoSchedule not tolerated",
        ),
    ],
)
def test_efa_pod_on_cordoned_and_unreachable_nodes(fixtures_dir, node_file, state, reason_part):
    ds = _efa(fixtures_dir)
    pod = _load(fixtures_dir, "pod-daemonset-owned-running-eks.json")
    pod["spec"]["nodeName"] = "ip-192-168-0-161.ec2.internal"
    m = build([ds, _load(fixtures_dir, node_file), pod])
    cell = m.cells[("ip-192-168-0-161.ec2.internal", ds_key(ds))]
    assert cell.state is state
    assert reason_part in cell.reason
    assert cell.should_run is (state is State.HEALTHY)


def test_init_crashloop_pod_as_a_daemon_pod_is_an_init_error(fixtures_dir):
    obj = _load(fixtures_dir, "pod-init-crashloopbackoff-pending.json")
    obj.update(kind="Pod", apiVersion="v1")
    ds = daemonset("vsystem-agent", "di-288312", node_selector={"node-role.kubernetes.io/sdi": ""})
    pod = give_owner(obj, ds)
    host = node("pvx510.wdf.sap.corp", labels={"node-role.kubernetes.io/sdi": ""})
    m = build([ds, host, pod])
    cell = m.cells[("pvx510.wdf.sap.corp", ds_key(ds))]
    assert cell.state is State.INIT_ERROR
    assert cell.status_word == "Init:CrashLoopBackOff"
    assert cell.reason.startswith("init container vsystem-hana-init: CrashLoopBackOff")
    assert "last Error (exit 1)" in cell.reason and "7527 restarts" in cell.reason


def test_unschedulable_pod_as_a_daemon_pod(fixtures_dir):
    obj = _load(fixtures_dir, "pod-pending-unschedulable.json")
    obj.update(kind="Pod", apiVersion="v1")
    ds = daemonset("router", "openshift-ingress")
    pod = give_owner(obj, ds)
    pod["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["worker-a"]}
                        ]
                    }
                ]
            }
        }
    }
    m = build([ds, node("worker-a"), pod])
    cell = m.cells[("worker-a", ds_key(ds))]
    assert cell.state is State.UNSCHEDULABLE
    assert cell.reason == "scheduler: " + obj["status"]["conditions"][0]["message"]
    assert cell.pod == "router-default-7bbdcfcf9b-7xdln"
