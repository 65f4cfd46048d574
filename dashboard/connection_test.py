"""The admin's connection checks for a cluster, on top of `dashboard.kube.probe`.

Builds the cluster's client the way its collector will (file path, uploaded kubeconfig,
or service account), runs the GET-only probe, and scrubs every message with the secrets of
the kubeconfig in use before it reaches a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from dashboard.crypto import DecryptionError, decrypt
from dashboard.kube.clients import (
    KubeconfigError,
    client_from_kubeconfig,
    client_from_kubeconfig_content,
    client_in_cluster,
)
from dashboard.kube.probe import Check, ProbeReport, probe, unreachable
from dashboard.models import Cluster, split_names
from dashboard.redact import kubeconfig_secrets, scrub


@dataclass
class Target:
    """Where and how to connect, detached from a saved row (forms check unsaved input)."""

    source: str
    kubeconfig_path: str = ""
    kubeconfig_content: str = field(default="", repr=False)
    context: str = ""
    namespace: str | None = None

    @classmethod
    @sensitive_variables()
    def of(cls, cluster: Cluster) -> Target:
        content = ""
        if cluster.source == Cluster.Source.UPLOADED and cluster.kubeconfig_encrypted:
            content = decrypt(cluster.kubeconfig_encrypted)
        include = split_names(cluster.namespaces_include)
        return cls(
            source=cluster.source,
            kubeconfig_path=cluster.kubeconfig_path,
            kubeconfig_content=content,
            context=cluster.context,
            namespace=include[0] if len(include) == 1 else None,
        )

    def secrets(self) -> set[str]:
        if self.kubeconfig_content:
            return kubeconfig_secrets(self.kubeconfig_content)
        if self.source == Cluster.Source.KUBECONFIG and self.kubeconfig_path:
            try:
                with open(self.kubeconfig_path, encoding="utf-8") as f:
                    return kubeconfig_secrets(f.read())
            except (OSError, UnicodeDecodeError, ValueError):
                return set()
        return set()

    def client(self):
        """An ApiClient, or KubeconfigError saying what is wrong with the configuration."""
        context = self.context or None
        if self.source == Cluster.Source.IN_CLUSTER:
            return client_in_cluster()
        if self.source == Cluster.Source.UPLOADED:
            if not self.kubeconfig_content:
                raise KubeconfigError("no kubeconfig has been uploaded")
            return client_from_kubeconfig_content(self.kubeconfig_content, context)
        if not self.kubeconfig_path:
            raise KubeconfigError("no kubeconfig path given")
        return client_from_kubeconfig(self.kubeconfig_path, context)


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
        target = Target.of(cluster)
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
test_connection.__test__ = False  # type: ignore[attr-defined]


def reachability_error(target: Target, timeout: float | None = None, client=None) -> str:
    """For form validation: "" when the server answers over HTTP(S) at all, else why not
    (unreachable, DNS, TLS / bad certificate). Credentials are not judged here.

    `client`: one already built from `target` (the caller closes it)."""
    timeout = settings.DAEMONVIZ_CHECK_TIMEOUT if timeout is None else timeout
    secrets = target.secrets()
    own = client is None
    try:
        if own:
            client = target.client()
    except KubeconfigError as exc:
        return scrub(str(exc), secrets)
    try:
        problem = unreachable(client, timeout)
    finally:
        if own:
            client.close()
    return scrub(problem.message, secrets) if problem else ""
