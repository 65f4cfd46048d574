"""An object nested thousands of levels deep in a field nobody reads (a ControllerRevision's
free-form `data`, which the API server accepts) is skipped and counted like any object we
cannot decode: it hides nothing else of its list page, the watch goes on without relisting,
later rollouts are seen, and the CLI prints no traceback. Served by the fake API server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.reflector import SYNCED, ClusterWatch
from dashboard.simulator.store import ObjectStore
from tests.helpers.kube_support import FAST, Mirror, fill, read_only_server, revision
from tests.helpers.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPTH = 3000  # msgspec gives up near 1,000; Go's encoding/json accepts 10,000
DEEP = b"[" * DEPTH + b"]" * DEPTH


@pytest.fixture
def store():
    s = ObjectStore()
    fill(s)
    s.put("controllerrevisions", revision("kube-system", "agent-0", 0))
    s.put("controllerrevisions", revision("kube-system", "deep", 2), raw_fields={"data": DEEP})
    s.put("controllerrevisions", revision("kube-system", "zz-after", 3))
    return s


@pytest.fixture
def server(store):
    with read_only_server(store, bookmark_interval=0.2) as srv:
        yield srv


@pytest.fixture
def kubeconfig(server, tmp_path):
    return server.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def watch(kubeconfig):
    mirror = Mirror()
    w = ClusterWatch(client_from_kubeconfig(kubeconfig), mirror, **FAST)
    yield w, mirror
    w.stop()


def _revisions(mirror: Mirror) -> set[str]:
    return set(mirror.state()["controllerrevisions"])


@pytest.mark.parametrize("page_size", [500, 2])  # one page; the deep one alone on a page
def test_a_deep_object_is_skipped_and_counted_and_hides_nothing(kubeconfig, page_size):
    mirror = Mirror()
    w = ClusterWatch(client_from_kubeconfig(kubeconfig), mirror, page_size=page_size, **FAST)
    try:
        assert w.wait_synced(10), mirror.problems()
        assert _revisions(mirror) == {
            "kube-system/agent-1",
            "kube-system/agent-0",
            "kube-system/zz-after",
        }
        reflector = w.reflectors["controllerrevisions"]
        skipped = reflector.stats.skipped
        assert list(skipped) == ["kube-system/deep"]
        assert "nested too deeply" in skipped["kube-system/deep"].reason
        assert reflector.stats.errors == 0 and mirror.problems() == []
    finally:
        w.stop()


def test_the_watch_goes_on_past_a_deep_object_and_sees_later_rollouts(store, watch):
    w, mirror = watch
    assert w.wait_synced(10)
    reflector = w.reflectors["controllerrevisions"]
    # Watched: a deep object turns up, an existing one turns deep, then a new rollout.
    store.put(
        "controllerrevisions", revision("kube-system", "deep-2", 4), raw_fields={"data": DEEP}
    )
    store.put(
        "controllerrevisions", revision("kube-system", "agent-0", 0), raw_fields={"data": DEEP}
    )
    store.put("controllerrevisions", revision("kube-system", "agent-5", 5))
    wait_until(lambda: "kube-system/agent-5" in _revisions(mirror), what="the next rollout")
    # agent-0 turned unreadable: its older copy is dropped, as a relist would.
    assert _revisions(mirror) == {
        "kube-system/agent-1",
        "kube-system/zz-after",
        "kube-system/agent-5",
    }
    assert set(reflector.stats.skipped) == {
        "kube-system/deep",
        "kube-system/deep-2",
        "kube-system/agent-0",
    }
    assert reflector.stats.lists == 1 and reflector.stats.errors == 0  # no relist, no retry
    assert w.status.state == SYNCED
    # Fixed: it comes back, and is no longer counted; deleted: forgotten.
    store.put("controllerrevisions", revision("kube-system", "agent-0", 0))
    store.delete("controllerrevisions", "kube-system", "deep-2")
    wait_until(lambda: "kube-system/agent-0" in _revisions(mirror))
    wait_until(lambda: set(reflector.stats.skipped) == {"kube-system/deep"})


def test_recursion_errors_are_a_bad_object_not_a_connection_problem():
    from dashboard.kube.errors import BAD_OBJECT, classify

    problem = classify(RecursionError("maximum recursion depth exceeded"))
    assert problem.kind == BAD_OBJECT and "nested too deeply" in problem.message


def _coverage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "coverage", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_live_cli_skips_the_deep_object_with_a_note(kubeconfig):
    result = _coverage("--kubeconfig", str(kubeconfig), "--format", "json")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "kube-system/agent" in {
        d["namespace"] + "/" + d["name"] for d in json.loads(result.stdout)["daemonsets"]
    }
    assert (
        "skipped 1 object that cannot be read: ControllerRevision kube-system/deep" in result.stderr
    )


def test_the_snapshot_cli_names_the_deep_object_in_one_line(tmp_path):
    ok = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "revision": 1,
        "metadata": {"name": "ok", "namespace": "x"},
    }
    deep = (
        b'{"apiVersion":"apps/v1","kind":"ControllerRevision","revision":2,"metadata":{"name":"deep","namespace":"x"},"data":'
        + DEEP
        + b"}"
    )
    doc = (
        b'{"apiVersion":"v1","kind":"List","items":['
        + json.dumps(ok).encode()
        + b","
        + deep
        + b"]}"
    )
    path = tmp_path / "dump.json"
    path.write_bytes(doc)
    result = _coverage("--snapshot", str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "ControllerRevision x/deep" in result.stderr and "nested too deeply" in result.stderr


@pytest.mark.django_db
def test_a_collector_shows_what_it_leaves_out(kubeconfig, client, admin_client, django_user_model):
    from prometheus_client.parser import text_string_to_metric_families

    from dashboard.collect.registry import registry
    from dashboard.models import Cluster
    from tests.helpers import collectors

    Cluster.objects.create(
        name="Deep", slug="deep", source="kubeconfig", kubeconfig_path=str(kubeconfig)
    )
    collector = collectors.make(collectors.kubeconfig_cluster(kubeconfig, "deep", name="Deep"))
    collector.start_source()
    try:
        wait_until(lambda: (collector.tick(), collector.settled)[1], what="the first sync")
        registry.register(collector)
        summary = collector.runtime_status().skipped
        assert summary.total == 1 and summary.by_kind == {"ControllerRevision": 1}
        assert summary.examples[0].startswith(
            "ControllerRevision kube-system/deep: nested too deeply"
        )

        metrics = client.get("/metrics").content.decode()
        left_out = {
            s.labels["kind"]: s.value
            for f in text_string_to_metric_families(metrics)
            if f.name == "daemonviz_skipped_objects"
            for s in f.samples
        }
        assert left_out == {
            "Node": 0,
            "DaemonSet": 0,
            "Pod": 0,
            "ControllerRevision": 1,
            "Service": 0,
            "EndpointSlice": 0,
            "Event": 0,
            "PriorityClass": 0,
        }

        badge = admin_client.get("/admin/dashboard/cluster/").content.decode()
        assert "1 left out" in badge and "kube-system/deep" in badge

        client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123"))
        status = client.get("/clusters/deep/status/").content.decode()
        assert "1 object left out (cannot be read or classified)" in status
    finally:
        registry.unregister("deep")
        collector.stop_source()
