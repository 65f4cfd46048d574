"""End to end: the placement preview predicts what the real DaemonSet controller then does.

For each case the plan is run first (the CLI, with the dashboard's read-only
ServiceAccount), then the manifest or node change is applied for real as the admin, and
the controller is left to act: the nodes the plan targets must be the nodes the controller
runs pods on, node for node, and the nodes the plan says lose their pod (stops on, replaced
on) must be exactly the nodes whose pods the controller deletes.
"""

from __future__ import annotations

import contextlib
import copy
import json
from io import StringIO

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from dashboard.cli.main import build_parser, coverage
from dashboard.kube.clients import client_from_kubeconfig
from tests.e2e.workload import Admin, daemonset_manifest, node_manifest, wait_until

pytestmark = pytest.mark.e2e

NS = "plan"
B_TAINT = {"key": "plan/b", "value": "yes", "effect": "NoSchedule"}
C_TAINT = {"key": "plan/c", "value": "yes", "effect": "NoExecute"}
# pool → (nodes, taints)
POOLS = {"a": (("plan-a-1", "plan-a-2"), []), "b": (("plan-b-1", "plan-b-2"), [B_TAINT])}
POOLS["c"] = (("plan-c-1",), [C_TAINT])
ALL = sorted(n for names, _ in POOLS.values() for n in names)
TOLERATE_B = {"key": "plan/b", "operator": "Exists", "effect": "NoSchedule"}
TOLERATE_C = {"key": "plan/c", "operator": "Equal", "value": "yes", "effect": "NoExecute"}


@pytest.fixture(scope="module")
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    admin = Admin(api)
    for pool, (names, taints) in POOLS.items():
        for name in names:
            manifest = node_manifest(name, "general")
            manifest["metadata"]["labels"] |= {"plan": "yes", "plan-pool": pool}
            manifest["spec"]["taints"] = [dict(t) for t in taints]
            admin.ensure_node(manifest)
    # Until kwok reports a node Ready, the node lifecycle controller's not-ready:NoSchedule
    # taint keeps daemons off it (they tolerate only its NoExecute twin): a real moment,
    # but not the one these tests are about.
    own_taints = {
        name: {t["key"] for t in taints} for names, taints in POOLS.values() for name in names
    }

    def ready() -> bool:
        for node in admin.core.list_node(label_selector="plan=yes").items:
            keys = {t.key for t in node.spec.taints or ()}
            conditions = {c.type: c.status for c in node.status.conditions or ()}
            if keys != own_taints[node.metadata.name] or conditions.get("Ready") != "True":
                return False
        return True

    wait_until("the plan nodes Ready, without condition taints", ready)
    admin.create_namespace(NS)
    admin.wait_default_service_account(NS)
    try:
        yield admin
    finally:
        admin.core.delete_namespace(NS)
        for name in ALL:
            with contextlib.suppress(ApiException):
                admin.core.delete_node(name)
        api.close()


def _manifest(name: str, **kwargs) -> dict:
    manifest = daemonset_manifest(name, image=f"registry.example/{name}:1", **kwargs)
    manifest["metadata"]["namespace"] = NS
    return manifest


def run_plan(control_plane, tmp_path, text: str) -> dict:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    args = build_parser().parse_args(
        [
            "coverage",
            "--kubeconfig",
            str(control_plane.sa_kubeconfig),
            "-n",
            NS,
            "--plan",
            str(path),
            "-o",
            "json",
        ]
    )
    out, err = StringIO(), StringIO()
    assert coverage(args, out, err) == 0, err.getvalue()
    return json.loads(out.getvalue())


def plan_of(doc: dict, name: str) -> dict:
    return next(p for p in doc["plan"] if p["daemonset"] == f"{NS}/{name}")


def nodes(p: dict, section: str) -> set[str]:
    return {n["node"] for n in p[section]}


def live_pods(admin: Admin, name: str) -> dict[str, tuple[str, str]]:
    """node → (pod uid, revision hash) of the DaemonSet's pods that are not terminating."""
    out = {}
    for pod in admin.core.list_namespaced_pod(NS, label_selector=f"app={name}").items:
        if pod.metadata.deletion_timestamp is None:
            out[pod.spec.node_name] = (
                pod.metadata.uid,
                pod.metadata.labels.get("controller-revision-hash", ""),
            )
    return out


