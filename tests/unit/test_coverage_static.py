"""Static pods (coverage/static.py): mirror pods recognised, grouped by manifest name,
absent versus missing by node role, and daemons running twice."""

from __future__ import annotations

from dashboard.coverage.matrix import DELETED
from dashboard.coverage.records import decode
from dashboard.coverage.states import State
from dashboard.coverage.static import columns_of, component_of, duplicates, static_columns
from tests.helpers.k8s import build, daemon_pod, daemonset, ds_key, mirror_pod, node, to_record

CP = {"node-role.kubernetes.io/control-plane": ""}


def test_mirror_pods_are_recognised_and_kept_apart_from_daemon_pods():
    pod = decode("Pod", mirror_pod("kube-apiserver", "cp-1"))
    assert pod.mirror and pod.owner_uid == "" and pod.node == "cp-1"
    m = build([node("cp-1", labels=CP), mirror_pod("kube-apiserver", "cp-1")])
    assert "kube-system/kube-apiserver-cp-1" in m.static_pods
    assert not m.pods  # no cell, no daemon pod count
    m.apply(DELETED, to_record(mirror_pod("kube-apiserver", "cp-1")))
    assert not m.static_pods


def test_the_annotation_alone_makes_a_mirror_pod_the_owner_alone_does_not():
    raw = mirror_pod("etcd", "cp-1")
    del raw["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert not decode("Pod", raw).mirror


def test_component_drops_the_node_suffix_even_with_dots_and_dashes():
    for node_name in ("ip-10-0-1-23.ec2.internal", "cp-1", "Worker-A.example.com"):
        pod = decode("Pod", mirror_pod("kube-proxy", node_name))
        assert component_of(pod) == "kube-proxy", node_name
    # A name that does not end in its node's name is kept whole.
    raw = mirror_pod("etcd", "cp-1")
    raw["metadata"]["name"] = "etcd-main"
    assert component_of(decode("Pod", raw)) == "etcd-main"


def test_absent_unless_every_other_node_of_the_role_has_one():
    objs = [
        node("cp-1", labels=CP),
        node("cp-2", labels=CP),
        node("cp-3", labels=CP),
        node("worker-1"),
        mirror_pod("kube-apiserver", "cp-1"),
        mirror_pod("kube-apiserver", "cp-2"),
    ]
    m = build(objs)
    (col,) = static_columns(m.nodes, m.static_pods.values())
    assert col.key == "kube-system/kube-apiserver"
    assert col.cells["cp-1"].state is State.HEALTHY
    assert col.cells["cp-3"].state is State.MISSING
    assert col.cells["cp-3"].reason == (
        "absent on this control-plane node while present on the other 2"
    )
    # A worker has no peers running it: simply absent, never "missing".
    assert col.cells["worker-1"].state is State.ABSENT
    assert not col.cells["worker-1"].should_run


def test_static_cells_show_status_word_restarts_and_readiness():
    m = build([node("cp-1", labels=CP), mirror_pod("etcd", "cp-1", ready=False, restarts=4)])
    (col,) = static_columns(m.nodes, m.static_pods.values())
    cell = col.cells["cp-1"]
    assert cell.state is State.NOT_READY and cell.restarts == 4
    assert cell.reason.startswith("static: managed by the kubelet from a manifest file")


def test_a_daemonset_beside_a_static_pod_of_the_same_component_is_flagged():
    ds = daemonset("kube-proxy", match_labels={"k8s-app": "kube-proxy"})
    pod = daemon_pod(ds, "worker-1")
    m = build([node("worker-1"), ds, pod, mirror_pod("kube-proxy", "worker-1")])
    cols = static_columns(m.nodes, m.static_pods.values())
    pods_on = {("worker-1", ds_key(ds)): m.pods_in_cell("worker-1", ds_key(ds))}
    (dup,) = duplicates(cols, m.daemonsets, pods_on)
    assert dup == (
        f"kube-proxy runs twice on worker-1: DaemonSet kube-system/kube-proxy "
        f"(pod {pod['metadata']['name']}) and static pod kube-system/kube-proxy-worker-1"
    )


def test_a_daemonset_colliding_with_a_static_pods_host_port_names_it():
    ds = daemonset("exporter", ports=[{"name": "m", "containerPort": 10250, "hostPort": 10250}])
    m = build([node("cp-1", labels=CP), ds, mirror_pod("kubelet-ish", "cp-1", host_ports=[10250])])
    cell = m.cells[("cp-1", ds_key(ds))]
    assert cell.port_conflict
    assert cell.access_note == "TCP/10250 held by static pod kube-system/kubelet-ish-cp-1"


def test_columns_are_reused_until_a_mirror_pod_a_node_or_its_labels_change():
    ds = daemonset("agent")
    objs = [node("cp-1", labels=CP), node("cp-2", labels=CP), ds, mirror_pod("etcd", "cp-1")]
    m = build(objs)
    (first,) = columns_of(m)
    assert first.cells["cp-2"].state is State.MISSING
    # A daemon pod's change does not touch static columns: the same columns come back.
    m.apply("ADDED", to_record(daemon_pod(ds, "cp-1")))
    assert columns_of(m)[0] is first
    # Each of these does, and is seen.
    m.apply("ADDED", to_record(mirror_pod("etcd", "cp-2")))
    assert columns_of(m)[0].cells["cp-2"].state is State.HEALTHY
    m.apply("MODIFIED", to_record(mirror_pod("etcd", "cp-2", ready=False)))
    assert columns_of(m)[0].cells["cp-2"].state is State.NOT_READY
    m.apply("ADDED", to_record(node("cp-3", labels=CP)))
    assert columns_of(m)[0].cells["cp-3"].state is State.MISSING  # both peers run it
    m.apply("MODIFIED", to_record(node("cp-3")))  # no longer a control-plane node
    assert columns_of(m)[0].cells["cp-3"].state is State.ABSENT
    m.apply(DELETED, to_record(node("cp-3")))
    assert "cp-3" not in columns_of(m)[0].cells
    assert columns_of(m) == static_columns(m.nodes, m.static_pods.values())
