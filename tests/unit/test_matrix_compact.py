"""The compact indexes behind the memory goal (bench/access_bench.py): a cell's pods kept
without a dict per cell, slice endpoints indexed without a wrapper per pod, and cells
sharing their key with their eligibility. Behaviour must be that of the plain dicts."""

from __future__ import annotations

from dashboard.coverage.matrix import ADDED, DELETED, CellPods, Matrix
from tests.helpers.k8s import (
    daemon_pod,
    daemonset,
    ds_key,
    endpoint,
    endpoint_slice,
    node,
    service,
    to_record,
)


def test_cell_pods_hold_one_pod_then_several_then_one_again():
    ds = daemonset("agent", "ns")
    a, b = (to_record(daemon_pod(ds, "n1", name=n)) for n in ("agent-a", "agent-b"))
    pods = CellPods()
    pods.add(a)
    assert pods.get(a.owner_uid, "n1") == [a]
    pods.add(a)  # a MODIFIED of the same pod replaces it
    assert pods.get(a.owner_uid, "n1") == [a]
    pods.add(b)
    assert sorted(p.name for p in pods.get(a.owner_uid, "n1")) == ["agent-a", "agent-b"]
    pods.remove(a)
    assert pods.get(a.owner_uid, "n1") == [b]
    pods.remove(a)  # already gone: nothing happens
    pods.remove(b)
    assert pods.get(a.owner_uid, "n1") == [] and pods.get("other", "n1") == []
    assert not pods._by_owner  # nothing left behind for a cell that emptied


def test_a_pod_listed_by_two_slices_keeps_both_until_each_slice_goes():
    ds = daemonset("agent", "ns", match_labels={"app": "agent"})
    pod = daemon_pod(ds, "n1", pod_ip="10.0.0.7")
    one = service("one", "ns", selector={"app": "agent"})
    two = service("two", "ns", selector={"app": "agent"})
    m = Matrix()
    m.replace_all(
        {
            "Node": [to_record(node("n1"))],
            "DaemonSet": [to_record(ds)],
            "Pod": [to_record(pod)],
            "Service": [to_record(one), to_record(two)],
            "EndpointSlice": [
                to_record(endpoint_slice(one, [endpoint(pod, "10.0.0.7")])),
                to_record(endpoint_slice(two, [endpoint(pod, "10.0.0.7", ready=False)])),
            ],
        }
    )
    key = ("n1", ds_key(ds))
    assert m.cells[key].in_service_endpoints is False  # "two" lists it as not ready
    assert {e.service for e in m.access.endpoints_of(m.pods[to_record(pod).key])} == {
        "ns/one",
        "ns/two",
    }
    m.apply(DELETED, to_record(endpoint_slice(two, [endpoint(pod, "10.0.0.7", ready=False)])))
    assert m.cells[key].in_service_endpoints is False  # no longer listed by "two" at all
    m.apply(DELETED, to_record(two))
    assert m.cells[key].in_service_endpoints is True
    m.apply(ADDED, to_record(endpoint_slice(one, [])))  # the pod left "one"'s slice
    assert m.cells[key].in_service_endpoints is False
    assert m.access.endpoints_of(m.pods[to_record(pod).key]) == ()


def test_a_new_cell_shares_its_key_with_its_eligibility():
    ds = daemonset("agent", "ns")
    m = Matrix()
    m.replace_all(
        {
            "Node": [to_record(node("n1")), to_record(node("n2"))],
            "DaemonSet": [to_record(ds)],
            "Pod": [to_record(daemon_pod(ds, "n1"))],
        }
    )
    elig_keys = {id(k) for k in m._eligibility}
    assert m.cells and all(id(k) in elig_keys for k in m.cells)
