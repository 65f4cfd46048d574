"""End to end: the cell names the cause the real control plane reports in its events.

The real DaemonSet controller tries to create the daemon pods; the real API server's
admission (ResourceQuota, PodSecurity) refuses them; the controller records FailedCreate
events on the DaemonSet. The dashboard (the read-only ServiceAccount of deploy/rbac.yaml)
must show, in every missing cell, the admission error itself, not "go and look".
"""

from __future__ import annotations

import json
import re

import pytest

from dashboard.coverage.matrix import Matrix
from dashboard.coverage.quantity import parse_milli
from dashboard.coverage.report import to_json
from dashboard.coverage.states import State
from dashboard.kube.clients import client_from_kubeconfig
from tests.e2e.workload import (
    Admin,
    daemonset_manifest,
    node_manifest,
    synced_collector,
    wait_until,
)

pytestmark = pytest.mark.e2e

NODES = ("why-1", "why-2")
QUOTA_NS, PSA_NS = "why-quota", "why-psa"
# What the unschedulable reason of the 1-cpu node says (dashboard/coverage/capacity.py).
CPU_NUMBERS = re.compile(
    r"needs cpu 2; node has 1 allocatable, (\S+) requested by \d+ pods \(daemons (\S+)\)"
    r" → (\S+) free"
)


