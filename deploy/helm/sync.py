"""Render the plain manifests of deploy/ from the Helm chart, so the two cannot drift.

    python deploy/helm/sync.py [--helm PATH]          # rewrite the files (make deploy-manifests)
    python deploy/helm/sync.py --check [--helm PATH]  # exit 1 and list the files that differ

The chart (deploy/helm/daemonviz) is the source. `helm template` with
deploy/helm/kustomize-values.yaml renders deploy/rbac.yaml and deploy/k8s/*.yaml (what
`kubectl apply -k deploy/` applies); the alert rules and the Grafana dashboard are copied
from the chart's files/ to deploy/prometheus/ and deploy/grafana/. tests/deploy checks
that the committed files equal what this renders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent
CHART = HERE / "daemonviz"
VALUES = HERE / "kustomize-values.yaml"
NAMESPACE = "daemonviz"

HEADER = (
    "# GENERATED from the Helm chart (deploy/helm/daemonviz) by deploy/helm/sync.py with\n"
    "# deploy/helm/kustomize-values.yaml: edit the chart, then run `make deploy-manifests`.\n"
)
NAMESPACE_DOC = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"

# deploy/ file -> the chart templates it holds, in order.
RENDERED = {
    "rbac.yaml": ("templates/serviceaccount.yaml", "templates/rbac.yaml"),
    # Optional, not in kustomization.yaml: `kubectl apply -f deploy/rbac-logs.yaml`.
    "rbac-logs.yaml": ("templates/rbac-logs.yaml",),
    "k8s/config.yaml": ("templates/configmap.yaml",),
    "k8s/web.yaml": ("templates/web.yaml",),
    "k8s/collector.yaml": ("templates/collector.yaml",),
    "k8s/jobs.yaml": ("templates/jobs.yaml",),
}
COPIED = {
    "prometheus/rules.yaml": "files/rules.yaml",
    "grafana/daemonviz.json": "files/grafana-dashboard.json",
}


def default_helm() -> str:
    """$DAEMONVIZ_HELM, else the binary tests/e2e/controlplane/build.sh caches, else PATH."""
    if os.environ.get("DAEMONVIZ_HELM"):
        return os.environ["DAEMONVIZ_HELM"]
    cache = Path(os.environ.get("DAEMONVIZ_E2E_CACHE", Path.home() / ".cache/daemonviz-e2e"))
    built = sorted(cache.glob("helm-v*/bin/helm"))
    if built:
        return str(built[-1])
    return shutil.which("helm") or "helm"


# Values set for one file on top of kustomize-values.yaml: the logs role is rendered on.
EXTRA = {"rbac-logs.yaml": ("--set", "logs.enabled=true")}


def _template(helm: str, show_only: tuple[str, ...], extra: tuple[str, ...] = ()) -> str:
    argv = [helm, "template", "daemonviz", str(CHART), "--namespace", NAMESPACE, "-f", str(VALUES)]
    argv += extra
    for name in show_only:
        argv += ["--show-only", name]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"helm template failed:\n{proc.stderr}")
    return proc.stdout


def render(helm: str) -> dict[str, str]:
    """Every generated file of deploy/, by path relative to deploy/."""
    out = {}
    for rel, templates in RENDERED.items():
        body = _template(helm, templates, EXTRA.get(rel, ()))
        if rel == "rbac.yaml":
            body = "---\n" + NAMESPACE_DOC + body
        out[rel] = HEADER + body
    for rel, src in COPIED.items():
        out[rel] = (CHART / src).read_text()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", default=default_helm())
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in render(args.helm).items():
        path = DEPLOY / rel
        if path.exists() and path.read_text() == text:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("out of date with the chart (run `make deploy-manifests`):", *stale, sep="\n  ")
        return 1
    for rel in stale:
        print(f"wrote deploy/{rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
