"""The Helm chart (deploy/helm/daemonviz), with the real helm: `helm lint`, and `helm
template` with several value sets whose output is checked object by object — RBAC only
ever grants get/list/watch, the web pods have probes, every daemonviz container runs
non-root on a read-only root, and no secret value lands outside the Secret. The plain
manifests of deploy/ must equal what the chart renders (deploy/helm/sync.py).
`make e2e` installs the chart into a real control plane (tests/e2e/test_helm_install.py).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import CHART, DEPLOY, helm, run, sync

READ_VERBS = {"get", "list", "watch"}
READ_RESOURCES = {
    "": {"nodes", "pods", "events", "namespaces", "services"},
    "apps": {"daemonsets", "controllerrevisions"},
    "discovery.k8s.io": {"endpointslices"},
    "scheduling.k8s.io": {"priorityclasses"},
}
SECRET_KEYS = {
    "DAEMONVIZ_SECRET_KEY",
    "DAEMONVIZ_ENCRYPTION_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "DAEMONVIZ_METRICS_TOKEN",
}
# Recognizable secret values: none may appear in any rendered object but the Secret.
MARK_KEY = "sekrit-key-4f1c9e"
MARK_FERNET = "sekrit-fernet-77ab"
MARK_DB_PW = "sekrit-dbpw-0d2e"
MARK_TOKEN = "sekrit-metrics-93aa"
MARK_REDIS_PW = "sekrit-redispw-5b6c"

EXTERNAL = {
    "externalDatabase": {"url": f"postgres://daemonviz:{MARK_DB_PW}@db.example:5432/daemonviz"},
    "externalRedis": {"url": f"redis://:{MARK_REDIS_PW}@redis.example:6379/0"},
    "secret": {"secretKey": MARK_KEY, "encryptionKey": MARK_FERNET, "metricsToken": MARK_TOKEN},
}
EVERYTHING = {
    "postgresql": {"enabled": True, "auth": {"password": MARK_DB_PW}},
    "redis": {"enabled": True},
    "secret": {"secretKey": MARK_KEY, "encryptionKey": MARK_FERNET, "metricsToken": MARK_TOKEN},
    "logs": {"enabled": True},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "tls": [{"hosts": ["dv.example"], "secretName": "dv-tls"}],
    },
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "runbookBaseUrl": "https://wiki.example/daemonviz"},
        "grafanaDashboard": {"enabled": True},
    },
    "config": {"extraEnv": {"DAEMONVIZ_COALESCE_SECONDS": "0.5", "DAEMONVIZ_HISTORY": False}},
}
EXISTING = {"existingSecret": "my-daemonviz"}
LOGS_IN_NAMESPACES = {
    **EXISTING,
    "logs": {"enabled": True, "namespaces": ["kube-system", "monitoring"]},
}
VALUE_SETS = {
    "external": EXTERNAL,
    "logs-in-namespaces": LOGS_IN_NAMESPACES,
    "everything": EVERYTHING,
    "existing-secret": EXISTING,
    "kustomize": yaml.safe_load((DEPLOY / "helm" / "kustomize-values.yaml").read_text()),
}


def _write(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def template(tmp_path: Path, values: dict, *extra: str, check: bool = True):
    proc = run(
        helm(),
        "template",
        "rel",
        str(CHART),
        "--namespace",
        "dv",
        "-f",
        str(_write(tmp_path, values)),
        *extra,
        check=check,
    )
    if not check:
        return proc
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def _pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for d in docs:
        spec = d.get("spec", {})
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append((d["metadata"]["name"], spec["template"]["spec"]))
        elif d["kind"] == "CronJob":
            out.append((d["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
    return out


def _daemonviz_pods(docs: list[dict]) -> list[tuple[str, dict]]:
    """The pods that run daemonviz itself (not the in-chart Redis/PostgreSQL)."""
    return [
        (name, pod)
        for name, pod in _pod_specs(docs)
        if not name.endswith(("-redis", "-postgresql"))
    ]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_is_clean(tmp_path, name):
    proc = run(
        helm(), "lint", "--strict", str(CHART), "-f", str(_write(tmp_path, VALUE_SETS[name]))
    )
    assert "0 chart(s) failed" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rbac_is_read_only(tmp_path, name):
    values = VALUE_SETS[name]
    docs = template(tmp_path, values)
    roles = [r for r in _by_kind(docs, "ClusterRole") if r["metadata"]["name"].endswith("-read")]
    assert len(roles) == 1
    granted: dict[str, set[str]] = {}
    for rule in roles[0]["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) == READ_VERBS, rule
                granted.setdefault(group, set()).add(resource)
    # The read-only role never grants logs: that is the separate, optional one below.
    assert granted == {g: set(r) for g, r in READ_RESOURCES.items()}
    binding = next(
        b for b in _by_kind(docs, "ClusterRoleBinding") if b["metadata"]["name"].endswith("-read")
    )
    assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    sa = _by_kind(docs, "ServiceAccount")[0]["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
    ]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_the_logs_role_is_optional_separate_and_grants_get_pods_log_only(tmp_path, name):
    values = VALUE_SETS[name]
    docs = template(tmp_path, values)
    logs = values.get("logs", {})
    roles = [
        r
        for r in _by_kind(docs, "ClusterRole") + _by_kind(docs, "Role")
        if r["metadata"]["name"].endswith("-logs")
    ]
    bindings = [
        b
        for b in _by_kind(docs, "ClusterRoleBinding") + _by_kind(docs, "RoleBinding")
        if b["metadata"]["name"].endswith("-logs")
    ]
    if not logs.get("enabled"):
        assert roles == [] and bindings == []
        return
    for role in roles:
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    sa = _by_kind(docs, "ServiceAccount")[0]["metadata"]
    subject = [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]
    for b in bindings:
        assert b["subjects"] == subject
        assert b["roleRef"]["kind"] in ("Role", "ClusterRole")
    if namespaces := logs.get("namespaces"):
        assert {r["kind"] for r in roles} == {"Role"} and {b["kind"] for b in bindings} == {
            "RoleBinding"
        }
        assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(namespaces)
        assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(namespaces)
    else:
        assert [r["kind"] for r in roles] == ["ClusterRole"]
        assert [b["kind"] for b in bindings] == ["ClusterRoleBinding"]


def test_deploy_ships_the_logs_role_apart_from_kustomization():
    """deploy/rbac-logs.yaml is rendered on (logs.enabled=true) and left out of what
    `kubectl apply -k deploy/` applies: reading logs is a choice."""
    docs = [d for d in yaml.safe_load_all((DEPLOY / "rbac-logs.yaml").read_text()) if d]
    assert [d["kind"] for d in docs] == ["ClusterRole", "ClusterRoleBinding"]
    assert docs[0]["rules"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert "rbac-logs.yaml" not in kustomization["resources"]
    read = [d for d in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text()) if d]
    assert "pods/log" not in json.dumps(read)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_pods_are_locked_down_and_wired(tmp_path, name):
    docs = template(tmp_path, VALUE_SETS[name])
    configmaps = {d["metadata"]["name"] for d in _by_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"] for d in _by_kind(docs, "Secret")}
    if existing := VALUE_SETS[name].get("existingSecret"):
        assert not secrets
        secrets = {existing}
    pods = dict(_daemonviz_pods(docs))
    kinds = {n.rsplit("-", 1)[-1] for n in pods}
    assert kinds == {"web", "collector", "migrate", "purgehistory"}
    for pod_name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, pod_name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, pod_name
            assert sc["allowPrivilegeEscalation"] is False, pod_name
            assert sc["capabilities"]["drop"] == ["ALL"], pod_name
            refs = {(next(iter(e)), next(iter(e.values()))["name"]) for e in c["envFrom"]}
            assert {n for k, n in refs if k == "configMapRef"} <= configmaps, pod_name
            assert {n for k, n in refs if k == "secretRef"} <= secrets, pod_name
            assert {k for k, _ in refs} == {"configMapRef", "secretRef"}, pod_name
    web = pods["rel-daemonviz-web" if name != "kustomize" else "daemonviz-web"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["resources"]["requests"] and web["resources"]["limits"]
    deployments = {
        d["metadata"]["name"].rsplit("-", 1)[-1]: d for d in _by_kind(docs, "Deployment")
    }
    assert deployments["collector"]["spec"]["replicas"] == 2
    assert (
        deployments["collector"]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        == "collect"
    )
    service = next(
        d for d in _by_kind(docs, "Service") if d["metadata"]["name"].endswith("daemonviz")
    )
    assert service["spec"]["selector"] == deployments["web"]["spec"]["selector"]["matchLabels"]
    migrate = _by_kind(docs, "Job")[0]["metadata"]["annotations"]
    assert migrate["helm.sh/hook"] == "post-install,pre-upgrade"


@pytest.mark.parametrize("name", ["external", "everything"])
def test_no_secret_value_outside_the_secret(tmp_path, name):
    docs = template(tmp_path, VALUE_SETS[name])
    for cm in _by_kind(docs, "ConfigMap"):
        assert not SECRET_KEYS & set(cm["data"]), cm["metadata"]["name"]
    marks = (MARK_KEY, MARK_FERNET, MARK_DB_PW, MARK_TOKEN, MARK_REDIS_PW)
    for d in docs:
        if d["kind"] == "Secret":
            continue
        text = json.dumps(d)
        assert not [m for m in marks if m in text], d["metadata"]["name"]
    (secret,) = _by_kind(docs, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) >= SECRET_KEYS
    assert data["DAEMONVIZ_SECRET_KEY"] == MARK_KEY
    assert data["DAEMONVIZ_METRICS_TOKEN"] == MARK_TOKEN
    assert MARK_DB_PW in data["DATABASE_URL"]
    if name == "everything":
        assert (
            data["DATABASE_URL"]
            == f"postgres://daemonviz:{MARK_DB_PW}@rel-daemonviz-postgresql:5432/daemonviz"
        )
        assert data["REDIS_URL"] == "redis://rel-daemonviz-redis:6379/0"
    else:
        assert MARK_REDIS_PW in data["REDIS_URL"]


def test_a_generated_secret_key_is_long_and_random(tmp_path):
    values = {k: v for k, v in EXTERNAL.items() if k != "secret"}
    keys = set()
    for _ in range(2):
        (secret,) = _by_kind(template(tmp_path, values), "Secret")
        keys.add(base64.b64decode(secret["data"]["DAEMONVIZ_SECRET_KEY"]).decode())
    assert len(keys) == 2 and all(len(k) == 50 for k in keys)


def test_everything_renders_every_optional_object(tmp_path):
    docs = template(tmp_path, EVERYTHING)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Ingress", "rel-daemonviz"),
        ("ServiceMonitor", "rel-daemonviz"),
        ("PrometheusRule", "rel-daemonviz"),
        ("ConfigMap", "rel-daemonviz-grafana-dashboard"),
        ("StatefulSet", "rel-daemonviz-postgresql"),
        ("Deployment", "rel-daemonviz-redis"),
    } <= kinds
    config = next(
        d for d in docs if d["metadata"]["name"] == "rel-daemonviz" and d["kind"] == "ConfigMap"
    )
    assert config["data"]["DAEMONVIZ_COALESCE_SECONDS"] == "0.5"
    assert config["data"]["DAEMONVIZ_HISTORY"] == "false"
    assert config["data"]["DAEMONVIZ_DEBUG"] == "false"
    (monitor,) = _by_kind(docs, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["authorization"]["credentials"] == {
        "name": "rel-daemonviz",
        "key": "DAEMONVIZ_METRICS_TOKEN",
    }
    ingress = _by_kind(docs, "Ingress")[0]["spec"]
    assert ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "rel-daemonviz"


def test_prometheus_rule_and_dashboard_are_the_deploy_files(tmp_path):
    docs = template(tmp_path, EVERYTHING)
    (rule,) = _by_kind(docs, "PrometheusRule")
    plain = yaml.safe_load((DEPLOY / "prometheus" / "rules.yaml").read_text())
    expected = json.loads(
        json.dumps(plain).replace(
            "https://github.com/daemonviz/daemonviz/blob/main/README.md",
            "https://wiki.example/daemonviz",
        )
    )
    assert rule["spec"] == expected
    (dash,) = [
        d
        for d in _by_kind(docs, "ConfigMap")
        if d["metadata"]["name"].endswith("grafana-dashboard")
    ]
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dash["data"]["daemonviz.json"]) == json.loads(
        (DEPLOY / "grafana" / "daemonviz.json").read_text()
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"externalRedis": EXTERNAL["externalRedis"]}, "a database is required"),
        ({"externalDatabase": EXTERNAL["externalDatabase"]}, "Redis is required"),
        ({**EXTERNAL, "config": {"extraEnv": {"DATABASE_URL": "postgres://x"}}}, "DATABASE_URL"),
        ({**EXTERNAL, "webb": {"replicas": 2}}, "webb"),
        ({**EXTERNAL, "web": {"replicas": -1}}, "replicas"),
        ({**EXTERNAL, "externalDatabase": {"url": "mysql://x"}}, "url"),
        (
            {**EXTERNAL, "securityContext": {"allowPrivilegeEscalation": True}},
            "allowPrivilegeEscalation",
        ),
        ({**EXTERNAL, "podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"postgresql": {"enabled": True}, "redis": {"enabled": True}}, "postgresql.auth.password"),
        ({**EXTERNAL, "config": {"logLevel": "LOUD"}}, "logLevel"),
    ],
    ids=[
        "no-db",
        "no-redis",
        "secret-in-config",
        "unknown-key",
        "negative-replicas",
        "bad-db-url",
        "privilege-escalation",
        "root",
        "pg-no-password",
        "log-level",
    ],
)
def test_bad_values_are_refused_with_a_clear_error(tmp_path, values, message):
    proc = template(tmp_path, values, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_plain_manifests_are_rendered_from_the_chart():
    rendered = sync.render(helm())
    stale = [rel for rel, text in rendered.items() if (DEPLOY / rel).read_text() != text]
    assert not stale, f"out of date with the chart, run `make deploy-manifests`: {stale}"
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    generated = {
        rel for rel in rendered if rel.endswith(".yaml") and rel.startswith(("k8s/", "rbac"))
    }
    # Everything but the optional logs role, which is applied by choice.
    assert generated - {"rbac-logs.yaml"} <= set(kust["resources"])