@pytest.fixture(scope="module")
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    admin = Admin(api)
    for name in NODES:
        manifest = node_manifest(name, "general")
        manifest["metadata"]["labels"]["why"] = "yes"
        admin.ensure_node(manifest)
    admin.core.create_namespace({"metadata": {"name": QUOTA_NS}})
    admin.core.create_namespace(
        {
            "metadata": {
                "name": PSA_NS,
                "labels": {"pod-security.kubernetes.io/enforce": "baseline"},
            }
        }
    )
    admin.core.create_namespaced_resource_quota(
        QUOTA_NS, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    for ns in (QUOTA_NS, PSA_NS):
        admin.wait_default_service_account(ns)
    # Until the quota controller has filled in the status, admission says "status unknown";
    # the test wants the steady-state message.
    wait_until(
        "quota status computed",
        lambda: admin.core.read_namespaced_resource_quota("no-pods", QUOTA_NS).status.hard,
    )
    try:
        yield admin
    finally:
        for ns in (QUOTA_NS, PSA_NS):
            admin.core.delete_namespace(ns)
        for name in NODES:
            admin.core.delete_node(name)
        api.close()


def _daemonset(name: str, namespace: str, **kwargs) -> dict:
    manifest = daemonset_manifest(
        name, image="registry.example/agent:1.0", node_selector={"why": "yes"}, **kwargs
    )
    manifest["metadata"]["namespace"] = namespace
    return manifest


@pytest.fixture(scope="module")
def dash(control_plane, admin):
    with synced_collector(control_plane.sa_kubeconfig, "e2e-why") as collector:
        yield collector


def _wait_cells(collector, ds_key: str, want: str, timeout: float = 120.0) -> Matrix:
    def step() -> bool:
        collector.tick()
        cells = [collector.matrix.cells.get((n, ds_key)) for n in NODES]
        return all(c is not None and c.state is State.MISSING and want in c.reason for c in cells)

    def describe() -> str:
        m = collector.matrix
        return "\n".join(f"{n}: {m.cells.get((n, ds_key))}" for n in NODES) + (
            f"\nevents kept: {list(m.events.by_key.values())}"
        )

    wait_until(f"{ds_key} cells naming {want!r}", step, timeout=timeout, describe=describe)
    return collector.matrix


def test_exhausted_resource_quota_is_the_reason_of_every_missing_cell(admin, dash):
    admin.apps.create_namespaced_daemon_set(QUOTA_NS, _daemonset("quota-agent", QUOTA_NS))
    key = f"{QUOTA_NS}/quota-agent"
    m = _wait_cells(dash, key, "exceeded quota: no-pods")
    for node in NODES:
        cell = m.cells[(node, key)]
        # The controller's own words, without its "Error creating: " prefix.
        assert cell.reason.startswith('FailedCreate: pods "quota-agent-'), cell.reason
        assert "is forbidden: exceeded quota: no-pods, requested: pods=1" in cell.reason
        assert "limited: pods=0" in cell.reason
        note = cell.events[0]
        assert (note.about, note.type, note.reason) == ("DaemonSet", "Warning", "FailedCreate")
        assert note.source == "daemonset-controller" and note.count >= 1
        assert note.last_seen


def test_pod_security_rejection_is_the_reason_of_every_missing_cell(admin, dash):
    admin.apps.create_namespaced_daemon_set(
        PSA_NS, _daemonset("host-agent", PSA_NS, host_network=True)
    )
    key = f"{PSA_NS}/host-agent"
    m = _wait_cells(dash, key, 'violates PodSecurity "baseline:latest"')
    for node in NODES:
        cell = m.cells[(node, key)]
        assert "host namespaces (hostNetwork=true)" in cell.reason, cell.reason
        assert cell.events[0].reason == "FailedCreate"


def test_events_of_a_deleted_daemonset_are_forgotten(admin, dash):
    key = f"{QUOTA_NS}/quota-agent"
    assert dash.matrix.events.of(("DaemonSet", QUOTA_NS, "quota-agent"))
    admin.apps.delete_namespaced_daemon_set("quota-agent", QUOTA_NS)

    def gone() -> bool:
        dash.tick()
        return key not in dash.matrix.daemonsets

    wait_until("DaemonSet column gone", gone)
    assert not dash.matrix.events.of(("DaemonSet", QUOTA_NS, "quota-agent"))


def test_insufficient_cpu_names_the_numbers(admin, dash):
    """A kwok node with 1 cpu allocatable, 300m of it held by an ordinary pod, and a daemon
    asking for 2: the real scheduler says Insufficient cpu; the cell says by how much."""
    small = node_manifest("why-3", "general")
    small["metadata"]["labels"]["why"] = "small"
    small["status"] = {
        "allocatable": {"cpu": "1", "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": "1", "memory": "8Gi", "pods": "110"},
    }
    admin.core.create_node(small)
    try:
        holder = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "holder", "namespace": QUOTA_NS},
            "spec": {
                "nodeName": "why-3",
                "containers": [
                    {"name": "c", "image": "x", "resources": {"requests": {"cpu": "300m"}}}
                ],
            },
        }
        # A namespace without the quota: the quota namespace admits no pod.
        admin.core.create_namespace({"metadata": {"name": "why-cap"}})
        holder["metadata"]["namespace"] = "why-cap"
        admin.wait_default_service_account("why-cap")
        admin.core.create_namespaced_pod("why-cap", holder)
        manifest = daemonset_manifest(
            "big-agent", image="registry.example/agent:1.0", node_selector={"why": "small"}
        )
        manifest["metadata"]["namespace"] = "why-cap"
        manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "2"}
        }
        admin.apps.create_namespaced_daemon_set("why-cap", manifest)
        key = ("why-3", "why-cap/big-agent")

        def cpu_numbers(reason: str) -> tuple[int, int, int] | None:
            """(requested, by daemons, free) in millicores, as the reason gives them."""
            m = CPU_NUMBERS.search(reason)
            if m is None:
                return None
            requested, daemons, free = (parse_milli(q) for q in m.groups())
            return requested, daemons, free

        def explained() -> bool:
            dash.tick()
            cell = dash.matrix.cells.get(key)
            if cell is None or cell.state is not State.UNSCHEDULABLE:
                return False
            numbers = cpu_numbers(cell.reason)
            # The holder's 300m, beside whatever the other tests' DaemonSets request there
            # (the general pool runs them too): counted apart as the daemons' share.
            return numbers is not None and numbers[0] - numbers[1] == 300

        wait_until(
            "unschedulable cell with the numbers",
            explained,
            timeout=120,
            describe=lambda: str(dash.matrix.cells.get(key)),
        )
        cell = dash.matrix.cells[key]
        assert "Insufficient cpu" in cell.reason
        # Only the holder and other tests' daemons hold cpu there: 700m is free at most.
        requested, _, free = cpu_numbers(cell.reason) or (0, 0, 0)
        assert free == 1000 - requested and free <= 700, cell.reason
        assert "most held by why-cap/holder 300m" in cell.reason, cell.reason
        # 2 cpu on a 1-cpu node: no victim makes room, whatever the priority.
        assert cell.reason.endswith(
            "preemption cannot help: the daemon asks for more cpu than the node's allocatable"
        ), cell.reason

        # The coverage JSON carries the same numbers as an object, in the node's units.
        doc = to_json(dash.matrix)
        out = next(c for c in doc["cells"] if (c["node"], c["daemonset"]) == key)
        row = next(n for n in doc["nodes"] if n["name"] == "why-3")
        print("\ncoverage JSON cell:", json.dumps(out, indent=1))
        capacity = out["capacity"]
        assert out["shortages"] == [capacity]
        assert (capacity["resource"], capacity["needs"], capacity["allocatable"]) == (
            "cpu",
            "2",
            "1",
        )
        assert capacity["allocatable"] == row["allocatable"]["cpu"]
        assert capacity["daemon_requests"] == row["daemon_requests"].get("cpu", "0")
        assert parse_milli(capacity["requested"]) == requested
        assert parse_milli(capacity["free"]) == free
        assert {"pod": "why-cap/holder", "requests": "300m"} in capacity["held_by"]
        assert capacity["pods"] >= 1
        assert out["preemption"] == (
            "preemption cannot help: the daemon asks for more cpu than the node's allocatable"
        )
    finally:
        admin.core.delete_namespace("why-cap")
        admin.core.delete_node("why-3")