def settled(admin: Admin, name: str, rolling: bool = True) -> dict[str, tuple[str, str]]:
    """Wait until the controller has acted on the DaemonSet's last change and no pod of
    it is terminating; its pods by node then."""

    def check():
        ds = admin.apps.read_namespaced_daemon_set(name, NS)
        s = ds.status
        pods = admin.core.list_namespaced_pod(NS, label_selector=f"app={name}").items
        if any(p.metadata.deletion_timestamp is not None for p in pods):
            return None
        if (s.observed_generation or 0) < ds.metadata.generation:
            return None
        if rolling and (s.updated_number_scheduled or 0) != s.desired_number_scheduled:
            return None
        if (s.number_ready or 0) != (s.current_number_scheduled or 0):
            return None
        return live_pods(admin, name) or {"": ("", "")}

    result = wait_until(f"DaemonSet {NS}/{name} settled", check, timeout=120)
    result.pop("", None)
    return result


def apply(admin: Admin, manifest: dict) -> None:
    name = manifest["metadata"]["name"]
    try:
        admin.apps.read_namespaced_daemon_set(name, NS)
    except ApiException as exc:
        if exc.status != 404:
            raise
        admin.apps.create_namespaced_daemon_set(NS, manifest)
        return
    admin.apps.replace_namespaced_daemon_set(name, NS, manifest)


def test_new_daemonsets_land_where_the_plan_says(control_plane, admin, tmp_path):
    manifests = [
        _manifest("by-selector", node_selector={"plan-pool": "a"}),
        _manifest(
            "by-affinity",
            affinity_terms=[
                {"matchExpressions": [{"key": "plan-pool", "operator": "In", "values": ["a", "b"]}]}
            ],
            tolerations=[TOLERATE_B],
        ),
        _manifest(
            "by-toleration", node_selector={"plan": "yes"}, tolerations=[TOLERATE_B, TOLERATE_C]
        ),
        _manifest("untolerated", node_selector={"plan": "yes"}),
    ]
    doc = run_plan(control_plane, tmp_path, yaml.safe_dump_all(manifests))
    predicted = {m["metadata"]["name"]: plan_of(doc, m["metadata"]["name"]) for m in manifests}
    assert nodes(predicted["by-selector"], "targets") == {"plan-a-1", "plan-a-2"}
    assert nodes(predicted["by-affinity"], "targets") == {"plan-a-1", "plan-a-2", *POOLS["b"][0]}
    assert nodes(predicted["by-toleration"], "targets") == set(ALL)
    assert nodes(predicted["untolerated"], "targets") == {"plan-a-1", "plan-a-2"}
    assert all(p["change"] == "new" for p in predicted.values())
    rule = {n["node"]: n["rule"] for n in predicted["untolerated"]["not_targeted"]}
    assert rule["plan-b-1"] == "taint plan/b=yes:NoSchedule not tolerated"
    # The document is the cluster as if applied: the planned columns are there.
    planned = {d["name"] for d in doc["daemonsets"] if d["planned"]}
    assert planned == set(predicted)

    for manifest in manifests:
        apply(admin, manifest)
    for name, p in predicted.items():
        pods = settled(admin, name)
        assert set(pods) == nodes(p, "targets"), name
        ds = admin.apps.read_namespaced_daemon_set(name, NS)
        assert ds.status.desired_number_scheduled == p["counts"]["targets"]


