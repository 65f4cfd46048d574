"""/metrics (Prometheus text, parsed), its optional bearer token, /healthz and /readyz."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.metrics import WEBSOCKET_CLIENTS
from dashboard.models import Cluster
from tests.helpers import collectors

pytestmark = pytest.mark.usefixtures("no_embedded_collectors")


@pytest.fixture
def demo(db):
    Cluster.objects.create(name="Demo", slug="demo")
    c = collectors.make(ClusterConfig(slug="demo", name="Demo"))
    c.start_source(run_clock=False)
    c.tick()
    registry.register(c)
    yield c
    c.stop_source()


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_match_the_matrix(client, demo):
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/plain")
    fams = _families(resp.content.decode())
    cov = {s.labels["daemonset"]: s.value for s in fams["daemonviz_coverage_ratio"].samples}
    from dashboard.coverage.summary import daemonset_summary

    for key in demo.matrix.daemonsets:
        c = daemonset_summary(demo.matrix, key).counts
        if c.targeted:
            assert cov[key] == pytest.approx(c.healthy / c.targeted)
    missing = fams["daemonviz_daemonset_missing_nodes"].samples
    assert {s.labels["cluster"] for s in missing} == {"demo"}
    assert len(missing) == len(demo.matrix.daemonsets)
    for name in ("daemonviz_daemonset_crash_looping_nodes", "daemonviz_daemonset_outdated_nodes",
                 "daemonviz_cluster_coverage_ratio", "daemonviz_collector_synced",
                 "daemonviz_websocket_clients", "daemonviz_matrix_revision"):  # fmt: skip
        assert name in fams, name
    synced = fams["daemonviz_collector_synced"].samples[0]
    assert synced.labels == {"cluster": "demo"} and synced.value == 1.0


def test_metrics_token(client, demo, settings):
    settings.DAEMONVIZ_METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics").status_code == 401
    bad = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert bad.status_code == 401 and "Bearer" in bad["WWW-Authenticate"]
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert ok.status_code == 200 and b"daemonviz_coverage_ratio" in ok.content


def test_probes(client, demo, settings):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "not configured"
    assert body["checks"]["collectors"] == {"demo": "synced"}
    # Embedded mode, but the collectors have not started: not ready yet.
    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = True
    assert client.get("/readyz").status_code == 503
    # Redis configured but unreachable: not ready.
    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = False
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = client.get("/readyz")
    assert body.status_code == 503 and body.json()["checks"]["redis"].startswith("failed")


@pytest.mark.django_db(transaction=True)
async def test_websocket_clients_gauge(demo):
    from asgiref.sync import sync_to_async

    from daemonviz.asgi import application

    user = await sync_to_async(get_user_model().objects.create_user)("v", password="pw-123456")
    from channels.auth import login  # noqa: F401 - session set-up below
    from django.contrib.sessions.backends.db import SessionStore

    def session_key():
        s = SessionStore()
        s["_auth_user_id"] = str(user.pk)
        s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        s["_auth_user_hash"] = user.get_session_auth_hash()
        s.create()
        return s.session_key

    key = await sync_to_async(session_key)()
    gauge = WEBSOCKET_CLIENTS.labels("grid")
    before = gauge._value.get()
    comm = WebsocketCommunicator(
        application,
        "/ws/clusters/demo/grid/",
        headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", f"sessionid={key}".encode())],
    )
    connected, _ = await comm.connect()
    assert connected
    assert gauge._value.get() == before + 1
    await comm.disconnect()
    assert gauge._value.get() == before


def test_probes_answer_any_host(client, demo):
    # Kubelet probes and Prometheus use the pod IP as Host; other pages still refuse it.
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/metrics", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400
