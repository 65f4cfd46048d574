"""Numbers that never lie (issue 19 §1), in Chromium against the churning demo: every
count follows every pushed frame, tiles count the filtered view beside the cluster's, a
cluster that never synced says so instead of showing zeros and ticks, and history marks
the time before recording started as "no data"."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.helpers.ports import free_port

pytestmark = pytest.mark.browser

ROW_NAMES = (
    "() => [...document.querySelectorAll('#grid [role=row][data-node]')].map(r => r.dataset.node)"
)
# What the page says beside what it shows, read in one evaluation (no frame in between).
COUNTS = """() => {
  const g = document.getElementById('grid');
  const groups = [...g.querySelectorAll('section.group')].map(s => ({
    rows: s.querySelectorAll('.grows > [role=row][data-node]').length,
    problems: [...s.querySelectorAll('.grows > [role=row][data-node]')].filter(
      r => r.querySelector('[data-p="1"], .rh .badge:not(.deleting)')).length,
    head: (s.querySelector('[data-count=group]') || {}).textContent || '',
  }));
  const tile = (k) => document.querySelector(`#summary [data-tile=${k}] b`).textContent;
  const cells = (st) => g.querySelectorAll('a.c.s-' + st).length;
  return {
    rows: g.querySelectorAll('[role=row][data-node]').length,
    corner: g.querySelector('[data-count=corner]').textContent.trim(),
    groups, nodes: tile('nodes'), crash: tile('crash_looping'), missing: tile('missing'),
    crashCells: cells('crash-looping'), missingCells: cells('missing'),
    clusterNodes: +document.getElementById('summary').dataset.nodes,
  };
}"""


def open_grid(page, server, query: str = ""):
    page.goto(f"{server}/clusters/demo/{query}")
    page.wait_for_selector("#grid a.c")
    page.wait_for_function("document.getElementById('ws-state').dataset.state === 'open'")
    page.evaluate("window.__noReload = 1")


def _group_head(rows: int, problems: int) -> str:
    text = f"{rows} node{'' if rows == 1 else 's'}"
    return text + (f", {problems} with problems" if problems else "")


def test_every_count_follows_node_joins_and_removals(page, server):
    open_grid(page, server)
    before = set(page.evaluate(ROW_NAMES))
    # The simulator adds and removes nodes by itself: wait for the row set to change.
    # Read the counts once the page shows a whole revision again: a row joining into a
    # group the page lacks arrives by re-sync, and until then the corner rightly says
    # that the cluster has one node more than the page shows.
    c = page.wait_for_function(
        f"(before) => {{ const now = ({ROW_NAMES})();"
        " const changed = now.length !== before.length || now.some(n => !before.includes(n));"
        f" return changed && window.daemonviz.settled() && ({COUNTS})(); }}",
        arg=sorted(before),
        timeout=60_000,
    ).json_value()
    assert set(page.evaluate(ROW_NAMES)) != before
    assert c["corner"] == f"{c['rows']} of {c['rows']} node{'' if c['rows'] == 1 else 's'}"
    assert c["clusterNodes"] == c["rows"] and c["nodes"] == str(c["rows"])
    for g in c["groups"]:
        assert g["head"] == _group_head(g["rows"], g["problems"]), g
    assert sum(g["rows"] for g in c["groups"]) == c["rows"]
    assert page.evaluate("window.__noReload") == 1 and not page.errors
    page.screenshot(path=str(ARTIFACTS / "numbers-after-join.png"), full_page=True)


def test_tiles_count_the_filtered_view_beside_the_cluster(page, server):
    open_grid(page, server, "?selector=eks.amazonaws.com/nodegroup%3Dgeneral")
    c = page.evaluate(COUNTS)
    assert c["nodes"] == str(c["rows"]) and c["clusterNodes"] > c["rows"]
    assert f"of {c['clusterNodes']} in cluster" in page.inner_text("#summary [data-tile=nodes]")
    assert c["crash"] == str(c["crashCells"]) and c["missing"] == str(c["missingCells"])
    # Cells keep changing: the page fetches its view's tiles after frames that moved counts.
    with page.expect_response(re.compile(r"/clusters/demo/summary/\?selector="), timeout=60_000):
        pass
    for _ in range(50):  # frames keep coming: compare tiles and cells once they agree in time
        page.wait_for_timeout(300)
        c = page.evaluate(COUNTS)
        if c["crash"] == str(c["crashCells"]) and c["nodes"] == str(c["rows"]):
            break
    assert c["crash"] == str(c["crashCells"]) and c["nodes"] == str(c["rows"]), c
    page.screenshot(path=str(ARTIFACTS / "numbers-filtered-tiles.png"))
    assert not page.errors


def test_a_cluster_that_never_synced_says_no_data(page, server, tmp_path):
    port = free_port()  # nothing listens there: the collector never gets a list
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: abcdefgh}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    page.goto(f"{server}/admin/dashboard/cluster/add/")
    page.type("#id_name", "Never synced")
    page.select_option("#id_source", "kubeconfig")
    page.fill("#id_kubeconfig_path", str(kubeconfig))
    page.check("#id_skip_connection_check")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/admin/dashboard/cluster/$"))
    try:
        page.goto(f"{server}/clusters/never-synced/")
        page.wait_for_selector("#grid .nodata")
        text = page.inner_text("#grid")
        assert "no data yet" in text.lower() and "No node matches" not in text
        tiles = page.eval_on_selector_all("#summary .kpi b", "bs => bs.map(b => b.textContent)")
        assert tiles and set(tiles) == {"–"}, tiles
        page.screenshot(path=str(ARTIFACTS / "numbers-never-synced-grid.png"))
        page.goto(f"{server}/")
        card = page.locator(".card.cluster", has_text="Never synced")
        assert "no data yet" in card.inner_text().lower()
        assert "missing" not in card.inner_text()  # no zeros for a cluster we know nothing of
        page.screenshot(path=str(ARTIFACTS / "numbers-never-synced-card.png"))
    finally:
        page.goto(f"{server}/admin/dashboard/cluster/")
        page.check("tr:has-text('Never synced') input.action-select")
        page.select_option("select[name=action]", "delete_selected")
        page.click("button[name=index]")
        page.click("input[type=submit]")
        page.wait_for_selector(".messagelist")


def test_history_before_recording_is_no_data(page, server):
    # The server started recording minutes ago: most of the 24 h window is unknown.
    page.goto(f"{server}/clusters/demo/daemonsets/kube-system/node-problem-detector/history/")
    note = page.inner_text("[data-no-data]")
    assert note.startswith("No data before") and "not healthy" in note
    lane = page.locator(".hist-lane").first
    seg = lane.locator(".hist-seg.s-nodata")
    assert seg.count() == 1 and "no data" in seg.get_attribute("title")
    width = float(re.search(r"width:([\d.]+)%", seg.get_attribute("style")).group(1))
    assert width > 90  # 24 h window, recorded for minutes
    page.screenshot(path=str(ARTIFACTS / "numbers-history-no-data.png"), full_page=True)


def test_cluster_history_charts_hatch_the_time_before_recording(page, server):
    page.goto(f"{server}/clusters/demo/history/?hours=6")
    assert page.inner_text("[data-no-data]").startswith("No data before")
    panels = page.locator(".charts figure.panel")
    assert panels.count() >= 1
    first = panels.first
    width = float(first.locator("svg rect.nodata").get_attribute("width"))
    assert 500 < width < 600  # six hours, recorded for minutes: mostly unknown
    d = first.locator("svg path.line").get_attribute("d")
    assert float(d[1:].split(",")[0]) == width  # the line starts where recording did
    page.screenshot(path=str(ARTIFACTS / "history-chart.png"), full_page=True)
