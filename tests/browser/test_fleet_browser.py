"""The fleet view (issue 19 §4): with two clusters the overview shows DaemonSets × clusters,
absent where a DaemonSet is not deployed, worst first; and a search across clusters."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, save_admin_form

pytestmark = pytest.mark.browser


def test_fleet_matrix_and_search_across_clusters(page, server):
    page.goto(f"{server}/admin/dashboard/cluster/add/")
    page.type("#id_name", "Fleet sim")
    page.select_option("#id_source", "simulated")
    page.fill("#id_sim_seed", "7")
    page.fill("#id_sim_nodes", "12")
    page.fill("#id_sim_daemonsets", "11")  # three DaemonSets the demo does not have
    save_admin_form(page, "cluster")
    try:
        page.goto(f"{server}/")
        page.wait_for_function(
            "document.querySelectorAll('#fleet thead th').length === 3"
            " && document.querySelectorAll('#fleet tbody tr').length >= 11",
            timeout=30_000,
        )
        heads = page.eval_on_selector_all("#fleet thead th", "ths => ths.map(t => t.innerText)")
        assert heads[1:] == ["Demo (simulated)", "Fleet sim"]
        rows = page.eval_on_selector_all(
            "#fleet tbody tr",
            "trs => trs.map(tr => [tr.dataset.ds, ...[...tr.querySelectorAll('td')].map(td => td.innerText)])",
        )
        by_ds = {r[0]: r[1:] for r in rows}
        absent = [k for k, cells in by_ds.items() if cells[0] == "—"]
        assert len(absent) == 3 and all(by_ds[k][1] != "—" for k in absent)
        # Worst first: the DaemonSet whose image never pulls heads the table.
        assert rows[0][0] == "kube-system/node-problem-detector" and "▼" in rows[0][1]
        # Rows go by their worst state's severity, highest first. The demo churns, so at
        # one moment every DaemonSet may have a problem somewhere: the order is checked, not
        # that a healthy row exists.
        worst = page.eval_on_selector_all(
            "#fleet tbody tr", "trs => trs.map(tr => Number(tr.dataset.worst))"
        )
        assert worst == sorted(worst, reverse=True)
        for (key, *cells), severity in zip(rows, worst, strict=True):
            broken = any("↻" in c or "▼" in c for c in cells)
            all_healthy = all("✓" in c or c == "—" for c in cells)
            assert not broken or severity > 0, key
            assert not all_healthy or severity == 0, key
        page.screenshot(path=str(ARTIFACTS / "fleet.png"), full_page=True)

        page.click("text=by name")
        page.wait_for_url(re.compile(r".*\?sort=name$"))
        names = page.eval_on_selector_all("#fleet tbody tr", "trs => trs.map(t => t.dataset.ds)")
        assert names == sorted(names)

        page.fill(".find input[name=find]", "node-problem")
        page.click(".find button")
        found = page.inner_text(".found")
        assert "2 DaemonSets" in found and "Demo (simulated)" in found and "Fleet sim" in found
        page.fill(".find input[name=find]", "ip-127-0-0-1.")
        page.click(".find button")
        assert "2 nodes" in page.inner_text(".found")  # the same name in both clusters
        page.screenshot(path=str(ARTIFACTS / "fleet-search.png"))
        assert not page.errors
    finally:
        page.goto(f"{server}/admin/dashboard/cluster/")
        page.check("tr:has-text('Fleet sim') input.action-select")
        page.select_option("select[name=action]", "delete_selected")
        page.click("button[name=index]")
        page.click("input[type=submit]")
        page.wait_for_selector(".messagelist")
