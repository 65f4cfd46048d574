"""The crash-loop log of the cell detail (dashboard/grid/logs.py): opt-in per cluster, read
from the fake API server over HTTP when a signed-in user opens the cell, escaped, scrubbed
of the cluster's credentials, refused by RBAC in words, and never read by the collector."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.models import Cluster
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors, k8s

pytestmark = pytest.mark.django_db

TOKEN = "tok-3f9a1c77e2b54d0c"
NODE = "ip-10-0-1-2.ec2.internal"
HOSTILE = '<script>alert("log")</script>'
LOG = (
    "starting agent\n"
    f"connecting with Authorization: Bearer {TOKEN}\n"
    f"{HOSTILE}\n"
    "fatal: out of memory\n"
)


def _objects() -> tuple[list[dict], dict, dict]:
    node = k8s.node(NODE)
    ds = k8s.daemonset("fluent-bit", "logging")
    crashed = k8s.daemon_pod(
        ds,
        NODE,
        name="fluent-bit-x1",
        container_state=k8s.waiting("CrashLoopBackOff", "back-off 5m0s restarting"),
        restarts=7,
        last_state=k8s.terminated("OOMKilled", 137),
    )
    return [node, ds, k8s.controller_revision(ds, 1, "rev1hash"), crashed], ds, crashed


@pytest.fixture
def server():
    objs, _, crashed = _objects()
    store = ObjectStore()
    store.put("pods", crashed)
    srv = FakeApiServer(store, port=0, token=TOKEN).start()
    container = crashed["spec"]["containers"][0]["name"]
    srv.set_log("logging", "fluent-bit-x1", container, LOG, previous=True)
    yield srv
    srv.stop()
    assert srv.non_get_requests == []


@pytest.fixture
def cluster(server, tmp_path):
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    row = Cluster.objects.create(
        name="Logs", slug="logs", source="kubeconfig", kubeconfig_path=str(kubeconfig)
    )
    collector = collectors.make(ClusterConfig(slug="logs", name="Logs"))
    collector.matrix = k8s.build(_objects()[0])
    registry.register(collector)
    yield row
    registry.unregister("logs")


@pytest.fixture
def viewer(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123"))
    return client


@pytest.fixture
def admin(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True)
    )
    return client


def _cell(c, slug="logs") -> str:
    url = reverse("cell", args=[slug]) + f"?node={NODE}&ds=logging/fluent-bit"
    return c.get(url, HTTP_HX_REQUEST="true").content.decode()


def _log(c, pod="fluent-bit-x1", slug="logs"):
    url = reverse("cell-log", args=[slug]) + f"?node={NODE}&ds=logging/fluent-bit&pod={pod}"
    return c.get(url)


def _log_requests(server: FakeApiServer) -> list[str]:
    return [p for _, p in server.requests if "/log" in p]


def test_logs_are_off_by_default_and_the_admin_is_told_how(cluster, server, viewer, admin):
    assert Cluster._meta.get_field("allow_logs").default is False
    html = _cell(admin)
    assert "Logs are off for this cluster" in html and "show crash-loop logs" in html
    assert reverse("admin:dashboard_cluster_change", args=[cluster.pk]) in html
    assert "pods/log" in html
    assert _log(admin).status_code == 403
    assert _log_requests(server) == []  # nothing was read


def test_a_viewer_is_not_shown_the_admin_settings(cluster, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops2", password="pw-ops-123"))
    html = _cell(client)
    assert "Logs are off for this cluster" in html and "An admin can switch them on" in html
    assert "/admin/" not in html


def test_opening_the_cell_reads_the_previous_log_escaped_and_scrubbed(cluster, server, viewer):
    cluster.allow_logs = True
    cluster.save()
    html = _cell(viewer)
    assert 'hx-trigger="load"' in html and reverse("cell-log", args=["logs"]) in html
    assert _log_requests(server) == []  # the panel asks when it is shown, not the cell
    response = _log(viewer)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "fatal: out of memory" in body and "previous instance" in body
    assert TOKEN not in body and "Bearer [redacted]" in body
    assert HOSTILE not in body and "&lt;script&gt;" in body
    (path,) = _log_requests(server)
    assert "previous=true" in path and "tailLines=50" in path and "limitBytes=16384" in path


def test_rbac_refusal_names_the_grant(cluster, server, viewer):
    cluster.allow_logs = True
    cluster.save()
    server.faults.forbid("get", "pods/log")
    body = _log(viewer).content.decode()
    assert "forbidden" in body and "get on &quot;pods/log&quot;" in body
    assert "logs.enabled=true" in body


def test_only_a_crashed_pod_of_the_cell_can_be_read(cluster, server, viewer):
    cluster.allow_logs = True
    cluster.save()
    assert _log(viewer, pod="kube-apiserver-node-1").status_code == 404
    assert _log_requests(server) == []


def test_signed_out_users_get_no_log(cluster, server, client):
    cluster.allow_logs = True
    cluster.save()
    assert _log(client).status_code == 302
    assert _log_requests(server) == []


def test_the_collector_never_reads_logs(server, tmp_path):
    """A real collector syncing the cluster through the kube layer asks for no log."""
    objs, _, _ = _objects()
    for obj in objs[:3]:
        server.store.put(
            {"Node": "nodes", "DaemonSet": "daemonsets"}.get(obj["kind"], "controllerrevisions"),
            obj,
        )
    kubeconfig = server.write_kubeconfig(tmp_path / "kc")
    with collectors.running(
        collectors.kubeconfig_cluster(kubeconfig, "logs-c", name="c")
    ) as collector:
        assert collectors.tick_until(collector, lambda: bool(collector.matrix.pods), 20)
    assert _log_requests(server) == []


# --------------------------------------------------------------------------- same exit


@pytest.fixture
def oom_cluster(db):
    """A DaemonSet OOMKilled on three of four nodes, each crash at its own time."""
    ds = k8s.daemonset("agent", "ops")
    nodes = [k8s.node(f"n{i}") for i in range(1, 5)]
    objs = [ds, *nodes, k8s.controller_revision(ds, 1, "rev1hash")]
    for i, n in enumerate(nodes[:3]):
        objs.append(
            k8s.daemon_pod(
                ds,
                n["metadata"]["name"],
                container_state=k8s.waiting("CrashLoopBackOff", "back-off"),
                restarts=i + 2,
                last_state=k8s.terminated("OOMKilled", 137, finished=k8s.ts(-100 * (i + 1))),
            )
        )
    objs.append(k8s.daemon_pod(ds, "n4"))
    row = Cluster.objects.create(name="OOM", slug="oom", source="simulated")
    collector = collectors.make(ClusterConfig(slug="oom", name="OOM"))
    collector.matrix = k8s.build(objs)
    registry.register(collector)
    yield row
    registry.unregister("oom")


def test_identical_exits_are_one_line_in_the_cell_the_daemonset_page_and_the_column(
    oom_cluster, viewer
):
    url = reverse("cell", args=["oom"]) + "?node=n2&ds=ops/agent"
    html = viewer.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Same exit (137, OOMKilled) on 3 nodes" in html
    assert "?node=n1&amp;ds=ops/agent" in html and "?node=n3&amp;ds=ops/agent" in html
    page = viewer.get(reverse("daemonset", args=["oom", "ops", "agent"])).content.decode()
    assert page.count("Same exit (137, OOMKilled) on 3 nodes") == 1  # the banner
    groups = re.search(r'<table class="list" id="cellgroups">.*?</table>', page, re.S).group(0)
    # The three crash loops differ in age and restarts, yet are one group of three nodes.
    assert groups.count("crash-looping</td>") == 1 and "<b>3 nodes</b>" in groups
    assert "same exit (137, OOMKilled) of container" in groups
    grid = viewer.get(reverse("grid", args=["oom"])).content.decode()
    head = re.search(r'<div id="h-[^"]+" class="ch"[^>]*title="([^"]*)"', grid).group(1)
    assert "same exit (137, OOMKilled) of agent on 3 nodes" in head
    doc = viewer.get(reverse("export", args=["oom", "json"])).json()
    (exits,) = doc["daemonsets"][0]["exits"]
    assert exits["count"] == 3 and exits["nodes"] == ["n1", "n2", "n3"]
