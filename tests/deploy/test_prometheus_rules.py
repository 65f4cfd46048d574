"""The alert rules with the real promtool: `promtool check rules` (syntax, PromQL) and
`promtool test rules` (deploy/prometheus/tests.yaml: every alert fires on series shaped
like daemonviz's /metrics, with the node and state in its labels, and stays quiet where
it should). The metric names the rules use are checked against a real /metrics scrape in
tests/integration/test_metrics.py."""

from __future__ import annotations

import re

import yaml

from tests.deploy.tools import CHART, DEPLOY, promtool, run

RULES = DEPLOY / "prometheus" / "rules.yaml"
TESTS = DEPLOY / "prometheus" / "tests.yaml"


def test_rules_pass_promtool_check():
    proc = run(promtool(), "check", "rules", str(RULES))
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_rules_pass_their_unit_tests():
    proc = run(promtool(), "test", "rules", str(TESTS))
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_unit_tests_catch_a_broken_rule(tmp_path):
    """The unit tests really test the rules: a threshold nudged past the test series fails."""
    broken = RULES.read_text().replace('state="missing"} > 300', 'state="missing"} > 3000')
    assert broken != RULES.read_text()
    (tmp_path / "rules.yaml").write_text(broken)
    (tmp_path / "tests.yaml").write_text(TESTS.read_text())
    proc = run(promtool(), "test", "rules", str(tmp_path / "tests.yaml"), check=False)
    assert proc.returncode != 0 and "DaemonvizDaemonMissing" in proc.stdout + proc.stderr


def test_every_alert_is_unit_tested_and_documented():
    alerts = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    tested = {
        t["alertname"]
        for case in yaml.safe_load(TESTS.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert set(alerts) == tested
    readme = (DEPLOY.parent / "README.md").read_text()
    for alert in alerts:
        assert f"`{alert}`" in readme, alert
    for g in yaml.safe_load(RULES.read_text())["groups"]:
        for r in g["rules"]:
            assert r["annotations"]["runbook_url"].endswith("README.md#alerts")
            assert {"summary", "description"} <= set(r["annotations"])


def test_plain_rules_are_the_charts():
    assert RULES.read_text() == (CHART / "files" / "rules.yaml").read_text()


def rule_metric_names() -> set[str]:
    """Every daemonviz_* metric name the rule expressions read."""
    names = set()
    for g in yaml.safe_load(RULES.read_text())["groups"]:
        for r in g["rules"]:
            names |= set(re.findall(r"\bdaemonviz_[a-z_]+\b", r["expr"]))
    return names
