"""`kubectl daemonviz coverage`: the installed plugin (a wheel in a fresh virtualenv,
tests/helpers/install.py), found on PATH by the real kubectl, reading the real control
plane as the read-only `daemonviz` ServiceAccount — with no Django in that virtualenv."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.e2e.workload import KWOK_NODE_ANNOTATION
from tests.helpers.install import build_and_install

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return build_and_install(tmp_path_factory.mktemp("plugin"))


@pytest.fixture
def a_node(control_plane):
    """A kwok node of this test's own, so the matrix has a row whatever ran before."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "plugin-node-0", "annotations": dict(KWOK_NODE_ANNOTATION)},
    }
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(node))
    yield "plugin-node-0"
    control_plane.kubectl("delete", "node", "plugin-node-0", "--wait=false", check=False)


def test_kubectl_finds_and_runs_the_plugin(control_plane, installed, a_node):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG")},
        "PATH": f"{installed.bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    kubectl = str(control_plane.bins.kubectl)
    listed = subprocess.run([kubectl, "plugin", "list"], env=env, capture_output=True, text=True)
    assert str(installed.bin / "kubectl-daemonviz") in listed.stdout, listed.stdout + listed.stderr
    proc = subprocess.run(
        [
            kubectl,
            "daemonviz",
            "coverage",
            "--kubeconfig",
            str(control_plane.sa_kubeconfig),
            "-o",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=installed.venv,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "daemonviz.coverage/v1"
    names = {n["name"] for n in doc["nodes"]}
    nodes = control_plane.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert a_node in names and names == {n.removeprefix("node/") for n in nodes}
    # The same cluster through $KUBECONFIG, as kubectl's own habit.
    via_env = subprocess.run(
        [kubectl, "daemonviz", "coverage", "-o", "json"],
        env={**env, "KUBECONFIG": str(control_plane.sa_kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=installed.venv,
    )
    assert via_env.returncode == 0, via_env.stderr
    assert json.loads(via_env.stdout)["summary"]["nodes"] == len(nodes)
