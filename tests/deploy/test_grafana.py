"""deploy/grafana/daemonviz.json follows the conventions of the kube-prometheus
dashboards: a `datasource` variable every query goes through (no hard-coded data source
uid), `cluster` and `daemonset` variables, unique panel ids on a grid without overlaps, a
stable uid. That its queries read metrics that exist is checked against a real /metrics
scrape in tests/integration/test_metrics.py."""

from __future__ import annotations

import json

from tests.deploy.tools import CHART, DEPLOY

DASHBOARD = DEPLOY / "grafana" / "daemonviz.json"


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_variables_and_data_source():
    d = _dashboard()
    assert d["uid"] == "daemonviz-coverage" and d["schemaVersion"] >= 36
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("cluster", "daemonset"):
        assert variables[name]["type"] == "query" and variables[name]["includeAll"]
    for panel in d["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            if "daemonviz_websocket_clients" not in t["expr"]:
                assert 'cluster=~"$cluster"' in t["expr"], t["expr"]


def test_panels_tile_the_grid():
    panels = _dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells
    titles = {p["title"] for p in panels}
    assert {"Coverage per cluster", "Coverage per DaemonSet", "Problem cells"} <= titles


def test_problem_cells_table_names_the_node():
    table = next(p for p in _dashboard()["panels"] if p["type"] == "table")
    (target,) = table["targets"]
    assert target["expr"].startswith("daemonviz_problem_cell{")
    assert target["format"] == "table" and target["instant"] is True
    order = table["transformations"][0]["options"]["indexByName"]
    assert list(order) == ["cluster", "daemonset", "node", "state", "Value"]


def test_chart_ships_the_same_dashboard():
    assert DASHBOARD.read_text() == (CHART / "files" / "grafana-dashboard.json").read_text()
