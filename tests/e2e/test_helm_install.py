"""`helm install` of deploy/helm/daemonviz into the real control plane, with the real helm
(built by controlplane/build.sh): every object of the chart is accepted by the API server
(with every optional part switched on), the migrate hook Job runs to completion (kwok
completes Job pods), the Deployments become ready (kwok plays the kubelets, so the pods
run as fakes: no image is pulled), an upgrade keeps the generated secret key, and the
ServiceAccount the chart creates can get/list/watch the four resources of the matrix and
can write nothing — checked twice: by SubjectAccessReview as the admin, and by real
requests with a token of that ServiceAccount.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboard.kube.clients import client_from_kubeconfig
from tests.e2e.workload import KWOK_NODE_ANNOTATION, Admin

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "daemonviz"
NAMESPACE = "dv-helm"
RELEASE = "dv"
FULLNAME = "dv-daemonviz"
SA = f"system:serviceaccount:{NAMESPACE}:{FULLNAME}"
NODES = ("helm-node-0", "helm-node-1")
VALUES = {
    "image": {"repository": "registry.example/daemonviz", "tag": "0.1.0"},
    "postgresql": {
        "enabled": True,
        "auth": {"password": "e2e-pw"},
        "persistence": {"enabled": False},
    },
    "redis": {"enabled": True},
    "ingress": {"enabled": True},
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
    "secret": {"metricsToken": "e2e-metrics-token"},
}
# The resources the matrix is built from (namespaces and events are extras): the four of
# coverage, and the Services and EndpointSlices of the access paths.
MATRIX_RESOURCES = (
    ("", "nodes"),
    ("", "pods"),
    ("apps", "daemonsets"),
    ("apps", "controllerrevisions"),
    ("", "services"),
    ("discovery.k8s.io", "endpointslices"),
)
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def _crd(kind: str, plural: str) -> dict:
    """A stand-in for a Prometheus Operator CRD: same group, version and names, schema
    left open. The operator's own CRDs are not available offline; this proves the API
    server takes the chart's objects at their group/version/kind, not their full schema
    (promtool checks the rules themselves, tests/deploy checks the rendered spec)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def helm_bin(control_plane) -> str:
    env_file = Path(
        subprocess.run(
            ["bash", str(REPO / "tests/e2e/controlplane/build.sh"), "helm"],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return env["DAEMONVIZ_HELM"]


@pytest.fixture(scope="module")
def helm(helm_bin, control_plane, tmp_path_factory):
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.admin_kubeconfig),
        # helm's caches and config in a scratch directory, not the user's home.
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [helm_bin, *args], env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}{proc.stdout}"
        return proc

    return run


@pytest.fixture(scope="module")
def admin(control_plane):
    api = client_from_kubeconfig(control_plane.admin_kubeconfig)
    yield Admin(api)
    api.close()


@pytest.fixture(scope="module")
def release(control_plane, admin, helm, tmp_path_factory):
    for kind, plural in (
        ("ServiceMonitor", "servicemonitors"),
        ("PrometheusRule", "prometheusrules"),
    ):
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(_crd(kind, plural)))
    for name in NODES:
        admin.core.create_node(
            {
                "metadata": {
                    "name": name,
                    "annotations": dict(KWOK_NODE_ANNOTATION),
                    "labels": {"kubernetes.io/hostname": name, "type": "kwok", "pool": "helm"},
                }
            }
        )
    values = tmp_path_factory.mktemp("helm-values") / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    control_plane.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    )
    install = helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "5m",
    )
    yield {"values": values, "install": install}
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "2m")
    control_plane.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    for name in NODES:
        control_plane.kubectl("delete", "node", name, "--wait=false", check=False)
    control_plane.kubectl(
        "delete",
        "crd",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "--wait=false",
        check=False,
    )


def _manifest_objects(helm) -> list[tuple[str, str]]:
    out = helm("get", "manifest", RELEASE, "--namespace", NAMESPACE).stdout
    return [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d]


