"""Only a Kubernetes API server is a cluster: a kubeconfig pointing at any other HTTP server
(a web page, a plain 404, a JSON health endpoint, the dashboard's own address) is named as
such by test connection, the collector's state, the `coverage` CLI and the cluster form —
and the collector does not poll it as if it were a failing cluster.

Every server here is real HTTP on 127.0.0.1 (tests/helpers/webservers.py, Django's live
server, daphne); the Kubernetes side is the fake API server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.clusters import connection as connection_test
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.connection import ConnectionState
from dashboard.kube.probe import probe
from dashboard.kube.reflector import FAILED, ClusterWatch
from dashboard.kube.snapshot import ClusterUnreachable, list_cluster
from dashboard.models import Cluster
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer
from tests.helpers import collectors
from tests.helpers.daphne import manage, running_daphne
from tests.helpers.kube_support import FAST, Mirror
from tests.helpers.wait import wait_until
from tests.helpers.webservers import WebServer, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
NOT_K8S = "this is not a Kubernetes API server"
# What the kube layer would have asked for, had it taken the address for a cluster.
RESOURCE_PATHS = ("/api/v1/", "/apis/")

pytestmark = pytest.mark.usefixtures("no_embedded_collectors")


@pytest.fixture(params=["page", "404", "json", "version-only"])
def web(request):
    with WebServer(request.param) as server:
        yield server


def _client(tmp_path: Path, url: str, token: str = "not-a-real-token"):
    return client_from_kubeconfig(write_kubeconfig(tmp_path / "kubeconfig", url, token))


def _asked_for_resources(paths: list[str]) -> list[str]:
    return [p for p in paths if p.startswith(RESOURCE_PATHS)]


# --------------------------------------------------------------------------- the probe


def test_probe_says_the_server_is_not_kubernetes(web, tmp_path):
    client = _client(tmp_path, web.url)
    try:
        report = probe(client, timeout=2.0)
    finally:
        client.close()
    assert report.reachable.ok is False
    assert report.reachable.detail.startswith(f"{NOT_K8S} ({web.url}: GET /")
    assert report.not_kubernetes and not report.ok
    # Not "authenticated yes", not "list allowed": nothing past the identification.
    assert report.authenticated.ok is None
    assert all(c.ok is None for c in (*report.resources.values(), *report.watches.values()))
    assert _asked_for_resources(web.paths) == []


def test_probe_names_what_answered(tmp_path):
    expected = {
        "page": 'GET /version answered HTTP 200 with an HTML page titled "Intranet — Welcome"',
        "404": 'GET /version answered HTTP 404 with an HTML page titled "Error response"',
        "json": "GET /version answered HTTP 200 with JSON without gitVersion",
        "version-only": 'GET /api answered HTTP 404 with text/plain: "404 page not found"',
    }
    for mode, words in expected.items():
        with WebServer(mode) as server:
            client = _client(tmp_path, server.url)
            try:
                detail = probe(client, timeout=2.0).reachable.detail
            finally:
                client.close()
        assert words in detail, (mode, detail)


def test_what_a_hostile_page_sends_is_bounded_and_kept_on_one_line(tmp_path):
    with WebServer("huge") as server:
        client = _client(tmp_path, server.url)
        try:
            detail = probe(client, timeout=5.0).reachable.detail
        finally:
            client.close()
    assert "GET /version answered HTTP 200 with more than 64 KiB of text/html" in detail
    with WebServer("control-chars") as server:
        client = _client(tmp_path, server.url)
        try:
            detail = probe(client, timeout=5.0).reachable.detail
        finally:
            client.close()
    title = detail.split('titled "', 1)[1].split('")', 1)[0]
    assert title.startswith("line one [31mred [0m line two long long")
    assert all(c.isprintable() for c in detail) and "\x1b" not in detail
    assert len(title) == 80 and title.endswith("…")  # cut short


def test_a_real_api_server_is_identified(tmp_path):
    sim = Simulator.from_scenario("demo", seed=3)
    with FakeApiServer(sim.store, port=0, token="tkn") as server:
        client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc"))
        try:
            report = probe(client, timeout=2.0)
        finally:
            client.close()
    assert report.ok, report
    assert report.identity is not None and report.identity.git_version.startswith("v1.32.0")
    assert "answered: Kubernetes v1.32.0-daemonviz-fake" in report.reachable.detail


def test_a_page_echoing_the_token_does_not_leak_it(db, tmp_path):
    token = "sekrit-token-123"
    with WebServer("echo-auth") as server:
        path = write_kubeconfig(tmp_path / "kc", server.url, token)
        cluster = Cluster.objects.create(
            name="Echo", slug="echo", source="kubeconfig", kubeconfig_path=str(path)
        )
        report = connection_test.test_connection(cluster, timeout=2.0)
    assert report.probe is not None and report.probe.not_kubernetes
    assert "hello Bearer" in report.probe.reachable.detail  # the page's title, as sent...
    assert token not in report.probe.reachable.detail  # ...minus the secret


# --------------------------------------------------------------------------- the collector


def test_cluster_watch_fails_clearly_and_does_not_poll(web, tmp_path):
    client = _client(tmp_path, web.url)
    mirror = Mirror()
    w = ClusterWatch(client, mirror, **FAST)
    try:
        wait_until(lambda: w.status.state == FAILED, 5, "failed on a non-Kubernetes server")
        problem = w.status.problem
        assert problem.kind == "not_kubernetes" and problem.needs_action
        assert problem.message.startswith(NOT_K8S)
        assert w.identity is None
        # The default retry is slow: one identification so far, not a poll of every resource
        # every few seconds. (Old code: four reflectors listing /api/v1/... with backoff.)
        assert _asked_for_resources(web.paths) == []
        assert all(r.stats.lists == 0 and r.stats.errors == 0 for r in w.reflectors.values())
    finally:
        w.stop()
    assert mirror.cluster_states() == [FAILED]


def test_the_address_starting_to_serve_kubernetes_is_picked_up(tmp_path):
    """Slow retry, not none: once a real API server answers at that address, it syncs."""
    web = WebServer("page").start()
    port = web.port
    client = _client(tmp_path, web.url, token="tkn")
    w = ClusterWatch(client, Mirror(), not_kubernetes_retry=0.2, **FAST)
    server = None
    try:
        wait_until(lambda: w.status.state == FAILED, 5)
        web.stop()
        sim = Simulator.from_scenario("demo", seed=3)
        server = FakeApiServer(sim.store, port=port, token="tkn").start()
        assert w.wait_synced(10), w.status
        assert w.identity is not None and w.identity.git_version.startswith("v1.32")
    finally:
        w.stop()
        if server is not None:
            server.stop()
            assert server.non_get_requests == []


def test_collector_state_and_admin_status_line(db, tmp_path):
    with WebServer("404") as web:
        path = write_kubeconfig(tmp_path / "kc", web.url)
        cluster = Cluster.objects.create(
            name="Wrong", slug="wrong", source="kubeconfig", kubeconfig_path=str(path)
        )
        collector = collectors.make(ClusterConfig.from_model(cluster))
        collector.start_source()
        registry.register(collector)
        try:
            wait_until(lambda: collector.status.state == ConnectionState.FAILED, 5)
            collector.tick()
            rt = collector.runtime_status()
            assert rt.state == ConnectionState.FAILED and rt.message.startswith(NOT_K8S)
            assert "GET /version answered HTTP 404" in rt.message
            boss = get_user_model().objects.create_superuser("boss", password="pw-123-boss")
            admin = Client()
            admin.force_login(boss)
            page = admin.get(f"/admin/dashboard/cluster/{cluster.pk}/change/").content.decode()
            assert "st-failed" in page and NOT_K8S in page
            assert _asked_for_resources(web.paths) == []
        finally:
            collector.stop_source()


# --------------------------------------------------------------------------- CLI and form


def test_list_cluster_and_the_cli_say_so(tmp_path):
    with WebServer("page") as web:
        client = _client(tmp_path, web.url)
        with pytest.raises(ClusterUnreachable) as err:
            list_cluster(client, request_timeout=(2.0, 2.0))
        client.close()
        assert err.value.problem.kind == "not_kubernetes"
        kubeconfig = write_kubeconfig(tmp_path / "cli-kc", web.url)
        proc = subprocess.run(
            [sys.executable, "manage.py", "coverage", "--kubeconfig", str(kubeconfig)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert _asked_for_resources(web.paths) == []
    assert proc.returncode != 0
    assert NOT_K8S in proc.stderr and web.url in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_cluster_form_refuses_a_web_page_unless_told(db, tmp_path):
    boss = get_user_model().objects.create_superuser("boss", password="pw-123-boss")
    admin = Client()
    admin.force_login(boss)
    form = {
        "name": "Prod",
        "slug": "prod",
        "enabled": "on",
        "display_order": "0",
        "source": "kubeconfig",
        "scenario": "demo",
        "sim_seed": "1",
    }
    with WebServer("page") as web:
        form["kubeconfig_path"] = str(write_kubeconfig(tmp_path / "kc", web.url))
        resp = admin.post("/admin/dashboard/cluster/add/", form)
        assert resp.status_code == 200
        html = resp.content.decode()
        assert NOT_K8S in html and "Save without checking the connection" in html
        assert not Cluster.objects.filter(slug="prod").exists()
        resp = admin.post("/admin/dashboard/cluster/add/", {**form, "skip_connection_check": "on"})
        assert resp.status_code == 302 and Cluster.objects.filter(slug="prod").exists()


# --------------------------------------------------------------------------- the dashboard


def test_the_dashboards_own_test_server_is_not_a_cluster(live_server, tmp_path):
    """Django's test server running this very app (pytest-django's live_server)."""
    client = _client(tmp_path, live_server.url)
    try:
        report = probe(client, timeout=5.0)
    finally:
        client.close()
    assert report.not_kubernetes, report.reachable
    assert "GET /version answered HTTP 404 with an HTML page" in report.reachable.detail


@pytest.mark.slow
def test_the_dashboards_own_daphne_is_not_a_cluster(tmp_path):
    """The dashboard served by daphne, as `make run` does: test connection, the collector
    and the CLI all name it as not Kubernetes, and nothing lists pods from it."""
    env = {
        **os.environ,
        "DAEMONVIZ_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "DAEMONVIZ_DEMO_CLUSTER": "false",
        "DAEMONVIZ_DEBUG": "false",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage(env, "migrate", "--noinput")
    with running_daphne(tmp_path, env) as url:
        client = _client(tmp_path, url)
        try:
            report = probe(client, timeout=5.0)
            assert report.not_kubernetes, report.reachable
            assert "GET /version answered HTTP 404" in report.reachable.detail
            w = ClusterWatch(client, Mirror(), **FAST)
            try:
                wait_until(lambda: w.status.state == FAILED, 10)
                assert w.status.problem.kind == "not_kubernetes"
                assert all(r.stats.lists == 0 for r in w.reflectors.values())
            finally:
                w.stop()
        finally:
            client.close()
        proc = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "coverage",
                "--kubeconfig",
                str(write_kubeconfig(tmp_path / "cli-kc", url)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode != 0 and NOT_K8S in proc.stderr
