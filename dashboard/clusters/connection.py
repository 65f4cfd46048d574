"""The admin's connection checks for a cluster, on top of `dashboard.kube.probe`.

Builds the cluster's client exactly as its collector does (dashboard/clusters/target.py:
file path, uploaded kubeconfig, or service account), runs the GET-only probe, and scrubs every message with the secrets of
the kubeconfig in use before it reaches a page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from kubernetes.client import ApiClient

from dashboard.clusters.config import ClusterConfig
from dashboard.clusters.crypto import DecryptionError
from dashboard.clusters.redact import scrub
from dashboard.clusters.target import Target
from dashboard.kube.clients import KubeconfigError
from dashboard.kube.probe import Check, ProbeReport, probe, unreachable
from dashboard.models import Cluster


@dataclass
class Report:
    cluster: str
    simulated: bool = False
    config_error: str = ""
    probe: ProbeReport | None = None

    @property
    def ok(self) -> bool:
        return self.simulated or (
            not self.config_error and self.probe is not None and self.probe.ok
        )

    def lines(self) -> list[tuple[str, bool | None, str]]:
        """(what, ok, detail) rows for the admin page."""
        if self.simulated:
            return [("simulated", True, "runs inside daemonviz: nothing to connect to")]
        if self.config_error:
            return [("configuration", False, self.config_error)]
        assert self.probe is not None
        rows = [
            ("reachable", self.probe.reachable.ok, self.probe.reachable.detail),
            ("authenticated", self.probe.authenticated.ok, self.probe.authenticated.detail),
        ]
        rows += [(f"list {name}", c.ok, c.detail) for name, c in self.probe.resources.items()]
        return rows


def _scrubbed(report: ProbeReport, secrets: set[str]) -> ProbeReport:
    def clean(c: Check) -> Check:
        return Check(c.ok, scrub(c.detail, secrets))

    report.reachable = clean(report.reachable)
    report.authenticated = clean(report.authenticated)
    report.resources = {k: clean(v) for k, v in report.resources.items()}
    return report


def test_connection(cluster: Cluster, timeout: float | None = None) -> Report:
    """Reachable, authenticated, and list allowed per resource, for a saved cluster."""
    report = Report(cluster.name)
    if cluster.source == Cluster.Source.SIMULATED:
        report.simulated = True
        return report
    timeout = settings.DAEMONVIZ_CHECK_TIMEOUT if timeout is None else timeout
    try:
        target = Target.of(ClusterConfig.from_model(cluster))
    except DecryptionError as exc:
        report.config_error = str(exc)
        return report
    secrets = target.secrets()
    try:
        client = target.client()
    except KubeconfigError as exc:
        report.config_error = scrub(str(exc), secrets)
        return report
    try:
        report.probe = _scrubbed(probe(client, target.namespace, timeout), secrets)
    finally:
        client.close()
    return report


# The test runner would collect a module-level function named test_*; it is not a test.
# (mypy knows no attributes on functions beyond the standard ones: hence the ignore.)
test_connection.__test__ = False  # type: ignore[attr-defined]


def reachability_error(
    target: Target, timeout: float | None = None, client: ApiClient | None = None
) -> str:
    """For form validation: "" when the server answers over HTTP(S) at all, else why not
    (unreachable, DNS, TLS / bad certificate). Credentials are not judged here.

    `client`: one already built from `target` (the caller closes it)."""
    timeout = settings.DAEMONVIZ_CHECK_TIMEOUT if timeout is None else timeout
    secrets = target.secrets()
    own = client is None
    try:
        if client is None:  # own
            client = target.client()
    except KubeconfigError as exc:
        return scrub(str(exc), secrets)
    try:
        problem = unreachable(client, timeout)
    finally:
        if own:
            client.close()
    return scrub(problem.message, secrets) if problem else ""
