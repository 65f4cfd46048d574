"""The grid's current view and a DaemonSet's column as CSV and as the coverage JSON
document (dashboard/grid/export.py): the filters of the page apply, every exported cell is
the grid's own, hostile names cannot become spreadsheet formulas, signed-in only."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.coverage.report import cell_json
from dashboard.grid.export import CSV_COLUMNS
from dashboard.models import Cluster
from tests.helpers import collectors, k8s
from tests.integration.test_views import POOL, _objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(db):
    """test_views' cluster: 4 nodes (one NotReady), 3 DaemonSets, a crash loop."""
    c = Cluster.objects.create(name="Test cluster", slug="t", source="simulated")
    collector = collectors.make(ClusterConfig(slug="t", name="Test cluster"))
    collector.matrix = k8s.build(_objects())
    registry.register(collector)
    yield collector
    registry.unregister("t")
    c.delete()


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123"))
    return client


def _get_json(client, url: str) -> dict:
    resp = client.get(url)
    assert resp.status_code == 200, resp.content[:300]
    assert resp["Content-Type"] == "application/json"
    return json.loads(resp.content)


def _get_csv(client, url: str) -> list[dict[str, str]]:
    resp = client.get(url)
    assert resp.status_code == 200
    assert resp["Content-Type"] == "text/csv; charset=utf-8"
    assert resp["Content-Disposition"].startswith('attachment; filename="daemonviz-t-')
    text = resp.content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0].split(",") == list(CSV_COLUMNS)
    return rows


def test_unfiltered_json_is_the_coverage_document_of_the_cluster(user_client, cluster):
    doc = _get_json(user_client, "/clusters/t/export.json")
    assert doc["schema"] == "daemonviz.coverage/v1" and doc["cluster"] == "t"
    assert doc["filters"] == {}
    assert doc["summary"]["nodes"] == 4 and doc["summary"]["daemonsets"] == 3
    live = {(node, key): cell_json(node, key, c) for (node, key), c in cluster.matrix.cells.items()}
    assert {(c["node"], c["daemonset"]) for c in doc["cells"]} == set(live)
    for c in doc["cells"]:
        want = live[(c["node"], c["daemonset"])]
        assert (c["state"], c["pod"], c["restarts"]) == (
            want["state"],
            want["pod"],
            want["restarts"],
        )


def test_filters_of_the_grid_apply(user_client, cluster):
    doc = _get_json(user_client, f"/clusters/t/export.json?selector={POOL}%3Dgpu&namespace=logging")
    assert doc["filters"] == {"selector": f"{POOL}=gpu", "namespace": "logging"}
    assert [d["name"] for d in doc["daemonsets"]] == ["fluent-bit"]
    assert {n["name"] for n in doc["nodes"]} == {
        "ip-10-0-2-1.ec2.internal",
        "ip-10-0-2-2.ec2.internal",
    }
    assert {c["node"] for c in doc["cells"]} <= {n["name"] for n in doc["nodes"]}
    # The view's own counters: fluent-bit on the two gpu nodes only.
    assert (
        doc["daemonsets"][0]["targeted"]
        + sum(1 for c in doc["cells"] if c["state"] == "not-targeted")
        == 2
    )
    problems = _get_json(user_client, "/clusters/t/export.json?state=problems")
    assert problems["cells"] and all(
        c["state"] not in ("healthy", "outdated", "not-targeted") for c in problems["cells"]
    )
    assert problems["summary"] == _get_json(user_client, "/clusters/t/export.json")["summary"]


def test_csv_rows_name_node_state_reason_and_last_exit(user_client, cluster):
    rows = _get_csv(user_client, "/clusters/t/export.csv?state=crash-looping")
    assert len(rows) == 1
    (row,) = rows
    assert row["cluster"] == "t" and row["node"] == "ip-10-0-1-2.ec2.internal"
    assert row["daemonset"] == "logging/fluent-bit" and row["state"] == "crash-looping"
    assert row["restarts"] == "7" and row["last_exit_reason"] == "OOMKilled"
    assert row["last_exit_code"] == "137" and row["node_status"] == "Ready"
    assert "CrashLoopBackOff" in row["reason"]
    every = _get_csv(user_client, "/clusters/t/export.csv")
    assert len(every) == len(cluster.matrix.cells)


def test_daemonset_export_is_its_column(user_client, cluster):
    rows = _get_csv(user_client, "/clusters/t/daemonsets/kube-system/kube-proxy/export.csv")
    assert {r["daemonset"] for r in rows} == {"kube-system/kube-proxy"}
    assert len(rows) == 4
    doc = _get_json(user_client, "/clusters/t/daemonsets/kube-system/kube-proxy/export.json")
    assert [d["name"] for d in doc["daemonsets"]] == ["kube-proxy"]
    assert user_client.get("/clusters/t/daemonsets/kube-system/nope/export.csv").status_code == 404
    assert user_client.get("/clusters/t/export.xlsx").status_code == 404


def test_pages_link_their_export(user_client, cluster):
    html = user_client.get(f"/clusters/t/?namespace=logging&selector={POOL}%3Dgpu").content.decode()
    assert (
        f'href="/clusters/t/export.csv?namespace=logging&amp;selector={POOL.replace("/", "%2F")}%3Dgpu"'
        in html
    )
    page = user_client.get("/clusters/t/daemonsets/kube-system/kube-proxy/").content.decode()
    assert 'href="/clusters/t/daemonsets/kube-system/kube-proxy/export.json"' in page


def test_hostile_names_do_not_become_formulas(user_client, cluster):
    objs = _objects()
    evil = k8s.node("=HYPERLINK(x)", labels={POOL: "general"})
    cluster.matrix = k8s.build([*objs, evil])
    rows = _get_csv(user_client, "/clusters/t/export.csv")
    nodes = {r["node"] for r in rows}
    assert "'=HYPERLINK(x)" in nodes and "=HYPERLINK(x)" not in nodes


def test_signed_out_gets_no_export(client, cluster):
    for url in (
        "/clusters/t/export.csv",
        "/clusters/t/daemonsets/kube-system/kube-proxy/export.json",
    ):
        resp = client.get(url)
        assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")
