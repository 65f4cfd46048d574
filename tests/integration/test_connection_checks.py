"""Test connection checks `watch` as well as `list` for every resource the dashboard reads
(naming the verb and resource refused), runs under one overall deadline, and is rate
limited per admin — against the fake API server over real HTTP (its RBAC switch refuses
one verb on one resource, its latency switch makes it slow)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.clusters import connection as connection_test
from dashboard.clusters.connection import CheckRateLimit, CheckRateLimited
from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.probe import WATCHED_RESOURCES, probe
from dashboard.models import Cluster
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import DEFAULT_USER
from tests.helpers.kube_support import read_only_server

pytestmark = pytest.mark.usefixtures("no_embedded_collectors")


@pytest.fixture
def server():
    sim = Simulator.from_scenario("demo", seed=5)
    # A probe never writes, not even an access review.
    with read_only_server(sim.store) as s:
        yield s


@pytest.fixture
def cluster(db, server, tmp_path):
    path = server.write_kubeconfig(tmp_path / "kc")
    return Cluster.objects.create(
        name="Prod", slug="prod", source="kubeconfig", kubeconfig_path=str(path)
    )


def _admin(name: str = "boss") -> Client:
    user = get_user_model().objects.create_superuser(name, password=f"{name}-pw-123")
    c = Client()
    c.force_login(user)
    return c


def _row(html: str, check: str) -> str:
    m = re.search(rf'data-check="{re.escape(check)}">(.*?)</tr>', html, re.S)
    assert m, f"no row {check!r}"
    return m.group(1)


# --------------------------------------------------------------------------- watch


def test_every_watched_resource_is_watched_briefly(server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc"))
    try:
        report = probe(client, timeout=3.0)
    finally:
        client.close()
    assert report.ok
    assert set(report.watches) == set(WATCHED_RESOURCES)
    assert all(c.detail == "watch allowed (cluster-wide)" for c in report.watches.values())
    watches = [urlsplit(p) for _, p in server.requests if "watch=true" in p]
    assert len(watches) == len(WATCHED_RESOURCES)
    for url in watches:
        query = parse_qs(url.query)
        assert query["timeoutSeconds"] == ["1"]
        # From the list's resourceVersion: the server has nothing to replay.
        assert query["resourceVersion"][0] not in ("", "0")


def test_watch_forbidden_names_the_verb_and_resource(cluster, server):
    server.faults.forbid("watch", "pods")
    report = connection_test.test_connection(cluster, timeout=3.0)
    assert report.probe is not None and not report.ok
    assert report.probe.resources["pods"].ok  # list is allowed...
    watch = report.probe.watches["pods"]  # ...watch is not
    assert watch.ok is False
    assert watch.detail == (
        "forbidden: cannot watch pods at the cluster scope — grant get/list/watch on it"
        f' (user "{DEFAULT_USER}")'
    )
    assert report.probe.missing == [("watch", "pods")]
    assert all(report.probe.watches[r].ok for r in ("nodes", "daemonsets", "controllerrevisions"))


def test_watch_forbidden_in_the_one_namespace_of_the_scope(db, server, tmp_path):
    path = server.write_kubeconfig(tmp_path / "kc")
    c = Cluster.objects.create(
        name="Ns",
        slug="ns",
        source="kubeconfig",
        kubeconfig_path=str(path),
        namespaces_include="kube-system",
    )
    server.faults.forbid("watch", "daemonsets")
    report = connection_test.test_connection(c, timeout=3.0)
    assert report.probe is not None
    assert report.probe.watches["pods"].detail == 'watch allowed (in namespace "kube-system")'
    assert report.probe.watches["daemonsets"].detail.startswith(
        'forbidden: cannot watch daemonsets.apps in namespace "kube-system"'
    )


def test_the_admin_page_shows_a_row_per_verb(cluster, server):
    server.faults.forbid("watch", "controllerrevisions")
    html = (
        _admin()
        .post(
            "/admin/dashboard/cluster/",
            {"action": "test_connection", "_selected_action": [cluster.pk]},
        )
        .content.decode()
    )
    assert "st-synced" in _row(html, "list controllerrevisions")
    row = _row(html, "watch controllerrevisions")
    assert "st-failed" in row and "cannot watch controllerrevisions.apps" in row
    assert "st-synced" in _row(html, "watch nodes")
    assert "problems found" in html


# --------------------------------------------------------------------------- deadline


def test_a_slow_server_is_cut_off_by_the_deadline(cluster, server, settings):
    """Every request waits at most what is left of the deadline, not the per-request
    timeout: a server slower than the deadline is reported as not answering in time."""
    settings.DAEMONVIZ_CHECK_DEADLINE = 0.5
    server.faults.delay(3.0)
    report = connection_test.test_connection(cluster, timeout=30.0)
    assert report.probe is not None and not report.ok
    assert report.probe.reachable.ok is False
    assert report.probe.reachable.detail.startswith("timeout:")
    assert all(c.ok is None for c in report.probe.resources.values())


def test_checks_past_the_deadline_say_so(cluster, server, settings):
    settings.DAEMONVIZ_CHECK_DEADLINE = 1.0
    server.faults.delay(0.3)  # each request answers, but ten of them take too long
    report = connection_test.test_connection(cluster, timeout=5.0)
    probe_report = report.probe
    assert probe_report is not None and probe_report.timed_out and not report.ok
    late = [
        name
        for name, c in (*probe_report.resources.items(), *probe_report.watches.items())
        if c.detail == "not checked: the connection test ran out of time"
    ]
    assert late, report.lines()


def test_one_deadline_for_every_selected_cluster(db, server, tmp_path, settings):
    settings.DAEMONVIZ_CHECK_DEADLINE = 1.0
    server.faults.delay(0.4)
    path = server.write_kubeconfig(tmp_path / "kc")
    clusters = [
        Cluster.objects.create(
            name=f"C{i}", slug=f"c{i}", source="kubeconfig", kubeconfig_path=str(path)
        )
        for i in range(3)
    ]
    reports = connection_test.test_connections(clusters)
    assert [r.cluster for r in reports] == ["C0", "C1", "C2"]
    assert reports[-1].config_error == "not tested: the 1 s deadline passed"


# --------------------------------------------------------------------------- rate limit


def test_test_connection_is_rate_limited_per_admin(cluster, server, settings):
    settings.DAEMONVIZ_CHECK_RATE = 2
    boss = _admin("boss")
    url = f"/admin/dashboard/cluster/{cluster.pk}/test-connection/"
    for _ in range(2):
        assert "everything the dashboard needs works" in boss.post(url).content.decode()
    asked = len(server.requests)
    resp = boss.post(url, follow=True)
    html = resp.content.decode()
    assert "Too many connection tests: at most 2 cluster(s) a minute per admin." in html
    assert re.search(r"Try again in \d+ s\.", html)
    assert len(server.requests) == asked  # limited: no request left the server
    # The action counts every real cluster selected, and says so when it is too many.
    resp = boss.post(
        "/admin/dashboard/cluster/",
        {"action": "test_connection", "_selected_action": [cluster.pk]},
        follow=True,
    )
    assert "Too many connection tests" in resp.content.decode()
    # Per admin: another one still may.
    other = _admin("other")
    assert "everything the dashboard needs works" in other.post(url).content.decode()


def test_simulated_clusters_do_not_count(db, settings):
    settings.DAEMONVIZ_CHECK_RATE = 1
    sims = [Cluster.objects.create(name=f"S{i}", slug=f"s{i}") for i in range(3)]
    resp = _admin().post(
        "/admin/dashboard/cluster/",
        {"action": "test_connection", "_selected_action": [c.pk for c in sims]},
    )
    assert resp.status_code == 200 and "Too many" not in resp.content.decode()


def test_rate_window_slides():
    now = [1000.0]
    limit = CheckRateLimit(window=60.0, clock=lambda: now[0])
    limit.take("a", 2, limit=3)
    now[0] += 30
    limit.take("a", 1, limit=3)
    with pytest.raises(CheckRateLimited) as err:
        limit.take("a", 1, limit=3)
    assert err.value.retry_after == 30.0  # when the first two leave the window
    with pytest.raises(CheckRateLimited, match=r"Too many clusters selected \(4\)"):
        limit.take("b", 4, limit=3)
    now[0] += 30
    limit.take("a", 2, limit=3)  # the first two have left
    limit.take("b", 3, limit=3)  # a refused request counted nothing


def test_events_are_checked_and_a_refusal_names_them(cluster, server):
    server.faults.forbid("list", "events")
    server.faults.forbid("watch", "events")
    report = connection_test.test_connection(cluster, timeout=3.0)
    assert report.probe is not None and not report.ok
    assert report.probe.missing == [("list", "events"), ("watch", "events")]
    assert report.probe.resources["events"].detail.startswith(
        "forbidden: cannot list events at the cluster scope — grant get/list/watch on it"
    )
    assert all(report.probe.resources[r].ok for r in ("nodes", "pods", "daemonsets"))
    # The probe asks for events exactly as the collector does: Warning only.
    lists = [p for _, p in server.requests if p.startswith("/api/v1/events?")]
    assert lists and all("fieldSelector=type%3DWarning" in p for p in lists)


def test_node_events_in_default_are_an_optional_check_shown_as_a_note(db, server, tmp_path):
    """One namespace other than "default": node events need events in "default" too. The
    dashboard works without them, so a refusal is a note, never a failed check."""
    c = Cluster.objects.create(
        name="Ns",
        slug="ns",
        source="kubeconfig",
        kubeconfig_path=str(server.write_kubeconfig(tmp_path / "kc")),
        namespaces_include="kube-system",
    )
    admin = _admin()

    def page() -> str:
        form = {"action": "test_connection", "_selected_action": [c.pk]}
        return admin.post("/admin/dashboard/cluster/", form).content.decode()

    html = page()
    assert "st-synced" in _row(html, "watch events in default")
    assert 'data-note="optional"' not in html
    server.faults.forbid("list", "events", namespace="default")
    server.faults.forbid("watch", "events", namespace="default")
    connection_test.rate_limit.reset()
    html = page()
    assert "everything the dashboard needs works" in html and "st-failed" not in html
    assert 'data-check="watch events in default"' not in html
    note = re.search(r'data-note="optional">(.*?)</p>', html, re.S)
    assert note and "node events not shown: the ServiceAccount may not list/watch events" in (
        note.group(1)
    )
