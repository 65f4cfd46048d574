"""Quantities, the scheduler's pod requests, per-node load kept from pod events, and the
numbers an unschedulable daemon's reason gives."""

from __future__ import annotations

import copy

import pytest

from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED
from dashboard.coverage.quantity import format_milli, parse_milli
from dashboard.coverage.records import decode
from dashboard.coverage.states import State
from tests.helpers.k8s import build, daemon_pod, daemonset, ds_key, node, plain_pod, to_record

INSUFFICIENT = (
    "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
    "affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found "
    "for incoming pod, 2 Preemption is not helpful for scheduling."
)


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("1500m", 1500),
        ("1Gi", 2**30 * 1000),
        ("2e3", 2_000_000),
        ("0.5", 500),
        (".5", 500),
        ("1k", 1_000_000),
        ("100Mi", 100 * 2**20 * 1000),
        ("1E", 10**21),  # exa, not an exponent
        ("12E2", 1_200_000),
        ("1n", 1),  # rounded up, like Quantity.MilliValue
        ("3", 3000),
    ],
)
def test_quantities(text, milli):
    assert parse_milli(text) == milli


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5Xi", "1e999", "--1", "1 Gi"])
def test_malformed_quantities_are_refused(bad):
    with pytest.raises(ValueError):
        parse_milli(bad)


def test_formatting_like_kubectl():
    assert format_milli("cpu", 1500) == "1500m"
    assert format_milli("cpu", 4000) == "4"
    assert format_milli("memory", parse_milli("1536Mi")) == "1.5Gi"
    assert format_milli("nvidia.com/gpu", 2000) == "2"


def _pod_with(containers, init=(), overhead=None) -> dict:
    pod = plain_pod("p", "node-a")
    pod["spec"]["containers"] = [
        {"name": f"c{i}", "image": "x", "resources": {"requests": r}}
        for i, r in enumerate(containers)
    ]
    pod["spec"]["initContainers"] = [
        {"name": f"i{i}", "image": "x", "resources": {"requests": r}, **extra}
        for i, (r, extra) in enumerate(init)
    ]
    if overhead:
        pod["spec"]["overhead"] = overhead
    return pod


def test_pod_requests_are_the_schedulers():
    pod = _pod_with(
        [{"cpu": "100m", "memory": "64Mi"}, {"cpu": "0.2"}],
        init=[
            ({"cpu": "1"}, {}),  # a plain init container: only its peak counts
            ({"memory": "32Mi"}, {"restartPolicy": "Always"}),  # a sidecar: adds up
        ],
        overhead={"cpu": "10m"},
    )
    req = dict(decode("Pod", pod).requests)
    assert req["cpu"] == 1000 + 10  # max(300m, 1) + overhead
    assert req["memory"] == (64 + 32) * 2**20 * 1000


def test_a_malformed_quantity_loses_only_that_resource():
    pod = _pod_with([{"cpu": "lots", "memory": "1Gi"}])
    assert dict(decode("Pod", pod).requests) == {"memory": 2**30 * 1000}


def _cluster():
    agent = daemonset("agent")
    full = node("node-a")
    full["status"]["allocatable"] = {"cpu": "1", "memory": "4Gi", "pods": "110"}
    big = copy.deepcopy(agent)
    big["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    pending = daemon_pod(
        big, "node-a", bound=False, phase="Pending", unschedulable_message=INSUFFICIENT
    )
    others = []
    for i, cpu in enumerate(("300m", "400m", "100m")):
        p = plain_pod(f"app-{i}", "node-a")
        p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
        others.append(p)
    return big, full, pending, others


def test_unschedulable_reason_gives_the_numbers():
    ds, full, pending, others = _cluster()
    m = build([ds, full, pending, *others])
    cell = m.cells[("node-a", ds_key(ds))]
    assert cell.state is State.UNSCHEDULABLE
    assert cell.reason.startswith("scheduler: 0/3 nodes are available: 1 Insufficient cpu")
    assert (
        "needs cpu 500m; node has 1 allocatable, 800m requested by 3 pods (daemons 0) → 200m free;"
        " most held by default/app-1 400m, default/app-0 300m, default/app-2 100m."
    ) in cell.reason


def test_the_numbers_follow_the_other_pods_on_the_node():
    ds, full, pending, others = _cluster()
    m = build([ds, full, pending, *others])
    m.apply(DELETED, to_record(others[1]))  # 400m released
    assert (
        "400m requested by 2 pods (daemons 0) → 600m free;"
        in m.cells[("node-a", ds_key(ds))].reason
    )
    done = copy.deepcopy(others[0])
    done["status"]["phase"] = "Succeeded"  # a terminal pod holds nothing
    m.apply(MODIFIED, to_record(done))
    assert (
        "100m requested by 1 pods (daemons 0) → 900m free;"
        in m.cells[("node-a", ds_key(ds))].reason
    )
    assert m.load.by_node["node-a"].pods == 1


