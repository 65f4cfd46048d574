"""The Content-Security-Policy holds in a real browser: every page of the app, the admin
and a wall display load and stay live (htmx polling, websockets, cell details) without a
single violation — no inline script or <style>, no eval — and answer with the policy and
the anti-framing headers."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, PASSWORD, USER

pytestmark = pytest.mark.browser

# Chromium reports violations on the console; the event catches any it would not print.
REPORT_VIOLATIONS = """document.addEventListener('securitypolicyviolation', (e) =>
  console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"""
WAIT_HTMX_SWAP = """() => new Promise((ok) =>
  document.body.addEventListener('htmx:afterSwap', () => ok(true), { once: true }))"""


def _violations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "CSP violation" in m]


def test_pages_work_live_under_the_content_security_policy(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        resp = page.goto(server + "/accounts/login/")
        policy = resp.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
        assert resp.headers.get("x-frame-options") == "DENY"
        page.fill("#id_username", USER)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server + "/")

        # Overview: the cards refresh themselves (htmx polling, a swap with no inline style).
        page.wait_for_selector(".card.cluster")
        assert page.evaluate(WAIT_HTMX_SWAP)

        # Grid: the websocket opens and live deltas are applied; a cell's details open.
        page.goto(server + "/clusters/demo/")
        page.wait_for_selector("#grid a.c")
        page.wait_for_function("document.getElementById('ws-state').dataset.state === 'open'")
        page.wait_for_function("window.daemonviz.frames > 0", timeout=20000)
        page.locator("#grid a.c").first.click()
        page.wait_for_selector("#detail:not([hidden]) .celldetail")
        page.screenshot(path=str(ARTIFACTS / "csp-grid-detail.png"))
        column = page.locator("#grid a[href*='/daemonsets/']").first.get_attribute("href")
        row = page.locator("#grid a[href*='/nodes/']").first.get_attribute("href")

        # A column, a row and the history pages.
        for path in (column, row, "/clusters/demo/history/", f"{column}history/", f"{row}history/"):
            assert page.goto(server + path).status == 200, path
        page.screenshot(path=str(ARTIFACTS / "csp-history.png"))

        # The admin: live badges (htmx), the cluster form (its own script), a wall display.
        page.goto(server + "/admin/dashboard/cluster/")
        page.wait_for_selector(".sbadge.st-synced")
        assert page.evaluate(WAIT_HTMX_SWAP)
        page.locator("#result_list a[href*='/change/']").first.click()
        page.wait_for_selector("#id_source")
        page.select_option("#id_source", "kubeconfig")
        assert page.is_visible(".field-kubeconfig_path")  # admin-cluster.js ran
        page.goto(server + "/admin/dashboard/walldisplay/add/")
        page.fill("#id_name", "CSP wall")
        page.select_option("#id_clusters_from", label="Demo (simulated)")
        page.click("#id_clusters_add")  # Django's own filter_horizontal widget script
        page.click("input[name=_save]")
        wall_url = page.inner_text("pre.wall-url").strip()
        page.screenshot(path=str(ARTIFACTS / "csp-admin.png"))

        # The wall display goes live over its own socket.
        page.goto(re.sub(r"^https?://[^/]+", server, wall_url))
        page.wait_for_function(
            "window.daemonvizWall && window.daemonvizWall.state === 'live'"
            " && window.daemonvizWall.applied > 0",
            timeout=20000,
        )
        page.screenshot(path=str(ARTIFACTS / "csp-wall.png"))
    finally:
        context.close()
    assert _violations(console) == [], console
    assert errors == []
