"""The crash-loop log in the cell detail, in Chromium against the live daphne: a cluster
added in the admin with logs switched on, served by the fake API server from this test
process; the panel reads the previous container's log when the cell opens, shows hostile
text as text and the cluster's token as [redacted]; RBAC's refusal names the grant; with
logs off, the admin is told where to switch them on."""

from __future__ import annotations

import pytest

from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.browser.conftest import ARTIFACTS, save_admin_form
from tests.helpers import k8s

pytestmark = pytest.mark.browser

TOKEN = "tok-browser-8c1d2e3f4a5b"
NODE = "node-logs-1"
LOG = (
    "agent 2.1 starting\n"
    f"GET https://10.0.0.1/api Authorization: Bearer {TOKEN}\n"
    '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\n'
    "fatal: cannot allocate memory\n"
)
KINDS = {"Node": "nodes", "DaemonSet": "daemonsets", "ControllerRevision": "controllerrevisions"}


@pytest.fixture
def fake_cluster(tmp_path):
    store = ObjectStore()
    ds = k8s.daemonset("log-agent", "ops")
    for obj in (k8s.node(NODE), ds, k8s.controller_revision(ds, 1, "rev1hash")):
        store.put(KINDS[obj["kind"]], obj)
    pod = k8s.daemon_pod(
        ds,
        NODE,
        name="log-agent-q7x",
        container_state=k8s.waiting("CrashLoopBackOff", "back-off 40s restarting"),
        restarts=3,
        last_state=k8s.terminated("OOMKilled", 137),
    )
    store.put("pods", pod)
    srv = FakeApiServer(store, port=0, token=TOKEN).start()
    srv.set_log("ops", "log-agent-q7x", pod["spec"]["containers"][0]["name"], LOG)
    yield srv, srv.write_kubeconfig(tmp_path / "kubeconfig")
    srv.stop()
    assert srv.non_get_requests == []


def _open_cell(page, server: str) -> None:
    page.goto(f"{server}/clusters/logs-fake/")
    cell = page.locator("#grid a.c.s-crash-looping").first
    cell.wait_for(timeout=30_000)
    cell.click()
    page.wait_for_selector("#detail:not([hidden]) .celldetail")


def _delete_cluster(page, server: str) -> None:
    page.goto(f"{server}/admin/dashboard/cluster/")
    page.check("tr:has-text('Logs fake') input.action-select")
    page.select_option("select[name=action]", "delete_selected")
    page.click("button[name=index]")
    page.click("input[type=submit]")
    page.wait_for_selector(".messagelist")


def test_cell_detail_shows_the_crashed_containers_log(page, server, fake_cluster):
    srv, kubeconfig = fake_cluster
    page.goto(f"{server}/admin/dashboard/cluster/add/")
    page.type("#id_name", "Logs fake")
    page.select_option("#id_source", "kubeconfig")
    page.fill("#id_kubeconfig_path", str(kubeconfig))
    assert not page.is_checked("#id_allow_logs")  # off unless an admin says so
    page.check("#id_allow_logs")
    save_admin_form(page, "cluster")
    try:
        _open_cell(page, server)
        page.wait_for_selector("#detail .podlog pre.logtext", timeout=20_000)
        log = page.inner_text("#detail .podlog pre.logtext")
        assert "fatal: cannot allocate memory" in log
        assert TOKEN not in page.content() and "Bearer [redacted]" in log
        assert "<script>window.__pwned=2</script>" in log  # shown as text, not run
        assert page.evaluate("window.__pwned") is None
        assert "previous instance" in page.inner_text("#detail .podlog h4")
        page.locator("#detail .podlog").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "cell-detail-log.png"))
        logs_read = [p for _, p in srv.requests if "/log" in p]
        assert len(logs_read) == 1 and "previous=true" in logs_read[0]

        # The account may not read logs: the panel says which rule to add.
        srv.faults.forbid("get", "pods/log")
        page.keyboard.press("Escape")
        _open_cell(page, server)
        problem = page.locator("#detail .podlog .logproblem.forbidden")
        problem.wait_for(timeout=20_000)
        assert 'get on "pods/log"' in problem.inner_text()
        page.locator("#detail .podlog").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "cell-detail-log-forbidden.png"))

        # Logs switched off again: nothing is read, and the admin learns where to switch.
        page.goto(f"{server}/admin/dashboard/cluster/")
        page.click("a:text-is('Logs fake')")
        page.uncheck("#id_allow_logs")
        save_admin_form(page, "cluster")
        before = len([p for _, p in srv.requests if "/log" in p])
        _open_cell(page, server)
        off = page.locator("#detail .logs-off")
        off.wait_for()
        assert "show crash-loop logs" in off.inner_text()
        assert off.locator("a[href*='/admin/dashboard/cluster/']").count() == 1
        assert len([p for _, p in srv.requests if "/log" in p]) == before
        assert not page.errors
    finally:
        _delete_cluster(page, server)
