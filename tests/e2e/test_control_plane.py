"""End to end against a real control plane: the real DaemonSet controller creates the daemon
pods, the real scheduler binds them, kwok plays the kubelets. The dashboard side (collector
and `coverage --kubeconfig`) runs with the `daemonviz` ServiceAccount of deploy/rbac.yaml,
which may only get/list/watch.

The tests run in file order and share one cluster; every scenario puts the cluster back
the way it found it, so each one starts from rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.coverage.access import daemonset_access
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.states import State
from dashboard.coverage.static import static_columns
from dashboard.coverage.summary import daemonset_summary
from dashboard.kube.clients import client_from_kubeconfig
from tests.e2e.workload import (
    ALL_NODES,
    DAEMONSETS,
    EXPECTED_EXCLUSION,
    EXPECTED_POOLS,
    NAMESPACE,
    POOLS,
    Admin,
    access_daemonset_manifest,
    access_service_manifest,
    controller_at_rest,
    daemonset_manifest,
    ds_key,
    mirror_pod_manifest,
    node_ip,
    node_names,
    pool_of,
    wait_until,
)
from tests.helpers import collectors

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RBAC = REPO / "deploy" / "rbac.yaml"
SA_USER = "system:serviceaccount:daemonviz:daemonviz"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    yield Admin(api)
    api.close()


@pytest.fixture(scope="module")
def workload(control_plane, admin):
    t0 = time.monotonic()
    admin.create_namespace(NAMESPACE)
    # Pods need the namespace's `default` ServiceAccount (admission); the controller
    # manager's service-account controller makes it.
    admin.wait_default_service_account(NAMESPACE)
    for pool in POOLS:
        for name in node_names(pool):
            admin.create_node(name, pool)

    def nodes_ready() -> bool:
        nodes = admin.core.list_node().items
        ready = [
            n
            for n in nodes
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        ]
        return len(ready) == len(ALL_NODES)

    wait_until("every kwok node Ready", nodes_ready, timeout=120)
    for manifest in DAEMONSETS.values():
        admin.create_daemonset(manifest)
    for name, pools in EXPECTED_POOLS.items():
        want = sum(POOLS[p][0] for p in pools)

        def settled(name=name, want=want) -> bool:
            ds = admin.daemonset(name)
            return ds.status.desired_number_scheduled == want and controller_at_rest(ds)

        wait_until(
            f"DaemonSet {name}: {want} pods created, bound and ready",
            settled,
            timeout=180,
            describe=lambda name=name: str(admin.daemonset(name).status),
        )
    control_plane.timings["workload"] = time.monotonic() - t0
    control_plane.log(f"workload at rest in {control_plane.timings['workload']:.1f}s")
    return admin


class Dash:
    """The dashboard's collector, on the ServiceAccount kubeconfig, ticked by the test."""

    def __init__(self, collector: ClusterCollector, admin: Admin):
        self.collector = collector
        self.admin = admin

    @property
    def matrix(self) -> Matrix:
        return self.collector.matrix

    def cell(self, node: str, ds: str):
        return self.matrix.cells.get((node, ds_key(ds)))

    def until(
        self,
        what: str,
        check: Callable[[Matrix], object],
        timeout: float = 90.0,
        on_tick: Callable[[Matrix], None] | None = None,
    ):
        """Tick the collector (apply what its watches delivered) until `check` holds."""

        def step():
            self.collector.tick()
            if on_tick is not None:
                on_tick(self.matrix)
            return check(self.matrix)

        return wait_until(what, step, timeout=timeout, interval=0.1, describe=self.describe)

    def describe(self) -> str:
        m = self.matrix
        lines = [f"collector status: {self.collector.status}"]
        for key in sorted(m.daemonsets):
            s = daemonset_summary(m, key)
            lines.append(f"{key}: {s.counts.states} status={m.daemonsets[key].status}")
        for (node, key), cell in sorted(m.cells.items()):
            if cell.state not in (State.HEALTHY, State.NOT_TARGETED):
                lines.append(f"  {node} × {key}: {cell.state.value} — {cell.reason}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ at rest

    def counts_vs_controller(self, names: Iterable[str]) -> list[str]:
        """Differences between the dashboard's counts and the DaemonSet controller's own
        status, read fresh from the API server (empty when they agree exactly)."""
        diffs = []
        for name in names:
            ds = self.admin.daemonset(name)
            s = ds.status
            if (s.observed_generation or 0) < ds.metadata.generation:
                diffs.append(f"{name}: controller has not observed its generation yet")
                continue
            counts = daemonset_summary(self.matrix, ds_key(name)).counts
            raw = self.matrix.ds_counts[ds_key(name)]
            pairs = (
                ("targeted/desiredNumberScheduled", counts.targeted, s.desired_number_scheduled),
                ("misscheduled/numberMisscheduled", counts.misscheduled, s.number_misscheduled),
                ("updated/updatedNumberScheduled", raw["updated"], s.updated_number_scheduled or 0),
                ("current/currentNumberScheduled", raw["current"], s.current_number_scheduled),
                ("ready/numberReady", raw["ready"], s.number_ready),
            )
            diffs += [
                f"{name}: {label} {ours} ≠ {theirs}"
                for label, ours, theirs in pairs
                if ours != theirs
            ]
        return diffs

    def wait_counts_match(self, names: Iterable[str] = DAEMONSETS, timeout: float = 90.0) -> None:
        names = list(names)
        last: list[str] = []

        def agree(_m) -> bool:
            nonlocal last
            last = self.counts_vs_controller(names)
            return not last

        try:
            self.until("dashboard counts = DaemonSet controller status", agree, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast differences: {last}") from None

    def resync_controller(self, names: Iterable[str]) -> list[str]:
        """Make the DaemonSet controller recompute the status of `names`; returns how its
        status differed from the dashboard before (logged, see below).

        kube-controller-manager v1.36.3 does not re-sync a DaemonSet when a node turns
        (shouldRun=false, shouldContinueRunning=true) while the daemon pod stays there
        (a new untolerated NoSchedule taint, e.g. node.kubernetes.io/not-ready):
        `syncNodeUpdate` enqueues only for "should run, no pod", "must not run, pod
        present" and "numberMisscheduled > 0". Its `.status` then keeps the old
        desired/misscheduled numbers until something else touches the DaemonSet, while
        the dashboard already shows the pod as misscheduled. A metadata-only change makes
        the controller recompute, after which the numbers must agree exactly.
        """
        names = list(names)
        before = self.counts_vs_controller(names)
        if before:
            print(f"[e2e] controller status stale before re-sync: {before}", flush=True)
        for name in names:
            self.admin.touch_daemonset(name)
        return before

    def wait_rest(self, names: Iterable[str] = DAEMONSETS, timeout: float = 120.0) -> None:
        """Controller at rest for every DaemonSet, and the dashboard agrees exactly."""
        for name in names:
            wait_until(
                f"DaemonSet {name} at rest",
                lambda name=name: controller_at_rest(self.admin.daemonset(name)),
                timeout=timeout,
                describe=lambda name=name: str(self.admin.daemonset(name).status),
            )
        self.wait_counts_match(names, timeout)


@pytest.fixture(scope="module")
def dash(control_plane, workload):
    collector = collectors.make(
        ClusterConfig(
            slug="e2e",
            name="e2e",
            source="kubeconfig",
            kubeconfig_path=str(control_plane.sa_kubeconfig),
        )
    )
    collector.start_source()
    d = Dash(collector, workload)
    try:
        d.until("collector synced", lambda m: collector.status.state == "synced", timeout=60)
        yield d
    finally:
        collector.stop_source()


def expected_cell_ok(dash: Dash, node: str, ds: str) -> str:
    """'' when the cell shows what the rules predict for an untouched node, else why not."""
    cell = dash.cell(node, ds)
    if cell is None:
        return f"{node} × {ds}: no cell"
    pool = pool_of(node)
    if pool in EXPECTED_POOLS[ds]:
        if cell.state is not State.HEALTHY:
            return f"{node} × {ds}: {cell.state.value} ({cell.reason}), want healthy"
    else:
        want = EXPECTED_EXCLUSION[(ds, pool)]
        if cell.state is not State.NOT_TARGETED or want not in cell.reason:
            return f"{node} × {ds}: {cell.state.value} ({cell.reason}), want not-targeted: {want}"
    return ""


def all_cells_right(dash: Dash, nodes: Iterable[str] = ALL_NODES) -> list[str]:
    return [p for n in nodes for ds in DAEMONSETS if (p := expected_cell_ok(dash, n, ds))]


# --------------------------------------------------------------------------- RBAC


def test_rbac_manifest_passes_server_dry_run(control_plane):
    out = control_plane.kubectl("apply", "--dry-run=server", "-f", str(RBAC)).stdout
    for obj in (
        "namespace/daemonviz",
        "serviceaccount/daemonviz",
        "clusterrole.rbac.authorization.k8s.io/daemonviz-read",
        "clusterrolebinding.rbac.authorization.k8s.io/daemonviz-read",
    ):
        assert obj in out and "(server dry run)" in out, out


def test_deployment_manifests_pass_server_dry_run(control_plane):
    """Everything in deploy/ (web and collector Deployments, Services, config, jobs, and the
    example Secret) is accepted by a real API server's validation and admission."""
    # Namespaced objects need their namespace to exist even for a dry run.
    control_plane.kubectl("apply", "-f", str(RBAC))
    deploy = RBAC.parent
    out = control_plane.kubectl("apply", "--dry-run=server", "-k", str(deploy)).stdout
    for obj in ("deployment.apps/daemonviz-web", "deployment.apps/daemonviz-collector"):
        assert obj in out, out
    assert "(server dry run)" in out
    secret = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", str(deploy / "k8s" / "secret.example.yaml")
    ).stdout
    assert "secret/daemonviz" in secret, secret


def test_service_account_may_only_read(control_plane):
    sa = control_plane.sa_kubeconfig

    def can(*args: str) -> str:
        proc = control_plane.kubectl("auth", "can-i", *args, kubeconfig=sa, check=False)
        return proc.stdout.strip()

    for resource in (
        "nodes",
        "pods",
        "events",
        "namespaces",
        "daemonsets.apps",
        "controllerrevisions.apps",
        "priorityclasses.scheduling.k8s.io",
    ):
        for verb in ("get", "list", "watch"):
            assert can(verb, resource, "-A") == "yes", (verb, resource)
        for verb in ("create", "update", "patch", "delete", "deletecollection"):
            assert can(verb, resource, "-A") == "no", (verb, resource)
    for args in (
        ("list", "secrets"),
        ("get", "configmaps"),
        ("list", "deployments.apps"),
        ("get", "pods", "--subresource=log"),
        ("create", "pods", "--subresource=exec"),
        ("create", "serviceaccounts", "--subresource=token"),
    ):
        assert can(*args, "-A") == "no", args
    # A write really is refused by the API server (server-side dry run: nothing changes).
    proc = control_plane.kubectl(
        "delete", "node", node_names("general")[0], "--dry-run=server", kubeconfig=sa, check=False
    )
    assert proc.returncode != 0 and "Forbidden" in proc.stderr, proc.stderr
    # Its identity is the ServiceAccount.
    who = control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=sa).stdout
    assert json.loads(who)["status"]["userInfo"]["username"] == SA_USER