def _wait_namespace(admin, ns: str) -> None:
    admin.core.create_namespace({"metadata": {"name": ns}})
    admin.wait_default_service_account(ns)


def test_a_daemon_without_priority_class_is_advised_and_preempts_with_node_critical(admin, dash):
    """A full kwok node (1 cpu, 800m held by an ordinary pod of priority 0) and a daemon
    asking for 500m: without a PriorityClass the real scheduler cannot preempt, and the cell
    says system-node-critical would, naming the pod it would evict. Given that class, the
    real scheduler evicts the holder, the daemon pod runs, and the cell follows."""
    full = node_manifest("why-5", "general")
    full["metadata"]["labels"]["why"] = "full"
    full["status"] = {
        "allocatable": {"cpu": "1", "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": "1", "memory": "8Gi", "pods": "110"},
    }
    admin.core.create_node(full)
    ns = "why-pre"
    try:
        _wait_namespace(admin, ns)
        holder = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "holder", "namespace": ns},
            "spec": {
                "nodeName": "why-5",
                "containers": [
                    {"name": "c", "image": "x", "resources": {"requests": {"cpu": "800m"}}}
                ],
            },
        }
        admin.core.create_namespaced_pod(ns, holder)
        manifest = daemonset_manifest(
            "needy", image="registry.example/agent:1.0", node_selector={"why": "full"}
        )
        manifest["metadata"]["namespace"] = ns
        manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "500m"}
        }
        admin.apps.create_namespaced_daemon_set(ns, manifest)
        key = ("why-5", f"{ns}/needy")

        def reason() -> str:
            dash.tick()
            cell = dash.matrix.cells.get(key)
            return cell.reason if cell is not None and cell.state is State.UNSCHEDULABLE else ""

        def describe() -> str:
            return str(dash.matrix.cells.get(key))

        wait_until("preemption advice", lambda: "would preempt" in reason(), 120, describe=describe)
        text = reason()
        assert "Insufficient cpu" in text and "most held by why-pre/holder 800m" in text, text
        # Other tests' daemons on the general pool run at priority 0 too, and may be named
        # among the victims after the holder (the scheduler reprieves them first).
        assert re.search(
            r"preemption: no PriorityClass \(priority 0\): the daemon cannot preempt \(the pods "
            r"holding the node have priority 0 \(\d+ pods?\)\); system-node-critical "
            r"\(2000001000\) would preempt 1 pod \(why-pre/holder\)$",
            text,
        ), text

        admin.apps.patch_namespaced_daemon_set(
            "needy",
            ns,
            {"spec": {"template": {"spec": {"priorityClassName": "system-node-critical"}}}},
        )

        def running() -> bool:
            dash.tick()
            cell = dash.matrix.cells.get(key)
            return cell is not None and cell.state is State.HEALTHY

        wait_until("the daemon preempted its way in", running, 180, describe=describe)
        # The real scheduler evicted the holder: it is gone from the node's load.
        load = dash.matrix.load.by_node.get("why-5")
        assert load is not None and f"{ns}/holder" not in load.members
        pod = next(p for p in dash.matrix.pods_in_cell(*key) if p.bound)
        assert pod.priority == 2000001000 and pod.priority_class == "system-node-critical"

        # The scheduler's Normal "Preempted" event on the victim (its own watch) is kept
        # under the daemon that preempted it: the healthy cell says whom it evicted.
        def victim_named() -> bool:
            dash.tick()
            cell = dash.matrix.cells.get(key)
            return cell is not None and any(
                n.reason == "Preempted" and n.about == f"preempted pod {ns}/holder"
                for n in cell.events
            )

        wait_until(
            "the victim's Preempted event in the daemon's cell",
            victim_named,
            60,
            describe=lambda: f"{describe()}\nkept: {list(dash.matrix.events.by_key.values())}",
        )
    finally:
        admin.core.delete_namespace(ns)
        admin.core.delete_node("why-5")


