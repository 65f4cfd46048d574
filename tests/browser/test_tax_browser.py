"""The DaemonSet tax in the browser: the grid's row heads show it (tooltip: the sentence),
and a node page lists it per resource with the pools' room for one more daemon."""

from __future__ import annotations

import re

from tests.browser.conftest import ARTIFACTS, signed_in_page


def test_row_heads_and_node_page_show_the_daemonset_tax(browser, server):
    with signed_in_page(browser, server) as page:
        page.goto(f"{server}/clusters/demo/")
        tax = page.locator(".rh .meta .tax").first
        tax.wait_for(timeout=30_000)
        assert re.fullmatch(r"(<1|\d+)%", tax.inner_text())
        title = tax.get_attribute("title") or ""
        assert re.match(r"DaemonSet tax: daemons \(\d+ pods?\) request cpu \S+ of \S+ \(", title)
        page.locator(".rh a.nn").first.click()
        page.wait_for_selector("h2#tax")
        assert page.locator("table.tax tbody tr").count() >= 2  # cpu and memory
        page.fill("input[name=size]", "cpu=1000")  # a thousand cores fit nowhere
        page.click("form.inline button[type=submit]")
        page.wait_for_url(re.compile(r".*\?size=cpu%3D1000.*"))
        rows = page.locator("table.pools tbody tr")
        assert rows.count() >= 1
        assert all("node" in rows.nth(i).inner_text() for i in range(rows.count()))
        page.locator("h2#tax").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "node-tax.png"), full_page=True)
        assert page.errors == []
