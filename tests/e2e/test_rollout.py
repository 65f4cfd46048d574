"""End to end: revisions and rollouts as the real DaemonSet controller makes them.

* A RollingUpdate with maxUnavailable 1 to a template whose pods crash-loop (our kwok
  stage, triggered by a label of the new template): the controller replaces one pod, the
  new one never becomes available, and the rollout stops. The dashboard (the read-only
  ServiceAccount) must name that node in `blocked_by`, with its crash loop, and the
  budget 1 of 1 in use.
* An OnDelete DaemonSet whose template changed: the controller writes revision 2 and
  replaces nothing until a pod is deleted; the revision map shows both revisions with the
  nodes running each, and the rollout says which nodes still run the old template.
"""

from __future__ import annotations

import pytest

from dashboard.coverage.report import to_json
from dashboard.coverage.rollout import revisions_of, rollout_of
from dashboard.kube.clients import client_from_kubeconfig
from tests.e2e.workload import (
    Admin,
    daemonset_manifest,
    node_manifest,
    synced_collector,
    wait_until,
)

pytestmark = pytest.mark.e2e

NS = "rollout-e2e"
NODES = ("roll-1", "roll-2", "roll-3", "roll-4")
CRASH_LABEL = "crash-loop.stage.daemonviz.dev"


@pytest.fixture(scope="module")
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    admin = Admin(api)
    for name in NODES:
        manifest = node_manifest(name, "general")
        manifest["metadata"]["labels"]["rollout"] = "yes"
        admin.ensure_node(manifest)
    admin.create_namespace(NS)
    admin.wait_default_service_account(NS)
    try:
        yield admin
    finally:
        admin.core.delete_namespace(NS)
        for name in NODES:
            admin.core.delete_node(name)
        api.close()


@pytest.fixture(scope="module")
def dash(control_plane, admin):
    with synced_collector(control_plane.sa_kubeconfig, "e2e-rollout") as collector:
        yield collector


def _daemonset(name: str, strategy: dict) -> dict:
    manifest = daemonset_manifest(
        name, image="registry.example/agent:1.0", node_selector={"rollout": "yes"}
    )
    manifest["metadata"]["namespace"] = NS
    manifest["spec"]["updateStrategy"] = strategy
    return manifest


def _pods(admin: Admin, name: str) -> list:
    return admin.core.list_namespaced_pod(NS, label_selector=f"app={name}").items


def _settled(admin: Admin, name: str) -> bool:
    ds = admin.apps.read_namespaced_daemon_set(name, NS)
    s = ds.status
    return (
        (s.observed_generation or 0) >= ds.metadata.generation
        and s.desired_number_scheduled == len(NODES)
        and (s.number_available or 0) == len(NODES)
        and (s.updated_number_scheduled or 0) == len(NODES)
    )


def _new_template(admin: Admin, name: str, crash: bool) -> None:
    labels = {"app": name, **({CRASH_LABEL: "true"} if crash else {})}
    admin.apps.patch_namespaced_daemon_set(
        name,
        NS,
        {
            "spec": {
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": name, "image": "registry.example/agent:2.0"}]},
                }
            }
        },
    )


