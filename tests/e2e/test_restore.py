"""End to end: etcd restored from a backup under a running dashboard.

The operator's procedure, on the real control plane: `etcdctl snapshot save`; the cluster
moves on; every component is stopped, etcd's data replaced by the snapshot
(`etcdutl snapshot restore`, no revision bump), everything started again on the same
addresses. The API server's resourceVersions are now lower than the ones the dashboard's
collector holds — which keeps running throughout, as a dashboard would. It must end on the
restored state (the matrix a fresh collector builds), and say so in its status.

The same fault against the fake API server, with the details of each request, is
tests/faults/test_restore.py. This module leaves the cluster as it found it: the restore
undoes what the test changed after the snapshot, and the rest is deleted at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.coverage.states import State
from dashboard.kube.clients import client_from_kubeconfig
from tests.e2e.workload import (
    NAMESPACE,
    Admin,
    controller_at_rest,
    daemonset_manifest,
    ds_key,
    node_manifest,
    wait_until,
)
from tests.helpers import collectors

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

NODES = ("restore-1", "restore-2")
KEPT, ADDED = "restore-kept", "restore-added"
# Writes after the backup. A real backup is hours old, so the cluster it is restored into is
# far behind the clients; a few hundred revisions keep the restarted controllers' own writes
# from catching up with the collector's version before it reconnects.
WRITES_AFTER_BACKUP = 400


def _node(name: str) -> dict[str, Any]:
    manifest = node_manifest(name, "edge")
    manifest["metadata"]["labels"]["pool"] = "restore"
    return manifest


def _daemonset(name: str) -> dict[str, Any]:
    return daemonset_manifest(
        name, image=f"registry.example/{name}:1", node_selector={"pool": "restore"}
    )


def _collector(control_plane, slug: str) -> ClusterCollector:
    c = collectors.make(
        ClusterConfig(
            slug=slug,
            name=slug,
            source="kubeconfig",
            kubeconfig_path=str(control_plane.sa_kubeconfig),
        )
    )
    c.start_source()
    return c


def _tick_until(what: str, check: Callable[[], object], *cs: ClusterCollector, timeout: float):
    def step():
        for c in cs:
            c.tick()
        return check()

    def describe() -> str:
        return "\n".join(
            f"{c.cluster.slug}: {c.status} columns={sorted(c.matrix.daemonsets)}" for c in cs
        )

    return wait_until(what, step, timeout=timeout, interval=0.2, describe=describe)


def _healthy_column(c: ClusterCollector, name: str) -> bool:
    cells = [c.matrix.cells.get((n, ds_key(name))) for n in NODES]
    return all(cell is not None and cell.state is State.HEALTHY for cell in cells)


def _settle_daemonset(admin: Admin, name: str) -> None:
    wait_until(
        f"DaemonSet {name} at rest on {len(NODES)} nodes",
        lambda: (
            (ds := admin.daemonset(name)).status.desired_number_scheduled == len(NODES)
            and controller_at_rest(ds)
        ),
        timeout=120,
        describe=lambda: str(admin.daemonset(name).status),
    )


@pytest.fixture
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    yield Admin(api)
    api.close()


# (etcdutl options, what the collector sees). Without a bump, etcd's revisions go back to
# the snapshot's: the collector's versions are ahead of the server (504 "Too large resource
# version"). etcd's recommended restore for Kubernetes moves them past every client's and
# marks the older ones compacted: every watch gets 410 and relists, the ordinary path.
RESTORES = {
    "revisions-go-back": ({}, "went back"),
    "bump-and-mark-compacted": ({"bump_revision": 1_000_000_000, "mark_compacted": True}, "410"),
}


@pytest.mark.parametrize("restore", RESTORES)
def test_etcd_restore_under_a_running_collector_ends_on_the_restored_state(
    control_plane, admin, restore
):
    options, seen = RESTORES[restore]
    admin.create_namespace(NAMESPACE)
    admin.wait_default_service_account(NAMESPACE)
    for name in NODES:
        admin.core.create_node(_node(name))
    admin.create_daemonset(_daemonset(KEPT))
    _settle_daemonset(admin, KEPT)

    dash = _collector(control_plane, "restore")
    fresh: ClusterCollector | None = None
    try:
        _tick_until(
            "collector shows the kept DaemonSet",
            lambda: dash.settled and _healthy_column(dash, KEPT),
            dash,
            timeout=60,
        )

        backup = control_plane.save_etcd_snapshot()
        # The cluster moves on: plenty of writes, then one DaemonSet goes and another comes
        # (their events carry the collector's versions past all those writes).
        admin.core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "churn"}})
        for i in range(WRITES_AFTER_BACKUP):
            admin.core.patch_namespaced_config_map("churn", NAMESPACE, {"data": {"i": str(i)}})
        admin.apps.delete_namespaced_daemon_set(KEPT, NAMESPACE, propagation_policy="Background")
        admin.create_daemonset(_daemonset(ADDED))
        _settle_daemonset(admin, ADDED)
        _tick_until(
            "collector follows the cluster after the backup",
            lambda: _healthy_column(dash, ADDED) and ds_key(KEPT) not in dash.matrix.daemonsets,
            dash,
            timeout=90,
        )

        # The restore: down, data replaced, up again on the same addresses.
        control_plane.stop_components()
        _tick_until(
            "collector stale while the API server is down",
            lambda: dash.status.state == "stale",
            dash,
            timeout=60,
        )
        control_plane.restore_etcd_data(backup, **options)
        control_plane.start_components()
        t0 = time.monotonic()

        _tick_until(
            "collector back on the restored state",
            lambda: (
                dash.settled
                and _healthy_column(dash, KEPT)
                and ds_key(ADDED) not in dash.matrix.daemonsets
            ),
            dash,
            timeout=150,
        )
        converged = time.monotonic() - t0
        control_plane.log(f"{restore}: collector on the restored state {converged:.1f}s after")
        status = dash.status
        assert status.state == "synced"
        resets = sum(s.history_resets for s in dash.watch_stats().values())
        if seen == "went back":
            assert "resourceVersion went back" in status.message, status
            assert resets >= 1
        else:  # versions moved forward: an ordinary relist, nothing to tell
            assert resets == 0 and status.message == "", status
            assert all(s.lists >= 2 for s in dash.watch_stats().values())

        # Exactly what a collector started now builds, and it stays so as the restored
        # cluster lives on (kwok heartbeats, the restarted controllers' writes).
        fresh = _collector(control_plane, "fresh")
        _tick_until(
            "restored-on collector == fresh collector",
            lambda: dash.settled and fresh.settled and dash.matrix.cells == fresh.matrix.cells,
            dash,
            fresh,
            timeout=90,
        )
        admin.core.patch_node(NODES[0], {"metadata": {"labels": {"pool": "elsewhere"}}})
        _tick_until(
            "a change after the restore arrives",
            lambda: (
                dash.matrix.cells.get((NODES[0], ds_key(KEPT))) is not None
                and dash.matrix.cells[(NODES[0], ds_key(KEPT))].state is not State.HEALTHY
                and dash.matrix.cells == fresh.matrix.cells
            ),
            dash,
            fresh,
            timeout=90,
        )
    finally:
        dash.stop_source()
        if fresh is not None:
            fresh.stop_source()
        _cleanup(admin)


def _cleanup(admin: Admin) -> None:
    for name in (KEPT, ADDED):
        try:
            admin.apps.delete_namespaced_daemon_set(
                name, NAMESPACE, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
    for name in NODES:
        try:
            admin.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    try:
        admin.core.delete_namespaced_config_map("churn", NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
