"""The installed CLI: a wheel built from the repository, installed into a fresh virtualenv
(no Django, no checkout on sys.path), gives `daemonviz` and `kubectl-daemonviz`, which
read snapshots and a live (fake) API server with the options of `manage.py coverage` plus
kubectl's habits (-o, -n, --context, $KUBECONFIG merged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer
from tests.helpers.install import ROOT, build_and_install
from tests.unit.test_cli_coverage import _snapshot_items, v1_list

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return build_and_install(tmp_path_factory.mktemp("cli-install"))


@pytest.fixture
def snapshot(tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(v1_list(_snapshot_items())))
    return path


@pytest.fixture
def server(tmp_path):
    sim = Simulator.from_scenario("demo", seed=7)
    sim.step(30)
    srv = FakeApiServer(sim.store, port=0, token=None).start()
    try:
        yield srv, srv.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        srv.stop()


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "KUBECONFIG")
    }
    env["HOME"] = extra.pop("HOME", env.get("HOME", "/nonexistent"))
    return {**env, **extra}


def _manage_json(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "manage.py", "coverage", *args, "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return _untimed(json.loads(out))


def _untimed(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "generated_at"}


def test_no_django_and_complete_metadata(installed):
    proc = installed.run("python", "-c", "import django")
    assert proc.returncode != 0 and "No module named 'django'" in proc.stderr
    meta = installed.run(
        "python",
        "-c",
        "import importlib.metadata as m; d = m.metadata('daemonviz'); "
        "print(d.get_all('Requires-Dist')); print(d.get_all('Provides-Extra'))",
    )
    requires, extras = meta.stdout.splitlines()
    assert "kubernetes" in requires and "msgspec" in requires
    assert "server" in extras
    base = [r for r in eval(requires) if "extra ==" not in r]
    assert not [r for r in base if r.lower().startswith(("django", "channels", "daphne"))], base
    assert (installed.bin / "daemonviz").exists() and (installed.bin / "kubectl-daemonviz").exists()
    version = installed.run("daemonviz", "--version")
    assert version.returncode == 0 and version.stdout.strip() == "daemonviz 0.1.0"


def test_snapshot_output_equals_manage_py(installed, snapshot):
    proc = installed.run(
        "daemonviz", "coverage", "--snapshot", str(snapshot), "-o", "json", env=_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert _untimed(json.loads(proc.stdout)) == _manage_json("--snapshot", str(snapshot))
    table = installed.run("daemonviz", "coverage", "--snapshot", str(snapshot), env=_env())
    manage = subprocess.run(
        [sys.executable, "manage.py", "coverage", "--snapshot", str(snapshot)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),  # the same environment: COLUMNS, NO_COLOR… decide the table's shape
    )
    assert table.stdout == manage.stdout
    wide = installed.run(
        "kubectl-daemonviz", "coverage", "--snapshot", str(snapshot), "-o", "wide", env=_env()
    )
    assert wide.stdout.startswith(table.stdout)
    cells = wide.stdout[len(table.stdout) :].strip().splitlines()
    assert cells[0].split()[:4] == ["NODE", "DAEMONSET", "STATE", "POD"]
    assert any("crash-looping" in line for line in cells[1:])


def test_exit_codes_and_namespace(installed, snapshot):
    low = installed.run(
        "daemonviz", "coverage", "--snapshot", str(snapshot), "--fail-under", "99", env=_env()
    )
    assert low.returncode == 2 and "below 99%" in low.stderr
    ok = installed.run(
        "daemonviz",
        "coverage",
        "--snapshot",
        str(snapshot),
        "-n",
        "monitoring",
        "--fail-under",
        "99",
        "-o",
        "json",
        env=_env(),
    )
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert {d["namespace"] for d in doc["daemonsets"]} == {"monitoring"}
    assert len(doc["nodes"]) == 5  # nodes are cluster-wide
    bad = installed.run("daemonviz", "coverage", "--bogus", env=_env())
    assert bad.returncode == 1 and "unrecognized arguments" in bad.stderr
    missing = installed.run("daemonviz", "coverage", "--snapshot", "/nonexistent.json", env=_env())
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_live_with_kubeconfig_env_merged_like_kubectl(installed, server, tmp_path):
    srv, kubeconfig = server
    live = installed.run(
        "kubectl-daemonviz", "coverage", "--kubeconfig", str(kubeconfig), "-o", "json", env=_env()
    )
    assert live.returncode == 0, live.stderr
    expected = _untimed(json.loads(live.stdout))
    assert expected["summary"]["nodes"] > 10
    # $KUBECONFIG with a missing file and a second file whose current-context is not the
    # first's: kubectl takes the first current-context, and names merge first-wins.
    other = yaml.safe_load(kubeconfig.read_text())
    real_ctx = other["current-context"]
    decoy = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "decoy",
        "clusters": [{"name": "decoy", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "decoy", "user": {"token": "x"}}],
        "contexts": [{"name": "decoy", "context": {"cluster": "decoy", "user": "decoy"}}],
    }
    (tmp_path / "decoy.yaml").write_text(yaml.safe_dump(decoy))
    paths = os.pathsep.join(
        [str(tmp_path / "absent.yaml"), str(kubeconfig), str(tmp_path / "decoy.yaml")]
    )
    merged = installed.run("daemonviz", "coverage", "-o", "json", env=_env(KUBECONFIG=paths))
    assert merged.returncode == 0, merged.stderr
    assert _untimed(json.loads(merged.stdout)) == expected
    # --context picks the second file's context; it is unreachable, in one line, exit 1.
    decoy_run = installed.run(
        "daemonviz", "coverage", "--context", "decoy", env=_env(KUBECONFIG=paths)
    )
    assert decoy_run.returncode == 1 and decoy_run.stderr.count("\n") == 1, decoy_run.stderr
    assert real_ctx != "decoy"
    # Without --kubeconfig or $KUBECONFIG: ~/.kube/config.
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(kubeconfig.read_text())
    default = installed.run("daemonviz", "coverage", "-o", "json", env=_env(HOME=str(home)))
    assert default.returncode == 0, default.stderr
    assert _untimed(json.loads(default.stdout)) == expected
