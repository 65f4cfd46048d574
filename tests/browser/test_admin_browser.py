"""The admin panel in Chromium against the live daphne: styled like the app, clusters added
and disabled in the admin take effect in the running collectors, wall display URLs."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS, save_admin_form

pytestmark = pytest.mark.browser


def test_admin_cluster_list_has_live_badges(page, server):
    page.goto(f"{server}/admin/dashboard/cluster/")
    page.wait_for_selector(".sbadge.st-synced")
    assert "daemonviz" in page.inner_text("#site-name")
    # The admin wears the app's palette (admin.css maps its variables onto ours).
    bg = page.evaluate("getComputedStyle(document.getElementById('header')).backgroundColor")
    panel = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--panel').trim()"
    )
    assert panel and bg != "rgb(65, 118, 144)"  # not Django's stock header blue
    page.screenshot(path=str(ARTIFACTS / "admin-clusters.png"))


def test_cluster_added_in_admin_runs_without_restart(page, server):
    page.goto(f"{server}/admin/dashboard/cluster/add/")
    page.type("#id_name", "Second sim")
    assert page.input_value("#id_slug") == "second-sim"  # prepopulated from the name
    page.select_option("#id_source", "simulated")
    assert page.is_hidden(".field-kubeconfig_path")  # fields follow the chosen source
    page.fill("#id_sim_seed", "9")
    page.screenshot(path=str(ARTIFACTS / "admin-cluster-add.png"))
    save_admin_form(page, "cluster")
    page.goto(f"{server}/")
    page.wait_for_function(
        "[...document.querySelectorAll('.card.cluster')].some("
        "c => c.innerText.includes('Second sim') && c.innerText.includes('synced'))",
        timeout=20000,
    )
    # Disable it in the admin: the collector stops.
    page.goto(f"{server}/admin/dashboard/cluster/")
    page.check("tr:has-text('Second sim') input.action-select")
    page.select_option("select[name=action]", "disable")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    page.goto(f"{server}/clusters/second-sim/")
    assert "No collector is running" in page.inner_text("main")
    # Clean up for the other browser tests.
    page.goto(f"{server}/admin/dashboard/cluster/")
    page.check("tr:has-text('Second sim') input.action-select")
    page.select_option("select[name=action]", "delete_selected")
    page.click("button[name=index]")
    page.click("input[type=submit]")
    page.wait_for_selector(".messagelist")


def test_wall_display_url_is_shown_once_and_works(page, server, browser):
    page.goto(f"{server}/admin/dashboard/walldisplay/add/")
    page.fill("#id_name", "NOC screen")
    page.select_option("#id_clusters_from", label="Demo (simulated)")
    page.click("#id_clusters_add")
    page.click("input[name=_save]")
    url = page.inner_text("pre.wall-url").strip()
    page.screenshot(path=str(ARTIFACTS / "admin-wall-url.png"))
    # A fresh browser, never signed in: the wall opens, live; nothing else does.
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tv = context.new_page()
    tv.goto(url)
    tv.wait_for_selector(".wallcluster .wallcov")
    assert "Demo" in tv.inner_text("#wall")
    tv.screenshot(path=str(ARTIFACTS / "wall-minimal.png"))
    tv.goto(f"{server}/clusters/demo/")
    assert "/accounts/login/" in tv.url
    context.close()


def test_cluster_form_offers_the_contexts_of_a_kubeconfig(page, server, tmp_path):
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: abcdefgh}}]\n"
        "contexts:\n"
        "- {name: prod-eu, context: {cluster: c, user: u}}\n"
        "- {name: '<b>odd</b>', context: {cluster: c, user: u}}\n"
        "current-context: prod-eu\n"
    )
    page.goto(f"{server}/admin/dashboard/cluster/add/")
    page.select_option("#id_source", "uploaded")
    assert page.is_hidden(".field-kubeconfig_path") and page.is_visible(".field-kubeconfig_upload")
    page.set_input_files("#id_kubeconfig_upload", str(kubeconfig))
    page.wait_for_selector("#id_context option[value='prod-eu']", state="attached")
    options = page.eval_on_selector_all("#id_context option", "os => os.map(o => o.textContent)")
    assert options == ["the file's current-context (prod-eu)", "prod-eu", "<b>odd</b>"]
    page.select_option("#id_source", "kubeconfig")
    assert page.is_visible(".field-kubeconfig_path") and page.is_hidden(".field-kubeconfig_upload")
    page.fill("#id_kubeconfig_path", str(tmp_path / "missing.yaml"))
    page.wait_for_function(
        "document.querySelector('.field-context .help').textContent.includes('file not found')"
    )
    page.fill("#id_kubeconfig_path", str(kubeconfig))
    page.wait_for_function(
        "document.querySelector('.field-context .help').textContent.includes('contexts found')"
    )
    page.screenshot(path=str(ARTIFACTS / "admin-cluster-contexts.png"))