def test_every_object_is_accepted_and_ready(control_plane, admin, helm, release):
    objects = _manifest_objects(helm)
    kinds = {k for k, _ in objects}
    assert {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "StatefulSet",
        "CronJob",
        "Ingress",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds
    for kind, name in objects:
        namespaced = kind not in ("ClusterRole", "ClusterRoleBinding")
        args = ["get", kind, name, "-o", "name"] + (["-n", NAMESPACE] if namespaced else [])
        assert control_plane.kubectl(*args).stdout.strip(), (kind, name)
    status = json.loads(helm("status", RELEASE, "--namespace", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    # The migrate hook ran to completion (kwok completes Job pods) and was then removed.
    hooks = {h["name"]: h for h in status.get("hooks", [])}
    migrate = hooks[f"{FULLNAME}-migrate"]
    assert migrate["last_run"]["phase"] == "Succeeded"
    # --wait returned: every Deployment has its replicas ready on the fake kubelets.
    for name, replicas in ((f"{FULLNAME}-web", 3), (f"{FULLNAME}-collector", 2)):
        dep = admin.apps.read_namespaced_deployment(name, NAMESPACE)
        assert dep.status.ready_replicas == replicas, name
        pod = dep.spec.template.spec
        assert pod.security_context.run_as_non_root is True
        assert pod.containers[0].security_context.read_only_root_filesystem is True


def test_upgrade_runs_the_hook_again_and_keeps_the_secret_key(control_plane, admin, helm, release):
    def secret_key() -> str:
        s = admin.core.read_namespaced_secret(FULLNAME, NAMESPACE)
        return base64.b64decode(s.data["DAEMONVIZ_SECRET_KEY"]).decode()

    before = secret_key()
    assert len(before) == 50
    helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "-f",
        str(release["values"]),
        "--set",
        "config.historyDays=7",
        "--wait",
        "--timeout",
        "5m",
    )
    assert secret_key() == before
    config = admin.core.read_namespaced_config_map(FULLNAME, NAMESPACE).data
    assert config["DAEMONVIZ_HISTORY_DAYS"] == "7"
    status = json.loads(helm("status", RELEASE, "--namespace", NAMESPACE, "-o", "json").stdout)
    assert status["version"] == 2
    migrate = {h["name"]: h for h in status["hooks"]}[f"{FULLNAME}-migrate"]
    assert migrate["last_run"]["phase"] == "Succeeded"


def _review(control_plane, group: str, resource: str, verb: str, subresource: str = "") -> bool:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SA,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{NAMESPACE}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "group": group,
                "resource": resource,
                "verb": verb,
                "subresource": subresource,
            },
        },
    }
    out = control_plane.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(body)).stdout
    return bool(json.loads(out)["status"].get("allowed"))


def test_service_account_reads_and_never_writes(control_plane, release):
    for group, resource in MATRIX_RESOURCES:
        for verb in ("get", "list", "watch"):
            assert _review(control_plane, group, resource, verb), (resource, verb)
        for verb in WRITE_VERBS:
            assert not _review(control_plane, group, resource, verb), (resource, verb)
    for group, resource in (("", "configmaps"), ("", "secrets"), ("coordination.k8s.io", "leases")):
        for verb in ("get", "create"):
            assert not _review(control_plane, group, resource, verb), (resource, verb)
    # pods/log is opt-in (logs.enabled, a separate role) and off here; pods/exec never.
    assert not _review(control_plane, "", "pods", "get", "log")
    assert not _review(control_plane, "", "pods", "create", "exec")


def test_service_account_token_really_lists_and_is_refused_writes(control_plane, release, tmp_path):
    token_request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600},
    }
    out = control_plane.kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{FULLNAME}/token",
        "-f",
        "-",
        input=json.dumps(token_request),
    ).stdout
    token = json.loads(out)["status"]["token"]
    kubeconfig = yaml.safe_load(Path(control_plane.admin_kubeconfig).read_text())
    kubeconfig["users"] = [{"name": "sa", "user": {"token": token}}]
    for ctx in kubeconfig["contexts"]:
        ctx["context"]["user"] = "sa"
    path = tmp_path / "sa.yaml"
    path.write_text(yaml.safe_dump(kubeconfig))
    for resource in ("nodes", "pods", "daemonsets.apps", "controllerrevisions.apps"):
        proc = control_plane.kubectl("get", resource, "-A", "-o", "name", kubeconfig=path)
        assert proc.returncode == 0, resource
    assert any(
        NODES[0] in line
        for line in control_plane.kubectl(
            "get", "nodes", "-o", "name", kubeconfig=path
        ).stdout.splitlines()
    )
    pods = control_plane.kubectl("get", "pods", "-n", NAMESPACE, "-o", "name", kubeconfig=path)
    pod = pods.stdout.split()[0]
    # Objects it may read, written to: the read succeeds, the write is refused.
    refused = [
        ("label", "node", NODES[0], "daemonviz=wrote"),
        ("annotate", pod, "daemonviz=wrote", "-n", NAMESPACE),
        ("delete", pod, "-n", NAMESPACE, "--wait=false"),
        ("create", "configmap", "x", "-n", NAMESPACE),
    ]
    for args in refused:
        proc = control_plane.kubectl(*args, kubeconfig=path, check=False)
        assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), (args, proc.stderr)