# --------------------------------------------------------------------------- at rest


def test_at_rest_every_cell_is_right_and_counts_equal_the_controller(dash):
    assert dash.collector.status.state == "synced"  # listed and watching with get/list/watch only
    problems: list[str] = []

    def right(_m) -> bool:
        nonlocal problems
        problems = all_cells_right(dash)
        return not problems

    try:
        dash.until("every cell as the rules predict", right, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(problems)) from None
    m = dash.matrix
    assert set(m.nodes) == set(ALL_NODES)
    assert set(m.daemonsets) == {ds_key(n) for n in DAEMONSETS}
    assert all(h.ready == "True" for h in m.health.values())
    dash.wait_rest()
    for name, pools in EXPECTED_POOLS.items():
        counts = daemonset_summary(m, ds_key(name)).counts
        want = sum(POOLS[p][0] for p in pools)
        assert (counts.targeted, counts.healthy, counts.misscheduled) == (want, want, 0), name
        assert m.ds_counts[ds_key(name)]["updated"] == want


def test_lists_are_watch_list_streams_on_a_real_api_server(dash):
    """kube-apiserver v1.36 serves WatchList (its gate is on since v1.34): every resource was
    listed as one stream that ended with the initial-events-end bookmark, and the matrix
    built from those streams is the one the at-rest test checks cell by cell."""
    stats = dash.collector.watch_stats()
    assert set(stats) >= {"nodes", "pods", "daemonsets", "controllerrevisions"}
    for resource, s in stats.items():
        assert s.streamed_lists >= 1 and s.list_mode == "watch-list", (resource, s)
        assert s.watch_list_refused == "", (resource, s.watch_list_refused)
    # ...and what the streams built follows the cluster to the state the rules predict.
    dash.until("every cell as the rules predict", lambda _m: not all_cells_right(dash), 60)


