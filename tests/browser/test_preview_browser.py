"""The Preview page in a real browser: a pasted manifest shows its predicted column (cells
marked predicted), the counts and the nodes where it would not fit; a broken manifest gives
one error with its line and column and keeps the text; an uploaded file works the same;
no Content-Security-Policy violation on the way."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS, signed_in_page

pytestmark = pytest.mark.browser

GPU_AGENT = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: preview-agent
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: preview-agent}
  template:
    metadata:
      labels: {app: preview-agent}
    spec:
      nodeSelector:
        eks.amazonaws.com/nodegroup: gpu
      tolerations:
      - {operator: Exists}
      containers:
      - name: agent
        image: registry.example/agent:1
        resources:
          requests: {cpu: "500"}
"""
BROKEN = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x\nspec: {}\n"
REPORT_VIOLATIONS = """document.addEventListener('securitypolicyviolation', (e) =>
  console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"""


def test_preview_predicts_a_column_and_says_where_it_would_not_fit(browser, server, tmp_path):
    with signed_in_page(browser, server) as pg:
        pg.context.add_init_script(REPORT_VIOLATIONS)
        console: list[str] = []
        pg.on("console", lambda m: console.append(m.text))
        pg.goto(server + "/clusters/demo/")
        pg.click("text=preview a change")
        pg.wait_for_url(server + "/clusters/demo/preview/")

        pg.fill("#plan-text", GPU_AGENT)
        pg.click("#plan-submit")
        pg.wait_for_selector("#plan-result")
        row = pg.locator("table.plancounts tr[data-ds='monitoring/preview-agent']")
        targets = int(row.locator("td.n-targets").inner_text())
        assert targets > 0
        # Every targeted node is a predicted cell; 500 CPUs fit on none of them.
        predicted = pg.locator("td.predicted.plan-starts_on")
        assert predicted.count() == targets
        assert pg.locator("td.predicted.plan-starts_on.unfit").count() == targets
        assert int(row.locator("td.n-unfit").inner_text()) == targets
        first = pg.locator("table.unfit tbody tr").first.inner_text()
        assert "Insufficient cpu: needs 500" in first and "Pending" in first
        title = predicted.first.get_attribute("title") or ""
        assert "nodeSelector eks.amazonaws.com/nodegroup=gpu" in title
        # The other nodes say why not: the nodeSelector.
        other = pg.locator("td.predicted.plan-not_targeted").first.get_attribute("title") or ""
        assert "nodeSelector eks.amazonaws.com/nodegroup=gpu not matched" in other
        pg.screenshot(path=str(ARTIFACTS / "preview-predicted.png"), full_page=True)

        # A broken manifest: one error with line and column; the text stays in the box.
        pg.fill("#plan-text", BROKEN)
        pg.click("#plan-submit")
        error = pg.wait_for_selector("#plan-error").inner_text()
        assert error.startswith("document 1 (line 1): invalid YAML at line 4, column 5"), error
        assert pg.input_value("#plan-text") == BROKEN
        assert not pg.locator("#plan-result").count()

        # Not a DaemonSet: said so, in one line.
        pg.fill("#plan-text", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
        pg.click("#plan-submit")
        error = pg.wait_for_selector("#plan-error").inner_text()
        assert "Deployment web is not a DaemonSet" in error

        # A node patch from an uploaded file: taint the gpu pool, see who leaves.
        patch = tmp_path / "taint.txt"
        patch.write_text("taint eks.amazonaws.com/nodegroup=gpu preview=yes:NoExecute\n")
        pg.fill("#plan-text", "")
        pg.set_input_files("#plan-file", str(patch))
        pg.click("#plan-submit")
        pg.wait_for_selector("#plan-result")
        assert pg.locator("table.plancounts tbody tr").count() > 0
        assert pg.locator("td.predicted.plan-stops_on").count() > 0
        patched = pg.locator("table.predicted-grid td.small", has_text="taint eks")
        assert patched.count() > 0
        pg.screenshot(path=str(ARTIFACTS / "preview-taint.png"), full_page=True)
        assert not [m for m in console if "CSP" in m or "Content Security Policy" in m]
        assert not pg.errors
