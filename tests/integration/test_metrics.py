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
        s["_auth_user_backend"] = "dashboard.auth.local.LocalPasswordBackend"
        s["_auth_user_hash"] = user.get_session_auth_hash()
        s.create()
        return s.session_key

    key = await sync_to_async(session_key)()
    gauge = WEBSOCKET_CLIENTS.labels("grid")
    before = gauge._value.get()
    comm = WebsocketCommunicator(
        application,
        "/ws/clusters/demo/grid/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"host", b"127.0.0.1:8000"),
            (b"cookie", f"sessionid={key}".encode()),
        ],
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


# --------------------------------------------------------------------------- problem cells


def _problem_cells(matrix) -> dict[tuple[str, str], str]:
    from dashboard.metrics import PROBLEM_STATES

    return {
        (ds_key, node): str(cell.state)
        for (node, ds_key), cell in matrix.cells.items()
        if cell.state in PROBLEM_STATES
    }


def test_one_series_per_problem_cell_only(client, demo):
    expected = _problem_cells(demo.matrix)
    assert expected, "the demo scenario has problem cells"
    assert len(expected) < len(demo.matrix.cells) / 4
    fams = _families(client.get("/metrics").content.decode())
    samples = fams["daemonviz_problem_cell"].samples
    got = {(s.labels["daemonset"], s.labels["node"]): s.labels["state"] for s in samples}
    assert got == expected
    assert {s.labels["cluster"] for s in samples} == {"demo"}
    assert all(s.value >= 0 for s in samples)
    assert fams["daemonviz_problem_cells_dropped"].samples[0].value == 0


def test_problem_cells_are_bounded_worst_first(client, demo, settings):
    from dashboard.coverage.states import State

    settings.DAEMONVIZ_METRICS_PROBLEM_CELLS = 3
    expected = _problem_cells(demo.matrix)
    fams = _families(client.get("/metrics").content.decode())
    samples = fams["daemonviz_problem_cell"].samples
    assert len(samples) == 3
    worst = sorted((State(s).severity for s in expected.values()), reverse=True)[:3]
    assert sorted((State(s.labels["state"]).severity for s in samples), reverse=True) == worst
    dropped = fams["daemonviz_problem_cells_dropped"].samples[0]
    assert dropped.labels == {"cluster": "demo"} and dropped.value == len(expected) - 3


def test_problem_clock_counts_seconds_in_the_state():
    from dashboard.metrics import ProblemClock

    clock = ProblemClock()
    cell = ("ns/agent", "node-1", "missing")
    assert clock.ages("c", [cell], now=100.0) == [(*cell, 0.0)]
    assert clock.ages("c", [cell], now=160.0) == [(*cell, 60.0)]
    # A new state starts a new clock; the old one is forgotten.
    crash = ("ns/agent", "node-1", "crash-looping")
    assert clock.ages("c", [crash], now=200.0) == [(*crash, 0.0)]
    assert clock.ages("c", [cell], now=210.0) == [(*cell, 0.0)]
    # Other clusters keep theirs; a removed cluster is forgotten.
    clock.ages("d", [cell], now=210.0)
    assert clock.ages("c", [], now=220.0) == []
    assert clock.ages("d", [cell], now=230.0) == [(*cell, 20.0)]
    clock.forget({"c"})
    assert clock.ages("d", [cell], now=240.0) == [(*cell, 0.0)]


def test_dashboard_and_alert_rules_read_metrics_that_exist(client, demo):
    """Every daemonviz_* name in deploy/grafana/daemonviz.json's queries and variables and
    in deploy/prometheus/rules.yaml's expressions is a family (or, for counters, a
    `_total` sample) of a real scrape."""
    import json
    import re
    from pathlib import Path

    from tests.deploy.test_prometheus_rules import rule_metric_names

    fams = _families(client.get("/metrics").content.decode())
    exposed = set(fams) | {f"{n}_total" for n, f in fams.items() if f.type == "counter"}
    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "deploy/grafana/daemonviz.json").read_text()
    )
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = {m for q in queries for m in re.findall(r"\bdaemonviz_[a-z_]+\b", q)}
    assert len(used) >= 10
    assert not used - exposed, used - exposed
    assert not rule_metric_names() - exposed, rule_metric_names() - exposed
