"""`coverage --kubeconfig` against a live (fake) API server gives exactly what
`coverage --snapshot` gives on a `kubectl get … -o json` dump of the same cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")


def _coverage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "coverage", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def demo_server(tmp_path):
    sim = Simulator.from_scenario("demo", seed=7)
    sim.step(30)  # some churn history: crash loops, flaps, a rollout in progress maybe
    server = FakeApiServer(sim.store, port=0, token=None).start()
    try:
        yield server, server.write_kubeconfig(tmp_path / "kubeconfig"), sim
    finally:
        server.stop()


def _comparable(doc: dict) -> dict:
    doc = dict(doc)
    doc.pop("generated_at")
    return doc


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_live_listing_equals_snapshot_of_kubectl_dump(demo_server, tmp_path):
    server, kubeconfig, sim = demo_server
    dump = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "get",
            "nodes,daemonsets,pods,controllerrevisions,services,endpointslices,events,priorityclasses",
            "-A",
            "-o",
            "json",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    snapshot_file = tmp_path / "dump.json"
    snapshot_file.write_bytes(dump)

    live = _coverage("--kubeconfig", str(kubeconfig), "--format", "json")
    snap = _coverage("--snapshot", str(snapshot_file), "--format", "json")
    assert live.returncode == 0, live.stderr
    assert snap.returncode == 0, snap.stderr
    live_doc, snap_doc = json.loads(live.stdout), json.loads(snap.stdout)
    assert live_doc["summary"]["nodes"] == sim.store.count("nodes") > 30
    assert live_doc["summary"]["daemonsets"] == sim.store.count("daemonsets") == 8
    assert _comparable(live_doc) == _comparable(snap_doc)
    # The dashboard only read: list requests, nothing else.
    assert server.non_get_requests == []
    assert all("watch" not in path for _, path in server.requests)


def test_live_listing_of_an_unreachable_server_is_one_clear_line(tmp_path, demo_server):
    server, kubeconfig, _ = demo_server
    server.stop()
    result = _coverage("--kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "refused" in result.stderr.lower()


def test_live_listing_with_an_unknown_context_names_the_known_ones(demo_server):
    _, kubeconfig, _ = demo_server
    result = _coverage("--kubeconfig", str(kubeconfig), "--context", "nope")
    assert result.returncode == 1
    assert "nope" in result.stderr and "fake" in result.stderr
    assert "Traceback" not in result.stderr
