"""The crash-loop log panel of the cell detail (opt-in per cluster, docs/why.md).

Only a daemon pod the matrix shows in the cell that was asked for, and only one whose
container has terminated, gets its log read: the URL cannot be turned into a way to read
any pod's log. The read happens here, in the request of a signed-in user who opened the
cell; the collector never reads logs. What comes back is scrubbed of the cluster's
credentials (the kubeconfig's token, password and client key, and whatever the client
itself sends) before the template escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables
from kubernetes.client import ApiClient

from dashboard.clusters.config import ClusterConfig
from dashboard.clusters.crypto import DecryptionError
from dashboard.clusters.redact import scrub
from dashboard.clusters.target import Target
from dashboard.coverage.records import Pod
from dashboard.kube.clients import KubeconfigError
from dashboard.kube.logs import (
    DEFAULT_LIMIT_BYTES,
    DEFAULT_TAIL_LINES,
    DEFAULT_TIMEOUT,
    LogError,
    read_log,
)
from dashboard.models import Cluster

SIMULATED = "simulated"  # Cluster.Source.SIMULATED


@dataclass(frozen=True)
class LogRequest:
    """Which log a pod's panel would show: its crashed container's, previous instance when
    it restarted (what `kubectl logs --previous` reads)."""

    namespace: str
    pod: str
    container: str
    previous: bool


def log_request(pod: Pod) -> LogRequest | None:
    """The log worth showing for `pod`, or None when no container has terminated (a pod
    that is pending, creating or simply not ready has no crash to read about)."""
    t = pod.last_termination
    if t is None:
        return None
    previous = pod.restarts > 0 or pod.crash_looping
    return LogRequest(pod.namespace, pod.name, t.container, previous)


@dataclass(frozen=True)
class LogPanel:
    text: str = ""
    truncated: bool = False
    previous: bool = True
    problem: str = ""  # why there is no text (RBAC, no previous instance, unreachable…)
    forbidden: bool = False


def client_secrets(client: ApiClient) -> set[str]:
    """What the client itself sends or holds: the bearer token (an in-cluster service
    account's too, which no kubeconfig names), a basic-auth password, the client key."""
    conf = client.configuration
    found: set[str] = set()
    for value in (conf.api_key or {}).values():
        if value:
            found.add(str(value).removeprefix("Bearer ").strip())
    if conf.password:
        found.add(str(conf.password))
    if conf.key_file:
        try:
            with open(conf.key_file, encoding="utf-8") as f:
                found.update(line for line in f.read(64 * 1024).splitlines() if len(line) >= 16)
        except (OSError, UnicodeDecodeError):
            pass
    return {s for s in found if len(s) >= 6}


@sensitive_variables()
def read_panel(cluster: Cluster, want: LogRequest) -> LogPanel:
    """Read the log `want` names from `cluster` (whose logs an admin allowed)."""
    if cluster.source == SIMULATED:
        return LogPanel(problem="a simulated cluster runs no containers: it has no logs to read")
    try:
        target = Target.of(ClusterConfig.from_model(cluster))
        client = target.client()
    except (KubeconfigError, DecryptionError) as exc:
        return LogPanel(problem=f"cannot connect: {exc}")
    secrets = target.secrets() | client_secrets(client)
    try:
        tail = read_log(
            client,
            want.namespace,
            want.pod,
            want.container,
            previous=want.previous,
            tail_lines=DEFAULT_TAIL_LINES,
            limit_bytes=DEFAULT_LIMIT_BYTES,
            timeout=DEFAULT_TIMEOUT,
        )
    except LogError as exc:
        return LogPanel(
            problem=scrub(exc.problem.message, secrets),
            forbidden=exc.problem.kind == "forbidden",
        )
    finally:
        client.close()
    return LogPanel(scrub(tail.text, secrets), tail.truncated, tail.previous)


__all__ = [
    "DEFAULT_LIMIT_BYTES",
    "DEFAULT_TAIL_LINES",
    "DEFAULT_TIMEOUT",
    "log_request",
    "read_panel",
]
