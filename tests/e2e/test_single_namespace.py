"""End to end: one namespace shown, read with a namespaced Role, on a real API server with
real RBAC. Node events live in namespace "default", which that Role does not reach: the
dashboard is synced all the same and says that node events are not shown (and the
connection test says so as a note, not a failure). With a Role on events in "default"
added, a node event written as the kubelet writes it reaches the node's row head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.grid.model import make_row
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.probe import probe
from dashboard.kube.resources import NODE_EVENTS_FORBIDDEN
from tests.e2e.workload import Admin, daemonset_manifest, node_manifest, wait_until
from tests.helpers import collectors

pytestmark = pytest.mark.e2e

NAMESPACE = "single-ns-e2e"
SA = "ns-reader"
NODE = "single-1"

# What a namespaced install grants: a Role in its namespace for the namespaced resources,
# and a ClusterRole only for the cluster-scoped ones (nodes, PriorityClasses, namespaces).
NAMESPACED_RBAC = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {SA}, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: daemonviz-read, namespace: {NAMESPACE}}}
rules:
  - apiGroups: [""]
    resources: [pods, events, services]
    verbs: [get, list, watch]
  - apiGroups: [apps]
    resources: [daemonsets, controllerrevisions]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: daemonviz-read, namespace: {NAMESPACE}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: daemonviz-read}}
subjects:
  - {{kind: ServiceAccount, name: {SA}, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: daemonviz-e2e-single-ns}}
rules:
  - apiGroups: [""]
    resources: [nodes, namespaces]
    verbs: [get, list, watch]
  - apiGroups: [scheduling.k8s.io]
    resources: [priorityclasses]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: daemonviz-e2e-single-ns}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: daemonviz-e2e-single-ns}}
subjects:
  - {{kind: ServiceAccount, name: {SA}, namespace: {NAMESPACE}}}
"""

# The optional extra (docs/list-watch.md): events in "default", where node events live.
NODE_EVENTS_RBAC = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: daemonviz-node-events, namespace: default}}
rules:
  - apiGroups: [""]
    resources: [events]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: daemonviz-node-events, namespace: default}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: daemonviz-node-events}}
subjects:
  - {{kind: ServiceAccount, name: {SA}, namespace: {NAMESPACE}}}
"""


@pytest.fixture(scope="module")
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    admin = Admin(api)
    manifest = node_manifest(NODE, "general")
    manifest["metadata"]["labels"]["single-ns"] = "yes"
    try:
        admin.core.create_node(manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
    control_plane.kubectl("apply", "-f", "-", input=NAMESPACED_RBAC)
    admin.wait_default_service_account(NAMESPACE)
    ds = daemonset_manifest(
        "agent", image="registry.example/agent:1.0", node_selector={"single-ns": "yes"}
    )
    ds["metadata"]["namespace"] = NAMESPACE
    admin.apps.create_namespaced_daemon_set(NAMESPACE, ds)
    try:
        yield admin
    finally:
        control_plane.kubectl(
            "delete", "-f", "-", "--wait=false", input=NODE_EVENTS_RBAC, check=False
        )
        control_plane.kubectl(
            "delete", "-f", "-", "--wait=false", input=NAMESPACED_RBAC, check=False
        )
        admin.core.delete_node(NODE)
        api.close()


@pytest.fixture(scope="module")
def kubeconfig(control_plane, admin, tmp_path_factory) -> Path:
    """The admin kubeconfig (same server and CA) with the ServiceAccount's token."""
    token = control_plane.kubectl("create", "token", SA, "-n", NAMESPACE).stdout.strip()
    config = yaml.safe_load(Path(control_plane.admin_kubeconfig).read_text())
    config["users"][0]["user"] = {"token": token}
    path = tmp_path_factory.mktemp("single-ns") / "kc"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _probe(kubeconfig: Path):
    client = client_from_kubeconfig(kubeconfig)
    try:
        return probe(client, namespace=NAMESPACE, timeout=10.0)
    finally:
        client.close()


@contextmanager
def _collector(kubeconfig: Path, slug: str) -> Iterator[ClusterCollector]:
    config = ClusterConfig(
        slug=slug,
        name=slug,
        source="kubeconfig",
        kubeconfig_path=str(kubeconfig),
        namespaces_include=(NAMESPACE,),
    )
    collector = collectors.make(config)
    collector.start_source()
    try:

        def synced() -> bool:
            collector.tick()
            return collector.status.state == "synced" and collector.matrix.cells.get(
                (NODE, f"{NAMESPACE}/agent")
            )

        def describe() -> str:
            return f"{collector.status}\ncells: {list(collector.matrix.cells)[:10]}"

        wait_until("collector synced, the agent's cell shown", synced, 90, describe=describe)
        yield collector
    finally:
        collector.stop_source()


def test_without_a_role_in_default_it_is_synced_and_says_node_events_are_not_shown(kubeconfig):
    # The bindings reach the authorizer's cache shortly after they are written.
    wait_until("the namespaced Role in effect", lambda: _probe(kubeconfig).ok, 30)
    report = _probe(kubeconfig)
    assert report.ok and report.notes == [NODE_EVENTS_FORBIDDEN], report
    assert report.optional["list events in default"].ok is False
    with _collector(kubeconfig, "e2e-single-ns") as collector:
        wait_until(
            "the note on the synced status",
            lambda: collector.tick() or collector.status.message == NODE_EVENTS_FORBIDDEN,
            30,
            describe=lambda: str(collector.status),
        )
        assert collector.status.state == "synced"
        assert NODE in collector.matrix.nodes
        stats = collector.watch_stats()
        assert stats["events-node"].errors >= 1 and stats["events"].errors == 0


def test_with_a_role_in_default_the_node_controllers_event_is_on_the_row(
    control_plane, admin, kubeconfig
):
    control_plane.kubectl("apply", "-f", "-", input=NODE_EVENTS_RBAC)
    wait_until(
        "the Role in default in effect",
        lambda: (r := _probe(kubeconfig)).ok and not r.notes,
        30,
    )
    with _collector(kubeconfig, "e2e-single-ns-events") as collector:
        assert collector.status.message == ""
        # The node lifecycle controller records NodeNotReady only when it marks a silent
        # node Unknown itself (after --node-monitor-grace-period, 120 s here), not when a
        # kubelet reports Ready=False: so the event is written as the kubelet writes its
        # node events, with no namespace of its own (stored in "default").
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        admin.core.create_namespaced_event(
            "default",
            {
                "metadata": {"generateName": f"{NODE}."},
                "involvedObject": {"kind": "Node", "name": NODE, "uid": NODE},
                "type": "Warning",
                "reason": "ContainerGCFailed",
                "message": "rpc error: code = Unavailable desc = connection refused",
                "source": {"component": "kubelet", "host": NODE},
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
            },
        )

        def on_row() -> bool:
            collector.tick()
            row = make_row(collector.matrix, NODE, [])
            return bool(row.node_events) and "ContainerGCFailed" in row.node_event

        wait_until(
            "the node event on the node's row head",
            on_row,
            60,
            describe=lambda: str(collector.matrix.events.of(("Node", "", NODE))),
        )
        (event,) = collector.matrix.events.of(("Node", "", NODE))
        assert event.namespace == "default" and event.source == "kubelet"
        assert collector.status.state == "synced" and collector.status.message == ""