def _coverage_json(control_plane) -> dict:
    """`manage.py coverage --format json` through the dashboard's ServiceAccount."""
    proc = subprocess.run(
        [sys.executable, "manage.py", "coverage", "--kubeconfig",
         str(control_plane.sa_kubeconfig), "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "daemonviz.settings"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_coverage_cli_against_the_live_cluster(control_plane, dash):
    dash.wait_rest()
    doc = _coverage_json(control_plane)
    assert doc["summary"]["nodes"] == len(ALL_NODES)
    by_name = {d["name"]: d for d in doc["daemonsets"]}
    assert set(by_name) == set(DAEMONSETS)
    for name, pools in EXPECTED_POOLS.items():
        d = by_name[name]
        want = sum(POOLS[p][0] for p in pools)
        live = dash.admin.daemonset(name).status
        assert d["status"]["desired"] == live.desired_number_scheduled == want, name
        assert d["status"]["updated"] == live.updated_number_scheduled == want, name
        assert d["status_mismatches"] == [], (name, d["status_mismatches"])
        assert d["status_lag"] is None
    cells = {(c["node"], c["daemonset"]): c for c in doc["cells"]}
    assert len(cells) == len(ALL_NODES) * len(DAEMONSETS)
    for node in ALL_NODES:
        for name, pools in EXPECTED_POOLS.items():
            c = cells[(node, ds_key(name))]
            want = "healthy" if pool_of(node) in pools else "not-targeted"
            assert c["state"] == want, (node, name, c)


# --------------------------------------------------------------------------- live changes


def test_node_join_shows_its_row_and_pods_live(dash):
    name = "general-9"
    seen: list[str] = []  # the log-agent cell's states as the dashboard showed them, in order

    def record(m: Matrix) -> None:
        cell = m.cells.get((name, ds_key("log-agent")))
        if cell is not None and (not seen or seen[-1] != cell.state.value):
            seen.append(cell.state.value)

    dash.admin.create_node(name, "general")
    dash.until("row general-9 appears", lambda m: name in m.nodes, timeout=30, on_tick=record)
    dash.until(
        "general-9's daemon pods healthy",
        lambda m: not [p for ds in DAEMONSETS if (p := expected_cell_ok(dash, name, ds))],
        timeout=90,
        on_tick=record,
    )
    print(f"[e2e] general-9 × log-agent as shown live: {' → '.join(seen)}", flush=True)
    assert seen[-1] == "healthy"
    pods = [dash.admin.pod_on(ds, name) for ds in ("node-exporter", "log-agent", "amd64-only")]
    assert all(p is not None and p.status.phase == "Running" for p in pods)
    dash.wait_rest()
    for ds in ("node-exporter", "log-agent", "amd64-only"):
        assert (
            dash.admin.daemonset(ds).status.desired_number_scheduled
            == daemonset_summary(dash.matrix, ds_key(ds)).counts.targeted
        )


def cells_in_state(node: str, daemonsets: tuple[str, ...], state: State):
    """A matrix predicate: every one of `daemonsets` has a cell in `state` on `node`."""

    def reached(m: Matrix) -> bool:
        cells = [m.cells.get((node, ds_key(ds))) for ds in daemonsets]
        return all(cell is not None and cell.state is state for cell in cells)

    return reached


def test_noschedule_taint_makes_cells_misscheduled(dash):
    node = "general-1"
    taint = {"key": "maintenance", "value": "true", "effect": "NoSchedule"}
    dash.admin.set_taints(node, [taint])
    try:
        misscheduled = cells_in_state(node, ("log-agent", "amd64-only"), State.MISSCHEDULED)
        dash.until("NoSchedule taint → misscheduled", misscheduled, timeout=60)
        cell = dash.cell(node, "log-agent")
        assert cell.reason.startswith("kept, not desired")
        assert "maintenance=true:NoSchedule" in cell.reason
        assert dash.cell(node, "node-exporter").state is State.HEALTHY  # tolerates everything
        # The pod stays (shouldContinueRunning), and the controller counts it misscheduled.
        assert dash.admin.pod_on("log-agent", node) is not None
        dash.resync_controller(["log-agent", "amd64-only"])
        dash.wait_counts_match()
        for ds in ("log-agent", "amd64-only"):
            assert dash.admin.daemonset(ds).status.number_misscheduled == 1
            assert daemonset_summary(dash.matrix, ds_key(ds)).counts.misscheduled == 1
    finally:
        dash.admin.set_taints(node, [])
    dash.until("taint removed → healthy again", lambda m: not all_cells_right(dash, [node]))
    dash.wait_rest()


def test_noexecute_taint_removes_the_pod_and_untargets_the_cell(dash):
    node = "general-2"
    taint = {"key": "evict", "value": "now", "effect": "NoExecute"}
    dash.admin.set_taints(node, [taint])
    try:
        gone = cells_in_state(node, ("log-agent", "amd64-only"), State.NOT_TARGETED)
        dash.until("NoExecute taint → pod gone, not targeted", gone, timeout=90)
        for ds in ("log-agent", "amd64-only"):
            cell = dash.cell(node, ds)
            assert "evict=now:NoExecute" in cell.reason, cell.reason
            assert not cell.should_run and cell.pods == 0
            assert dash.admin.pod_on(ds, node) is None
        assert dash.cell(node, "node-exporter").state is State.HEALTHY
        dash.wait_rest()
    finally:
        dash.admin.set_taints(node, [])
    dash.until("taint removed → pods back", lambda m: not all_cells_right(dash, [node]))
    dash.wait_rest()


def test_node_not_ready_shows_badge_and_the_predicted_states(dash):
    node = "general-3"
    label = "node-not-ready.stage.kwok.x-k8s.io"
    dash.admin.patch_node(node, {"metadata": {"labels": {label: "true"}}})
    try:
        dash.until(
            "node badge NotReady",
            lambda m: m.health.get(node) and m.health[node].ready == "False",
            timeout=60,
        )
        assert dash.matrix.health[node].word == "NotReady"
        # The node lifecycle controller taints it node.kubernetes.io/not-ready (NoSchedule
        # and NoExecute). Daemon pods tolerate only the NoExecute one (auto-added), so per
        # docs/cells.md (Targeting) a DaemonSet without its own toleration: shouldRun false,
        # shouldContinueRunning true → its pod is kept and counted misscheduled.
        dash.until(
            "log-agent misscheduled on the NotReady node",
            lambda m: (
                (c := m.cells.get((node, ds_key("log-agent")))) is not None
                and c.state is State.MISSCHEDULED
            ),
            timeout=90,
        )
        cell = dash.cell(node, "log-agent")
        assert cell.reason.startswith("kept, not desired"), cell.reason
        assert "node.kubernetes.io/not-ready:NoSchedule" in cell.reason, cell.reason
        assert dash.admin.pod_on("log-agent", node) is not None
        # node-exporter tolerates everything: still targeted, its pod kept.
        ne = dash.cell(node, "node-exporter")
        assert ne.should_run and ne.state in (State.HEALTHY, State.NOT_READY), ne
        dash.resync_controller(["log-agent", "amd64-only"])
        dash.wait_counts_match()
        assert dash.admin.daemonset("log-agent").status.number_misscheduled == 1
    finally:
        dash.admin.patch_node(node, {"metadata": {"labels": {label: None}}})
    dash.until(
        "node Ready again, cells right",
        lambda m: m.health[node].ready == "True" and not all_cells_right(dash, [node]),
        timeout=120,
    )
    dash.wait_rest()


def test_failing_pod_shows_a_failing_cell(dash):
    node = "general-4"
    pod = dash.admin.pod_on("log-agent", node)
    assert pod is not None
    dash.admin.core.patch_namespaced_pod(
        pod.metadata.name,
        NAMESPACE,
        {"metadata": {"labels": {"crash-loop.stage.daemonviz.dev": "true"}}},
    )
    dash.until(
        "crash-looping cell",
        lambda m: (
            (c := m.cells.get((node, ds_key("log-agent")))) is not None
            and c.state is State.CRASH_LOOPING
        ),
        timeout=60,
    )
    cell = dash.cell(node, "log-agent")
    assert cell.restarts == 5 and cell.pod == pod.metadata.name
    assert cell.last_termination is not None and cell.last_termination.exit_code == 1
    counts = daemonset_summary(dash.matrix, ds_key("log-agent")).counts
    assert (counts.failing, counts.crash_looping) == (1, 1)
    # The controller sees the same: one fewer ready, nothing else different.
    dash.wait_counts_match()
    status = dash.admin.daemonset("log-agent").status
    assert status.number_ready == status.desired_number_scheduled - 1
    # Replace the pod: the controller re-creates it and the cell heals.
    dash.admin.core.delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)
    dash.until("re-created pod healthy", lambda m: not all_cells_right(dash, [node]), timeout=90)
    dash.wait_rest()


def test_kwok_failed_pod_is_replaced_by_the_controller(dash):
    """kwok's own failure stage: the pod's container exits, phase Failed. The controller
    deletes a failed daemon pod and creates a new one (docs/cells.md); the dashboard
    follows it back to healthy with the new pod."""
    node = "general-5"
    pod = dash.admin.pod_on("log-agent", node)
    assert pod is not None
    seen: list[str] = []

    def record(m: Matrix) -> None:
        cell = m.cells.get((node, ds_key("log-agent")))
        if cell is not None and (not seen or seen[-1] != cell.state.value):
            seen.append(cell.state.value)

    dash.admin.core.patch_namespaced_pod(
        pod.metadata.name,
        NAMESPACE,
        {"metadata": {"labels": {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}}},
    )
    dash.until(
        "failed pod replaced, cell healthy with the new pod",
        lambda m: (
            (c := m.cells.get((node, ds_key("log-agent")))) is not None
            and c.state is State.HEALTHY
            and c.pod != pod.metadata.name
        ),
        timeout=90,
        on_tick=record,
    )
    print(f"[e2e] {node} × log-agent as shown live: {' → '.join(seen)}", flush=True)
    events = dash.admin.core.list_namespaced_event(
        NAMESPACE, field_selector="reason=FailedDaemonPod"
    ).items
    assert any(pod.metadata.name in (e.message or "") for e in events), [e.message for e in events]
    dash.wait_rest()


def test_image_change_is_outdated_then_healthy_through_controller_revisions(dash):
    key = ds_key("log-agent")
    old_hash = dash.matrix.current_hash(key)
    assert old_hash
    max_outdated = 0

    def record(m: Matrix) -> None:
        nonlocal max_outdated
        max_outdated = max(max_outdated, daemonset_summary(m, key).counts.outdated)

    dash.admin.apps.patch_namespaced_daemon_set(
        "log-agent",
        NAMESPACE,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "log-agent", "image": "registry.example/log-agent:1.1"}
                        ]
                    }
                }
            }
        },
    )
    dash.until("some cells outdated", lambda m: max_outdated > 0, timeout=60, on_tick=record)
    dash.until(
        "rollout done: every log-agent cell healthy and current",
        lambda m: (
            m.current_hash(key) != old_hash
            and (c := daemonset_summary(m, key).counts).outdated == 0
            and c.healthy == c.targeted
        ),
        timeout=180,
        on_tick=record,
    )
    dash.wait_rest()
    # "Current" was decided through ControllerRevisions: the dashboard's current hash is
    # the owned revision with the highest .revision, and every pod carries it.
    ds = dash.admin.daemonset("log-agent")
    revisions = [
        r
        for r in dash.admin.apps.list_namespaced_controller_revision(NAMESPACE).items
        if any(o.uid == ds.metadata.uid for o in r.metadata.owner_references or [])
    ]
    newest = max(revisions, key=lambda r: r.revision)
    new_hash = newest.metadata.labels["controller-revision-hash"]
    assert len(revisions) >= 2
    assert dash.matrix.current_hash(key) == new_hash != old_hash
    pods = dash.admin.pods_of("log-agent")
    assert {p.metadata.labels["controller-revision-hash"] for p in pods} == {new_hash}
    assert {p.spec.containers[0].image for p in pods} == {"registry.example/log-agent:1.1"}
    assert max_outdated >= 1
    counts = daemonset_summary(dash.matrix, key).counts
    assert (
        dash.matrix.ds_counts[key]["updated"]
        == counts.targeted
        == ds.status.updated_number_scheduled
    )