def test_two_daemonsets_wanting_one_host_port_and_node_critical_preempts_the_holder(admin, dash):
    """Two DaemonSets wanting TCP/19102 on one kwok node: the real scheduler places the
    first, leaves the second Pending ("didn't have free ports"), and the cell names the
    holder and says system-node-critical would preempt it. Given that class, the real
    scheduler evicts the first DaemonSet's pod; the second runs, and the first's new pod
    is the one blocked, naming the new holder, whom no class outranks."""
    ns, port = "why-port", 19102
    box = node_manifest("why-6", "general")
    box["metadata"]["labels"]["why"] = "ports"
    admin.core.create_node(box)
    try:
        _wait_namespace(admin, ns)

        def agent(name: str) -> dict:
            manifest = daemonset_manifest(
                name, image="registry.example/agent:1.0", node_selector={"why": "ports"}
            )
            manifest["metadata"]["namespace"] = ns
            manifest["spec"]["template"]["spec"]["containers"][0]["ports"] = [
                {"name": "metrics", "containerPort": port, "hostPort": port}
            ]
            return manifest

        first, second = ("why-6", f"{ns}/first"), ("why-6", f"{ns}/second")

        def cell(key):
            dash.tick()
            return dash.matrix.cells.get(key)

        def describe() -> str:
            return f"first: {dash.matrix.cells.get(first)}\nsecond: {dash.matrix.cells.get(second)}"

        def state(key, want: State, text: str = "") -> bool:
            c = cell(key)
            return c is not None and c.state is want and text in c.reason

        admin.apps.create_namespaced_daemon_set(ns, agent("first"))
        wait_until(
            "the first holds the port", lambda: state(first, State.HEALTHY), 120, describe=describe
        )
        holder = dash.matrix.cells[first].pod
        admin.apps.create_namespaced_daemon_set(ns, agent("second"))
        wait_until(
            "the port conflict with its advice",
            lambda: state(second, State.UNSCHEDULABLE, "would preempt it"),
            120,
            describe=describe,
        )
        blocked = dash.matrix.cells[second]
        assert "didn't have free ports for the requested pod ports" in blocked.reason
        assert f"TCP/{port} held by DaemonSet {ns}/first (pod {holder})" in blocked.reason
        assert blocked.reason.endswith(
            f"preemption: no PriorityClass (priority 0): the daemon cannot preempt the 1 pod "
            f"holding TCP/{port} (priority 0); system-node-critical (2000001000) would "
            f"preempt it ({ns}/{holder})"
        ), blocked.reason
        out = next(
            c for c in to_json(dash.matrix)["cells"] if (c["node"], c["daemonset"]) == second
        )
        print("\ncoverage JSON cell:", json.dumps(out, indent=1))
        assert out["port_holders"] == [
            {"pod": f"{ns}/{holder}", "ports": [f"TCP/{port}"], "priority": 0, "static": False}
        ]
        assert out["preemption"] == blocked.preemption and "capacity" not in out

        admin.apps.patch_namespaced_daemon_set(
            "second",
            ns,
            {"spec": {"template": {"spec": {"priorityClassName": "system-node-critical"}}}},
        )
        wait_until(
            "the second preempted its way in",
            lambda: state(second, State.HEALTHY),
            180,
            describe=describe,
        )
        winner = dash.matrix.cells[second].pod
        # The first DaemonSet's controller made a new pod; now it is the one left out.
        wait_until(
            "the first blocked by the second",
            lambda: state(first, State.UNSCHEDULABLE, f"held by DaemonSet {ns}/second"),
            120,
            describe=describe,
        )
        loser = dash.matrix.cells[first]
        assert loser.pod != holder
        assert f"TCP/{port} held by DaemonSet {ns}/second (pod {winner})" in loser.reason
        assert loser.reason.endswith(
            f"preemption: no PriorityClass (priority 0): the daemon cannot preempt the 1 pod "
            f"holding TCP/{port} (priority 2000001000); no PriorityClass would"
        ), loser.reason
        assert [(h.pod, h.priority) for h in loser.port_holders] == [(f"{ns}/{winner}", 2000001000)]
    finally:
        admin.core.delete_namespace(ns)
        admin.core.delete_node("why-6")
