"""Test connection against a real kube-apiserver with real RBAC: the server is identified by
its own discovery documents, a ServiceAccount that may list but not watch is told exactly
which verb on which resource is missing, and requests without credentials or with a wrong
token are told so, never "not a Kubernetes API server"."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.probe import PROBED_RESOURCES, WATCHED_RESOURCES, ProbeReport, probe
from dashboard.kube.reflector import FAILED, ClusterWatch
from tests.helpers.kube_support import FAST, Mirror
from tests.helpers.wait import wait_until

pytestmark = pytest.mark.e2e

NAMESPACE = "probe-e2e"
SA = "list-only"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SA}"

LIST_ONLY = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {SA}, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: daemonviz-e2e-list-only}}
rules:
  - apiGroups: [""]
    resources: [nodes, pods, namespaces, services, events]
    verbs: [get, list]
  - apiGroups: [apps]
    resources: [daemonsets, controllerrevisions]
    verbs: [get, list]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list]
  - apiGroups: [scheduling.k8s.io]
    resources: [priorityclasses]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: daemonviz-e2e-list-only}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: daemonviz-e2e-list-only}}
subjects:
  - {{kind: ServiceAccount, name: {SA}, namespace: {NAMESPACE}}}
"""


def _kubeconfig_as(control_plane, path: Path, token: str | None) -> Path:
    """The admin kubeconfig (same server, same CA) with another user's token, or none."""
    config = yaml.safe_load(Path(control_plane.admin_kubeconfig).read_text())
    config["users"][0]["user"] = {"token": token} if token else {}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _probe(kubeconfig: Path) -> ProbeReport:
    client = client_from_kubeconfig(kubeconfig)
    try:
        return probe(client, timeout=10.0)
    finally:
        client.close()


@pytest.fixture(scope="module")
def list_only_kubeconfig(control_plane, tmp_path_factory):
    control_plane.kubectl("apply", "-f", "-", input=LIST_ONLY)
    token = control_plane.kubectl("create", "token", SA, "-n", NAMESPACE).stdout.strip()
    yield _kubeconfig_as(control_plane, tmp_path_factory.mktemp("probe") / "kc", token)
    control_plane.kubectl("delete", "-f", "-", "--wait=false", input=LIST_ONLY, check=False)


def test_the_real_api_server_is_identified_and_the_dashboard_sa_may_do_everything(
    control_plane,
):
    report = _probe(control_plane.sa_kubeconfig)
    assert report.ok, report
    assert report.identity is not None and report.identity.git_version.startswith("v1.")
    assert f"answered: Kubernetes {report.identity.git_version}" in report.reachable.detail
    assert set(report.watches) == set(WATCHED_RESOURCES)


def test_list_but_not_watch_names_each_missing_verb(control_plane, list_only_kubeconfig):
    # The binding is what the controllers' caches see first: wait until it takes effect.
    wait_until(
        lambda: _probe(list_only_kubeconfig).resources["nodes"].ok, 30, "the list-only binding"
    )
    report = _probe(list_only_kubeconfig)
    assert report.reachable.ok and report.authenticated.ok
    assert all(report.resources[r].ok for r in PROBED_RESOURCES), report.resources
    assert not report.ok
    assert report.missing == [("watch", r) for r in WATCHED_RESOURCES]
    assert report.watches["nodes"].detail == (
        "forbidden: cannot watch nodes at the cluster scope — grant get/list/watch on it"
        f' (user "{SA_USER}")'
    )
    assert report.watches["controllerrevisions"].detail.startswith(
        "forbidden: cannot watch controllerrevisions.apps at the cluster scope"
    )


def test_without_credentials_it_is_unauthorized_not_unknown(control_plane, tmp_path):
    # This control plane runs with --anonymous-auth=false: even /version answers 401.
    report = _probe(_kubeconfig_as(control_plane, tmp_path / "anon", None))
    assert report.reachable.ok and not report.not_kubernetes, report.reachable
    assert report.authenticated.ok is False and "401" in report.authenticated.detail


def test_a_wrong_token_is_unauthorized_not_unknown(control_plane, tmp_path):
    kubeconfig = _kubeconfig_as(control_plane, tmp_path / "wrong", "not-a-valid-token")
    report = _probe(kubeconfig)
    assert not report.not_kubernetes
    assert report.authenticated.ok is False and "401" in report.authenticated.detail
    client = client_from_kubeconfig(kubeconfig)
    w = ClusterWatch(client, Mirror(), **FAST)
    try:
        wait_until(lambda: w.status.state == FAILED, 30)
        assert w.status.problem.kind == "unauthorized"
    finally:
        w.stop()
        client.close()