def test_gt_lt_integers_are_read_as_the_controller_reads_them(dash):
    """Node affinity Gt/Lt: the controller parses both sides with Go's strconv.ParseInt.
    A node label `1_0` (Python's int() reads 10) is not greater than 5; a rule value `5_0`
    (a valid label value that ParseInt refuses) makes its whole term match no node. The API
    server accepts both; the real controller decides, the dashboard must agree."""
    labels = {"general-6": "7", "general-7": "1_0", "general-8": "3"}
    for node, value in labels.items():
        dash.admin.patch_node(node, {"metadata": {"labels": {"gen": value}}})
    gt = daemonset_manifest(
        "gen-gt",
        image="registry.example/gen:1",
        affinity_terms=[{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["5"]}]}],
    )
    lt = daemonset_manifest(
        "gen-lt",
        image="registry.example/gen:1",
        affinity_terms=[
            {
                "matchExpressions": [
                    {"key": "pool", "operator": "In", "values": ["general"]},
                    {"key": "gen", "operator": "Lt", "values": ["5_0"]},
                ]
            }
        ],
    )
    try:
        dash.admin.create_daemonset(gt)
        dash.admin.create_daemonset(lt)
        names = ["gen-gt", "gen-lt"]
        dash.until("both columns", lambda m: all(ds_key(n) in m.daemonsets for n in names))
        dash.wait_rest(names)
        # What the controller did, on its own.
        assert dash.admin.daemonset("gen-gt").status.desired_number_scheduled == 1
        assert dash.admin.pod_on("gen-gt", "general-6") is not None
        assert dash.admin.pod_on("gen-gt", "general-7") is None
        assert dash.admin.daemonset("gen-lt").status.desired_number_scheduled == 0
        # What the dashboard shows.
        assert dash.cell("general-6", "gen-gt").state is State.HEALTHY
        assert dash.cell("general-7", "gen-gt").state is State.NOT_TARGETED
        assert "gen > 5 (node has gen=1_0)" in dash.cell("general-7", "gen-gt").reason
        for node in ALL_NODES:
            assert dash.cell(node, "gen-lt").state is State.NOT_TARGETED, node
        assert "invalid term" in dash.cell("general-6", "gen-lt").reason
    finally:
        for name in ("gen-gt", "gen-lt"):
            with contextlib.suppress(ApiException):
                dash.admin.apps.delete_namespaced_daemon_set(
                    name, NAMESPACE, propagation_policy="Background"
                )
        for node in labels:
            dash.admin.patch_node(node, {"metadata": {"labels": {"gen": None}}})
    dash.until(
        "gen columns gone",
        lambda m: not any(ds_key(n) in m.daemonsets for n in ("gen-gt", "gen-lt")),
        timeout=60,
    )