def test_template_change_under_rolling_update(control_plane, admin, tmp_path):
    old = _manifest("roll", node_selector={"plan": "yes"}, tolerations=[TOLERATE_B])
    apply(admin, old)
    before = settled(admin, "roll")
    assert set(before) == {"plan-a-1", "plan-a-2", *POOLS["b"][0]}

    # Re-applying the same manifest changes no template: nothing would be replaced, even
    # though the live copy carries every default the API server filled in.
    same = plan_of(run_plan(control_plane, tmp_path, yaml.safe_dump(old)), "roll")
    assert same["change"] == "same-template"
    assert not same["replaced_on"] and not same["stops_on"]

    # A new image, and the b pool's NoSchedule taint no longer tolerated.
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/roll:2"
    del new["spec"]["template"]["spec"]["tolerations"]
    p = plan_of(run_plan(control_plane, tmp_path, yaml.safe_dump(new)), "roll")
    assert p["change"] == "template"
    assert nodes(p, "replaced_on") == {"plan-a-1", "plan-a-2"}
    assert nodes(p, "stops_on") == set(POOLS["b"][0])

    apply(admin, new)
    after = settled(admin, "roll")
    assert set(after) == nodes(p, "targets")
    deleted = {node for node, (uid, _) in before.items() if after.get(node, ("",))[0] != uid}
    assert deleted == nodes(p, "replaced_on") | nodes(p, "stops_on")


def test_template_change_under_on_delete(control_plane, admin, tmp_path):
    old = _manifest("ondelete", node_selector={"plan": "yes"}, tolerations=[TOLERATE_B, TOLERATE_C])
    old["spec"]["updateStrategy"] = {"type": "OnDelete"}
    apply(admin, old)
    before = settled(admin, "ondelete")
    assert set(before) == set(ALL)

    # A new image; the c pool's NoExecute taint and the b pool's NoSchedule taint no
    # longer tolerated: c loses its pod, b keeps it (NoSchedule does not evict), a keeps
    # the old template until someone deletes the pods.
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/ondelete:2"
    del new["spec"]["template"]["spec"]["tolerations"]
    p = plan_of(run_plan(control_plane, tmp_path, yaml.safe_dump(new)), "ondelete")
    assert p["change"] == "template"
    assert nodes(p, "targets") == {"plan-a-1", "plan-a-2"}
    assert nodes(p, "stops_on") == {"plan-c-1"}
    assert nodes(p, "kept_on") == set(POOLS["b"][0])
    assert nodes(p, "outdated_on") == {"plan-a-1", "plan-a-2"}
    assert not p["replaced_on"]

    apply(admin, new)
    after = settled(admin, "ondelete", rolling=False)
    ds = admin.apps.read_namespaced_daemon_set("ondelete", NS)
    assert ds.status.desired_number_scheduled == p["counts"]["targets"]
    assert set(after) == nodes(p, "targets") | nodes(p, "kept_on")
    deleted = {node for node, (uid, _) in before.items() if after.get(node, ("",))[0] != uid}
    assert deleted == nodes(p, "stops_on")
    # Every pod that stays still runs the old template.
    assert all(after[n][1] == before[n][1] for n in after)


def test_would_not_fit_is_what_the_scheduler_leaves_pending(control_plane, admin, tmp_path):
    """Three nodes: one too small for the daemon's cpu, one where another pod holds its
    host port, one with room. The controller creates a pod on each; the real scheduler
    leaves exactly the predicted two Pending."""
    sizes = {"plan-s-1": "1", "plan-s-2": "4", "plan-s-3": "4"}
    for name, cpu in sizes.items():
        manifest = node_manifest(name, "general")
        manifest["metadata"]["labels"]["plan-size"] = cpu
        manifest["status"]["allocatable"] = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
        manifest["status"]["capacity"] = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
        admin.core.create_node(manifest)
    try:

        def ready() -> bool:
            found = admin.core.list_node(label_selector="plan-size").items
            return len(found) == 3 and all(
                not n.spec.taints
                and {c.type: c.status for c in n.status.conditions or ()}.get("Ready") == "True"
                for n in found
            )

        wait_until("the sized nodes Ready", ready)
        port = {"containerPort": 9555, "hostPort": 9555, "protocol": "TCP"}
        holder = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "port-holder", "namespace": NS},
            "spec": {
                "nodeName": "plan-s-2",
                "containers": [{"name": "c", "image": "registry.example/x:1", "ports": [port]}],
            },
        }
        admin.core.create_namespaced_pod(NS, holder)
        wait_until(
            "the holder running",
            lambda: admin.core.read_namespaced_pod("port-holder", NS).status.phase == "Running",
        )
        manifest = _manifest("sized")
        manifest["spec"]["template"]["spec"]["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "plan-size", "operator": "Exists"}]}
                    ]
                }
            }
        }
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        container["resources"] = {"requests": {"cpu": "1500m", "memory": "16Mi"}}
        container["ports"] = [dict(port)]
        p = plan_of(run_plan(control_plane, tmp_path, yaml.safe_dump(manifest)), "sized")
        assert nodes(p, "targets") == set(sizes)
        unfit = {n["node"]: n["rule"] for n in p["would_not_fit"]}
        assert set(unfit) == {"plan-s-1", "plan-s-2"}
        assert unfit["plan-s-1"].startswith("Insufficient cpu: needs 1500m")
        assert "host port TCP/9555 held by pod plan/port-holder" in unfit["plan-s-2"]

        apply(admin, manifest)

        def placed():
            pods = admin.core.list_namespaced_pod(NS, label_selector="app=sized").items
            if len(pods) != len(sizes):
                return None
            pending, running = set(), set()
            for pod in pods:
                node = _target_of(pod)
                if pod.status.phase == "Running":
                    running.add(node)
                elif any(
                    c.type == "PodScheduled" and c.reason == "Unschedulable"
                    for c in pod.status.conditions or ()
                ):
                    pending.add(node)
            return (pending, running) if len(pending) + len(running) == len(sizes) else None

        pending, running = wait_until("the scheduler placed or refused each pod", placed)
        assert pending == set(unfit)
        assert running == nodes(p, "targets") - set(unfit)
    finally:
        for name in sizes:
            with contextlib.suppress(ApiException):
                admin.core.delete_node(name)