def test_daemon_pods_are_counted_apart():
    ds, full, pending, others = _cluster()
    other_ds = daemonset("logs")
    other_ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "150m"}
    }
    logs = daemon_pod(other_ds, "node-a")
    m = build([ds, other_ds, full, pending, *others])
    m.apply(ADDED, to_record(logs))
    reason = m.cells[("node-a", ds_key(ds))].reason
    assert "950m requested by 4 pods (daemons 150m) → 50m free;" in reason
    # Daemons are not "holders": the question is which workload takes the room.
    assert "most held by default/app-1 400m, default/app-0 300m, default/app-2 100m" in reason


def test_no_numbers_for_a_resource_the_daemon_does_not_request():
    ds, full, pending, others = _cluster()
    ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
    pending["spec"]["containers"][0]["resources"] = {}
    m = build([ds, full, pending, *others])
    assert m.cells[("node-a", ds_key(ds))].reason == f"scheduler: {INSUFFICIENT}"


def test_the_last_resource_of_the_message_is_read_without_its_full_stop():
    # One node in the cluster: the histogram's only entry ends with "." — "cpu." is no
    # resource, and the numbers were missing for that message.
    ds, full, pending, others = _cluster()
    single = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available."
    pending["status"]["conditions"][-1]["message"] = single
    m = build([ds, full, pending, *others])
    assert "needs cpu 500m; node has 1 allocatable" in m.cells[("node-a", ds_key(ds))].reason


def _cell_json(m, ds):
    from dashboard.coverage.report import to_json

    doc = to_json(m)
    return next(c for c in doc["cells"] if c["daemonset"] == ds_key(ds) and c["node"] == "node-a")


def test_the_cells_capacity_object_has_the_numbers_of_its_reason():
    ds, full, pending, others = _cluster()
    other_ds = daemonset("logs")
    other_ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "150m"}
    }
    m = build([ds, other_ds, full, pending, *others])
    m.apply(ADDED, to_record(daemon_pod(other_ds, "node-a")))
    cell = m.cells[("node-a", ds_key(ds))]
    (short,) = cell.capacity
    assert (short.resource, short.needs, short.allocatable) == ("cpu", 500, 1000)
    assert (short.requested, short.free, short.pods, short.daemon_requested) == (950, 50, 4, 150)
    out = _cell_json(m, ds)
    # Quantities as kubectl writes them, like the node's `allocatable`/`daemon_requests`.
    assert out["capacity"] == {
        "resource": "cpu",
        "needs": "500m",
        "allocatable": "1",
        "requested": "950m",
        "free": "50m",
        "pods": 4,
        "daemon_requests": "150m",
        "daemon_pods": 1,
        "held_by": [
            {"pod": "default/app-1", "requests": "400m"},
            {"pod": "default/app-0", "requests": "300m"},
            {"pod": "default/app-2", "requests": "100m"},
        ],
    }
    assert out["shortages"] == [out["capacity"]]
    # The reason says the very same numbers.
    assert (
        "needs cpu 500m; node has 1 allocatable, 950m requested by 4 pods (daemons 150m)"
        in (out["reason"])
    )
    assert out["preemption"].startswith("preemption: ") and "would preempt" in out["preemption"]
    assert out["reason"].endswith(out["preemption"])
    node_json = next(n for n in to_json_nodes(m) if n["name"] == "node-a")
    assert node_json["allocatable"]["cpu"] == out["capacity"]["allocatable"]
    assert node_json["daemon_requests"]["cpu"] == out["capacity"]["daemon_requests"]


def to_json_nodes(m):
    from dashboard.coverage.report import to_json

    return to_json(m)["nodes"]


def test_capacity_follows_the_node_and_leaves_once_the_daemon_fits():
    ds, full, pending, others = _cluster()
    m = build([ds, full, pending, *others])
    m.apply(DELETED, to_record(others[1]))  # 400m released
    assert _cell_json(m, ds)["capacity"]["free"] == "600m"
    m.apply(MODIFIED, to_record(daemon_pod(ds, "node-a")))  # scheduled, running
    out = _cell_json(m, ds)
    assert "capacity" not in out and "shortages" not in out and "preemption" not in out


def test_every_resource_the_scheduler_named_is_a_shortage_and_pods_are_counted():
    ds, full, pending, others = _cluster()
    ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "500m", "nvidia.com/gpu": "1"}
    }
    pending["spec"]["containers"][0]["resources"] = ds["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    full["status"]["allocatable"]["pods"] = "3"
    pending["status"]["conditions"][-1]["message"] = (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient nvidia.com/gpu, "
        "1 Too many pods. preemption: 0/1 nodes are available."
    )
    m = build([ds, full, pending, *others])
    out = _cell_json(m, ds)
    assert [s["resource"] for s in out["shortages"]] == ["cpu", "nvidia.com/gpu", "pods"]
    assert out["capacity"] == out["shortages"][0]
    gpu, pods = out["shortages"][1:]
    # A resource the node does not list: null allocatable, nothing free.
    assert (gpu["needs"], gpu["allocatable"], gpu["free"]) == ("1", None, "0")
    assert (pods["needs"], pods["allocatable"], pods["requested"], pods["free"]) == (
        "1",
        "3",
        "3",
        "0",
    )
    assert "node has none allocatable" in out["reason"]
    assert "node allows 3 pods and has 3 (0 daemons)" in out["reason"]