def test_deleted_daemonset_column_disappears(dash):
    key = ds_key("amd64-only")
    assert key in dash.matrix.daemonsets
    dash.admin.apps.delete_namespaced_daemon_set(
        "amd64-only", NAMESPACE, propagation_policy="Background"
    )
    dash.until(
        "column gone",
        lambda m: key not in m.daemonsets and not any(k == key for (_, k) in m.cells),
        timeout=60,
    )
    assert key not in dash.matrix.ds_counts
    remaining = [n for n in DAEMONSETS if n != "amd64-only"]
    dash.wait_rest(remaining)


# --------------------------------------------------------------------------- access paths


def _slice_endpoints(admin, service: str) -> dict[str, object]:
    """pod name -> its endpoint in the Service's EndpointSlices, as the controller wrote it."""
    from kubernetes.client import DiscoveryV1Api

    api = DiscoveryV1Api(admin.core.api_client)
    slices = api.list_namespaced_endpoint_slice(
        NAMESPACE, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    return {e.target_ref.name: e for s in slices for e in (s.endpoints or []) if e.target_ref}


def test_access_paths_come_from_the_real_endpointslice_controller(control_plane, dash):
    name, port = "access-agent", 9400
    key = ds_key(name)
    admin = dash.admin
    # The general pool as it is now (a node joined it in an earlier test).
    general = sorted(
        n.metadata.name for n in admin.core.list_node(label_selector="pool=general").items
    )
    admin.create_daemonset(access_daemonset_manifest(name, port))
    admin.core.create_namespaced_service(NAMESPACE, access_service_manifest(name, {"app": name}))
    # Meant for it (its app label says so), but its selector has a typo: selects nothing.
    typo = access_service_manifest(f"{name}-old", {"app": "access-agnt"})
    typo["metadata"]["labels"] = {"app": name}
    admin.core.create_namespaced_service(NAMESPACE, typo)
    try:
        wait_until(
            f"DaemonSet {name} at rest",
            lambda: (
                controller_at_rest(ds := admin.daemonset(name))
                and ds.status.desired_number_scheduled == len(general)
            ),
            timeout=180,
            describe=lambda: str(admin.daemonset(name).status),
        )
        # The real EndpointSlice controller lists every daemon pod, by its pod IP.
        wait_until(
            "every daemon pod ready in the Service's slices",
            lambda: (
                len(eps := _slice_endpoints(admin, name)) == len(general)
                and all(e.conditions.ready for e in eps.values())
            ),
            timeout=120,
        )

        def every_cell_reachable(m: Matrix) -> bool:
            cells = [m.cells.get((n, key)) for n in general]
            return all(c is not None and c.in_service_endpoints is True for c in cells)

        dash.until("every cell in its Service's endpoints", every_cell_reachable)
        for node in general:
            pod = admin.pod_on(name, node)
            cell = dash.cell(node, name)
            assert pod.status.pod_ip.startswith("10.244."), pod.status.pod_ip
            reach = dash.matrix.access_of(node, key)
            assert set(reach.addresses) == {
                f"{pod.status.pod_ip}:{port}",  # the Service's endpoint (named targetPort)
                f"{node_ip(node)}:{port}",  # the hostPort on the node's InternalIP
            }, (node, cell)
            assert reach.dns == (
                f"{pod.status.pod_ip.replace('.', '-')}.{name}.{NAMESPACE}.svc.cluster.local",
            )
            assert not cell.out_of_endpoints
        # The column: its Service, the resolved named port, and the typo explained.
        access = daemonset_access(
            dash.matrix.access, dash.matrix.daemonsets[key], dash.matrix.daemonsets
        )
        (svc,) = access.services
        assert (svc.name, svc.headless, svc.dns) == (
            name,
            True,
            f"{name}.{NAMESPACE}.svc.cluster.local",
        )
        assert [(p.port, p.target, p.container_port) for p in svc.ports] == [(80, "metrics", 9400)]
        assert any(
            f"Service {NAMESPACE}/{name}-old selects none of its pods" in n
            and "app=access-agnt (the pod template has app=access-agent)" in n
            for n in access.notes
        ), access.notes

        # A readiness probe starts failing on one node (our kwok stage): the pod keeps
        # running, the controller marks its endpoint not ready, the cell says so.
        victim = general[0]
        pod = admin.pod_on(name, victim)
        admin.core.patch_namespaced_pod(
            pod.metadata.name,
            NAMESPACE,
            {"metadata": {"labels": {"unready.stage.daemonviz.dev": "true"}}},
        )
        wait_until(
            "the slice lists the pod as not ready",
            lambda: (
                (e := _slice_endpoints(admin, name).get(pod.metadata.name)) is None
                or not e.conditions.ready
            ),
            timeout=90,
        )
        dash.until(
            "the cell is out of the Service's endpoints",
            lambda m: (c := m.cells.get((victim, key))) is not None and c.out_of_endpoints,
        )
        cell = dash.cell(victim, name)
        assert cell.in_service_endpoints is False
        assert f"Service {NAMESPACE}/{name}" in cell.access_note
        assert "clients through the Service miss this node's daemon" in cell.access_note
        assert dash.matrix.ds_counts[key]["out-of-endpoints"] == 1
        assert not dash.cell(general[1], name).out_of_endpoints
    finally:
        admin.core.delete_namespaced_service(f"{name}-old", NAMESPACE)
        admin.core.delete_namespaced_service(name, NAMESPACE)
        admin.apps.delete_namespaced_daemon_set(name, NAMESPACE, propagation_policy="Background")
    dash.until(
        "the access agent, its Service and its slices gone",
        lambda m: (
            key not in m.daemonsets
            and not any(s.namespace == NAMESPACE for s in m.access.services.values())
            and not m.access.slices
        ),
        timeout=90,
    )


def test_a_mirror_pod_is_a_static_column(control_plane, dash):
    admin = dash.admin
    host = admin.core.read_node("infra-1")
    manifest = mirror_pod_manifest("node-proxy", host)
    admin.core.create_namespaced_pod(NAMESPACE, manifest)
    pod_key = f"{NAMESPACE}/{manifest['metadata']['name']}"
    try:

        def static_healthy(m: Matrix):
            cols = static_columns(m.nodes, m.static_pods.values())
            col = next((c for c in cols if c.key == f"{NAMESPACE}/node-proxy"), None)
            return col if col and col.cells["infra-1"].state is State.HEALTHY else None

        col = dash.until("a healthy static column node-proxy", static_healthy)
        assert pod_key in dash.matrix.static_pods
        assert pod_key not in dash.matrix.pods  # no daemon pod, no DaemonSet cell
        # Absent elsewhere, never "missing": the other infra nodes run none either.
        assert {c.state for n, c in col.cells.items() if n != "infra-1"} == {State.ABSENT}
        doc = _coverage_json(control_plane)
        (entry,) = [d for d in doc["daemonsets"] if d["kind"] == "StaticPod"]
        assert (entry["namespace"], entry["name"]) == (NAMESPACE, "node-proxy")
        cell = next(c for c in doc["cells"] if c["daemonset"] == f"{NAMESPACE}/node-proxy")
        assert (cell["node"], cell["state"], cell["should_run"]) == ("infra-1", "healthy", None)
        assert all(d["kind"] == "DaemonSet" for d in doc["daemonsets"] if d is not entry)
    finally:
        admin.core.delete_namespaced_pod(manifest["metadata"]["name"], NAMESPACE)
    dash.until("the static column gone", lambda m: pod_key not in m.static_pods, timeout=60)