def _target_of(pod) -> str:
    """The node a daemon pod is for, bound or not (the controller's matchFields term)."""
    if pod.spec.node_name:
        return pod.spec.node_name
    terms = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for term in terms.node_selector_terms:
        for f in term.match_fields or ():
            if f.key == "metadata.name":
                return f.values[0]
    return ""


def test_node_patches_predict_which_daemons_leave(control_plane, admin, tmp_path):
    """ "If I taint this node and unlabel that one, which daemons leave?" Then done for real."""
    manifest = _manifest("patched", node_selector={"plan": "yes"}, tolerations=[TOLERATE_B])
    apply(admin, manifest)
    before = settled(admin, "patched")
    assert set(before) == {"plan-a-1", "plan-a-2", *POOLS["b"][0]}
    text = (
        "taint node/plan-a-1 plan/gone=yes:NoExecute\n"
        "label plan-pool=b,kubernetes.io/hostname=plan-b-2 plan-\n"
        "taint plan-pool=b plan/new=yes:NoSchedule\n"
    )
    doc = run_plan(control_plane, tmp_path, text)
    p = plan_of(doc, "patched")
    assert p["change"] == "nodes"
    assert nodes(p, "stops_on") == {"plan-a-1", "plan-b-2"}
    assert nodes(p, "kept_on") == {"plan-b-1"}  # a NoSchedule taint does not evict
    assert nodes(p, "targets") == {"plan-a-2"}
    patched = {n["node"] for n in doc["patched_nodes"]}
    assert patched == {"plan-a-1", "plan-b-1", "plan-b-2"}

    admin.set_taints("plan-a-1", [{"key": "plan/gone", "value": "yes", "effect": "NoExecute"}])
    admin.patch_node("plan-b-2", {"metadata": {"labels": {"plan": None}}})
    for name in POOLS["b"][0]:
        admin.set_taints(
            name, [B_TAINT, {"key": "plan/new", "value": "yes", "effect": "NoSchedule"}]
        )

    def gone() -> bool:
        pods = live_pods(admin, "patched")
        return set(pods) == nodes(p, "targets") | nodes(p, "kept_on")

    wait_until(
        "the controller removed the daemons the plan said would leave",
        gone,
        timeout=120,
        describe=lambda: f"pods on {sorted(live_pods(admin, 'patched'))}, plan {p}",
    )
    after = live_pods(admin, "patched")
    deleted = {node for node, (uid, _) in before.items() if after.get(node, ("",))[0] != uid}
    assert deleted == nodes(p, "stops_on")
    wait_until(
        "desired count updated",
        lambda: (
            admin.apps.read_namespaced_daemon_set("patched", NS).status.desired_number_scheduled
            == p["counts"]["targets"]
        ),
    )
