"""The admin's connection checks for a cluster, on top of `dashboard.kube.probe`.

Builds the cluster's client exactly as its collector does (dashboard/clusters/target.py:
file path, uploaded kubeconfig, or service account), runs the GET-only probe, and scrubs
every message with the secrets of the kubeconfig in use before it reaches a page.

Test connection makes requests from the server's own network to whatever address a
kubeconfig names, so it is for admins only (the admin site checks `is_staff`), bounded by an
overall deadline (`DAEMONVIZ_CHECK_DEADLINE`) and rate limited per admin
(`DAEMONVIZ_CHECK_RATE` clusters a minute, `CheckRateLimit`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from kubernetes.client import ApiClient

from dashboard.clusters.config import ClusterConfig
from dashboard.clusters.crypto import DecryptionError
from dashboard.clusters.redact import scrub
from dashboard.clusters.target import Target
from dashboard.kube.clients import KubeconfigError
from dashboard.kube.errors import NOT_KUBERNETES
from dashboard.kube.probe import Check, ProbeReport, probe, unreachable
from dashboard.models import Cluster

RATE_WINDOW_SECONDS = 60.0


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
        for name, c in self.probe.resources.items():
            rows.append((f"list {name}", c.ok, c.detail))
            if (w := self.probe.watches.get(name)) is not None:
                rows.append((f"watch {name}", w.ok, w.detail))
        # Optional checks that passed are rows like the others; refused ones are notes
        # (below), never a red "no": the dashboard works without them.
        rows += [(what, True, c.detail) for what, c in self.probe.optional.items() if c.ok]
        return rows

    @property
    def notes(self) -> list[str]:
        """What works but will be left out (an optional permission missing)."""
        return self.probe.notes if self.probe is not None and not self.config_error else []


def _scrubbed(report: ProbeReport, secrets: set[str]) -> ProbeReport:
    def clean(c: Check) -> Check:
        return Check(c.ok, scrub(c.detail, secrets))

    report.reachable = clean(report.reachable)
    report.authenticated = clean(report.authenticated)
    report.resources = {k: clean(v) for k, v in report.resources.items()}
    report.watches = {k: clean(v) for k, v in report.watches.items()}
    report.optional = {k: clean(v) for k, v in report.optional.items()}
    return report


def test_connection(
    cluster: Cluster, timeout: float | None = None, deadline: float | None = None
) -> Report:
    """Reachable as a Kubernetes API server, authenticated, and list and watch allowed per
    resource, for a saved cluster. `deadline` (`time.monotonic()`): when to stop, by
    default `DAEMONVIZ_CHECK_DEADLINE` from now."""
    report = Report(cluster.name)
    if cluster.source == Cluster.Source.SIMULATED:
        report.simulated = True
        return report
    timeout = settings.DAEMONVIZ_CHECK_TIMEOUT if timeout is None else timeout
    if deadline is None:
        deadline = time.monotonic() + settings.DAEMONVIZ_CHECK_DEADLINE
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
        report.probe = _scrubbed(probe(client, target.namespace, timeout, deadline), secrets)
    finally:
        client.close()
    return report


# The test runner would collect a module-level function named test_*; it is not a test.
# (mypy knows no attributes on functions beyond the standard ones: hence the ignore.)
test_connection.__test__ = False  # type: ignore[attr-defined]


def test_connections(clusters: list[Cluster]) -> list[Report]:
    """Several clusters under one overall deadline (the admin's action): the ones it has no
    time left for say so instead of holding the request."""
    deadline = time.monotonic() + settings.DAEMONVIZ_CHECK_DEADLINE
    reports = []
    for cluster in clusters:
        if time.monotonic() >= deadline and cluster.source != Cluster.Source.SIMULATED:
            seconds = f"{settings.DAEMONVIZ_CHECK_DEADLINE:g}"
            reports.append(
                Report(cluster.name, config_error=f"not tested: the {seconds} s deadline passed")
            )
            continue
        reports.append(test_connection(cluster, deadline=deadline))
    return reports


test_connections.__test__ = False  # type: ignore[attr-defined]


class CheckRateLimited(Exception):
    def __init__(self, limit: int, retry_after: float, selected: int = 0):
        self.limit = limit
        self.retry_after = retry_after
        rate = f"at most {limit} cluster(s) a minute per admin"
        if selected:
            message = f"Too many clusters selected ({selected}): {rate}; test fewer at a time."
        else:
            message = f"Too many connection tests: {rate}. Try again in {math.ceil(retry_after)} s."
        super().__init__(message)


class CheckRateLimit:
    """A sliding window of the clusters each admin tested in the last minute.

    In process memory: a web process is what makes the requests, and a limit per process
    needs no shared store (with N web workers an admin gets at most N times the rate)."""

    def __init__(
        self, window: float = RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._tested: dict[str, deque[float]] = {}

    def take(self, who: str, count: int = 1, limit: int | None = None) -> None:
        """Count `count` tests for `who`, or raise `CheckRateLimited` (counting nothing)."""
        limit = settings.DAEMONVIZ_CHECK_RATE if limit is None else limit
        if limit <= 0:
            return
        if count > limit:
            raise CheckRateLimited(limit, self.window, selected=count)
        now = self._clock()
        with self._lock:
            times = self._tested.setdefault(who, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) + count > limit:
                # The request fits once the `excess` oldest tests have left the window.
                excess = len(times) + count - limit
                raise CheckRateLimited(limit, max(1.0, times[excess - 1] + self.window - now))
            times.extend([now] * count)

    def reset(self) -> None:
        with self._lock:
            self._tested.clear()


rate_limit = CheckRateLimit()


def reachability_error(
    target: Target, timeout: float | None = None, client: ApiClient | None = None
) -> str:
    """For form validation: "" when a Kubernetes API server answers at all, else why not, in
    a sentence: cannot reach it (DNS, refused, TLS / bad certificate…), or the server there
    is not a Kubernetes API server.
    Credentials are not judged here.

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
    if problem is None:
        return ""
    if problem.kind == NOT_KUBERNETES:
        return scrub(problem.message, secrets)
    return scrub(f"cannot reach the API server: {problem.message}", secrets)