def test_stuck_rollout_names_the_crash_looping_node(admin, dash):
    name, key = "stuck-agent", f"{NS}/stuck-agent"
    admin.apps.create_namespaced_daemon_set(
        NS, _daemonset(name, {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
    )
    wait_until(f"{name} rolled out on {len(NODES)} nodes", lambda: _settled(admin, name))
    _new_template(admin, name, crash=True)

    def new_pods() -> list:
        return [p for p in _pods(admin, name) if p.metadata.labels.get(CRASH_LABEL) == "true"]

    # The controller moves in steps (delete an old pod, create the new one, write its
    # status), and kwok reports a new pod Ready for a moment before the crash-loop stage
    # takes over, so it may replace more than one pod. The test waits for a moment where
    # the dashboard and the controller agree, and checks that moment's snapshot.
    seen: dict = {}

    def held() -> bool:
        dash.tick()
        r = rollout_of(dash.matrix, key)
        pods = new_pods()
        if any(p.spec.node_name is None for p in pods):
            return False  # a new pod not scheduled yet: the controller is mid-step
        crashing = sorted(p.spec.node_name for p in pods)
        ds = admin.apps.read_namespaced_daemon_set(name, NS)
        seen.update(r=r, crashing=crashing, status=ds.status)
        return (
            r is not None
            and r.state in ("waiting", "stalled")
            and bool(crashing)
            and [b.node for b in r.blocked_by] == crashing
            and all("crash-looping" in b.reason for b in r.blocked_by)
            # The controller agrees: that many pods updated, none of them available.
            and (ds.status.observed_generation or 0) >= ds.metadata.generation
            and ds.status.updated_number_scheduled == len(crashing)
            and r.updated == len(crashing)
        )

    def describe() -> str:
        pods = [(p.spec.node_name, p.metadata.labels, p.status.phase) for p in _pods(admin, name)]
        return f"rollout: {seen.get('r')}\ncontroller: {seen.get('status')}\npods: {pods}"

    wait_until("rollout held by the crash-looping pods", held, timeout=120, describe=describe)
    r, crashing = seen["r"], seen["crashing"]
    k = len(crashing)
    for b in r.blocked_by:
        assert b.kind == "unavailable"
        assert "CrashLoopBackOff" in b.reason and "exit 1" in b.reason, b.reason
    assert r.budget is not None
    assert (r.budget.max_unavailable, r.budget.max_surge, r.budget.limit) == (1, 0, 1)
    assert r.budget.used == k and r.budget.remaining == 0
    assert (r.desired, r.updated, r.available, r.old_nodes) == (4, k, 0, 4 - k)
    assert r.headline().startswith(
        f"Rollout {r.state} on {k} node{'s' if k > 1 else ''}: {crashing[0]} ("
    )
    # The JSON document of the CLI says the same.
    doc = next(d for d in to_json(dash.matrix)["daemonsets"] if d["name"] == name)
    assert [b["node"] for b in doc["rollout"]["blocked_by"]] == crashing
    assert doc["rollout"]["budget"]["max_unavailable"] == {"spec": 1, "value": 1}
    # Two revisions, the new one on one node; the diff names the image first.
    rmap, diffs = revisions_of(dash.matrix, key)
    assert [(i.number, i.current, len(i.nodes)) for i in rmap.revisions] == [
        (1, False, 4 - k),
        (2, True, k),
    ]
    (d,) = diffs
    assert "-  " + name + "=registry.example/agent:1.0" in d.diff.splitlines()
    assert "+  " + name + "=registry.example/agent:2.0" in d.diff.splitlines()
    assert f"+    {CRASH_LABEL}: 'true'" in d.diff.splitlines()


def test_on_delete_revision_map_and_old_template_nodes(admin, dash):
    name, key = "ondelete-agent", f"{NS}/ondelete-agent"
    admin.apps.create_namespaced_daemon_set(NS, _daemonset(name, {"type": "OnDelete"}))
    wait_until(f"{name} running on {len(NODES)} nodes", lambda: _settled(admin, name))
    _new_template(admin, name, crash=False)

    def revision_2() -> bool:
        dash.tick()
        return len(dash.matrix.revisions_of(key)) == 2

    wait_until("revision 2 written by the controller", revision_2, timeout=60)
    # Replace one pod the only way OnDelete allows: delete it.
    victim = next(p for p in _pods(admin, name) if p.spec.node_name == "roll-1")
    admin.core.delete_namespaced_pod(victim.metadata.name, NS, grace_period_seconds=0)

    def mapped() -> bool:
        dash.tick()
        rmap, _ = revisions_of(dash.matrix, key)
        return [(i.number, i.nodes) for i in rmap.revisions] == [
            (1, ("roll-2", "roll-3", "roll-4")),
            (2, ("roll-1",)),
        ] and all((c := dash.matrix.cells.get((n, key))) is not None and c.available for n in NODES)

    def describe() -> str:
        return str(revisions_of(dash.matrix, key)[0])

    wait_until("revision map of two revisions", mapped, timeout=120, describe=describe)
    r = rollout_of(dash.matrix, key)
    assert r is not None and r.state == "on-delete" and r.budget is None
    assert [b.node for b in r.blocked_by] == ["roll-2", "roll-3", "roll-4"]
    assert r.headline() == (
        "OnDelete: 3 nodes still run an older template (roll-2, roll-3, roll-4); "
        "only deleting their pods updates them"
    )
    assert (r.updated, r.available, r.desired) == (1, 1, 4)
    doc = next(d for d in to_json(dash.matrix)["daemonsets"] if d["name"] == name)
    assert [(x["revision"], x["nodes"]) for x in doc["revisions"]["revisions"]] == [(1, 3), (2, 1)]
    cells = {
        c["node"]: c["revision"]
        for c in to_json(dash.matrix)["cells"]
        if c["daemonset"] == key and c["revision"] is not None
    }
    assert cells == {"roll-1": 2, "roll-2": 1, "roll-3": 1, "roll-4": 1}
