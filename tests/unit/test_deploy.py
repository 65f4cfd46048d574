"""deploy/: the manifests parse, wire together, and stay least-privilege (no cluster or
image builder here, so this checks their structure; `make e2e` applies rbac.yaml for real)."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomized() -> dict[tuple[str, str], dict]:
    kust = _docs(DEPLOY / "kustomization.yaml")[0]
    out = {}
    for rel in kust["resources"]:
        assert (DEPLOY / rel).is_file(), rel
        for d in _docs(DEPLOY / rel):
            out[(d["kind"], d["metadata"]["name"])] = d
    return out


def test_cluster_access_is_read_only():
    objs = _kustomized()
    roles = [d for (kind, _), d in objs.items() if kind in ("ClusterRole", "Role")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_web_and_collector_are_wired():
    objs = _kustomized()
    config = objs[("ConfigMap", "daemonviz")]["data"]
    assert config["DAEMONVIZ_EMBEDDED_COLLECTOR"] == "false"
    web = objs[("Deployment", "daemonviz-web")]["spec"]
    collector = objs[("Deployment", "daemonviz-collector")]["spec"]
    assert web["replicas"] >= 2 and collector["replicas"] == 2
    assert collector["template"]["spec"]["containers"][0]["command"][-1] == "collect"
    sa = {k[1] for k in objs if k[0] == "ServiceAccount"}
    for spec in (web, collector):
        pod = spec["template"]["spec"]
        assert pod["serviceAccountName"] in sa
        assert pod["securityContext"]["runAsNonRoot"] is True
        env_from = {next(iter(e.values()))["name"] for e in pod["containers"][0]["envFrom"]}
        assert env_from == {"daemonviz"}
    probes = web["template"]["spec"]["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = objs[("Service", "daemonviz")]["spec"]
    assert service["selector"] == web["selector"]["matchLabels"]
    secret = _docs(DEPLOY / "k8s" / "secret.example.yaml")[0]["stringData"]
    assert {"DAEMONVIZ_SECRET_KEY", "DAEMONVIZ_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL"} <= set(
        secret
    )


def test_image_runs_as_non_root_without_access_log():
    text = (DEPLOY / "Dockerfile").read_text()
    # daphne writes an access log to stdout by default (verbosity 1); wall-display URLs
    # carry their token in the path, so the image sends it to /dev/null explicitly.
    cmd = text.split("\nCMD", 1)[1]
    assert "USER 10001" in text and '"--access-log", "/dev/null"' in cmd
    assert "requirements.txt" in text
