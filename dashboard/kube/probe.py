"""Test a connection the way the dashboard will use it, with GET requests only.

Reachable: the address answers as a Kubernetes API server (`identity.py`: `/version` with a
`gitVersion`, `/api` of kind `APIVersions`) — any other HTTP server is named as such, never
"reachable". Authenticated: it did not answer 401, and did not treat us as
`system:anonymous`. Then, for each resource the dashboard needs, one `list` with `limit=1`
and, for the ones it watches, one `watch` with `timeoutSeconds=1` say whether each verb is
allowed — the real requests, so they are exact for this cluster's RBAC, admission and
aggregation. No SelfSubjectAccessReview: that is a POST (a create), and the dashboard writes
nothing.

The whole probe runs against one deadline: every request waits at most what is left of it,
and checks it no longer has time for are reported as not checked.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes.client import ApiClient, CoreV1Api
from urllib3 import BaseHTTPResponse

from .errors import (
    DNS,
    FORBIDDEN,
    NETWORK,
    NOT_KUBERNETES,
    REFUSED,
    TIMEOUT,
    TLS,
    UNAUTHORIZED,
    ConnectionProblem,
    RequestContext,
    classify,
)
from .identity import ServerIdentity, identify
from .resources import (
    API_RESOURCES,
    NODE_EVENT_RESOURCES,
    NODE_EVENTS_FORBIDDEN,
    RESOURCES,
    request,
    server_of,
    watched_resources,
)

# Problems that mean "cannot talk to this server at all", as opposed to an answer we do
# not like (401, 403...).
TRANSPORT_PROBLEMS = frozenset({DNS, REFUSED, TIMEOUT, TLS, NETWORK})
# What the dashboard lists, plus namespaces (the namespace filters offer them)...
PROBED_RESOURCES = (
    "nodes",
    "pods",
    "daemonsets",
    "controllerrevisions",
    "services",
    "endpointslices",
    "events",
    "priorityclasses",
    "namespaces",
)
# ...and what it watches.
WATCHED_RESOURCES = API_RESOURCES
DEFAULT_TIMEOUT = 4.0
# The server ends the probe's watches this soon by itself (the probe only needs the answer
# to the request, and closes the stream as soon as it has it).
WATCH_TIMEOUT_SECONDS = 1


@dataclass(frozen=True)
class Check:
    ok: bool | None  # None: not checked (an earlier step failed, or no time was left)
    detail: str


@dataclass
class ProbeReport:
    server: str
    namespace: str | None
    reachable: Check
    authenticated: Check
    resources: dict[str, Check] = field(default_factory=dict)  # list, by resource
    watches: dict[str, Check] = field(default_factory=dict)  # watch, by resource
    identity: ServerIdentity | None = None
    timed_out: bool = False  # the deadline passed before every check ran
    # What the dashboard can do without (node events in "default" for a single namespace
    # other than it): "list events in default" / "watch …" → check. Never in `ok`.
    optional: dict[str, Check] = field(default_factory=dict)
    optional_refused: bool = False  # an optional check answered 403

    @property
    def ok(self) -> bool:
        return bool(
            self.reachable.ok
            and self.authenticated.ok
            and all(c.ok for c in self.resources.values())
            and all(c.ok for c in self.watches.values())
        )

    @property
    def notes(self) -> list[str]:
        """What the dashboard will leave out, though it works: an optional check refused
        (or not checked), in a sentence."""
        if self.optional_refused:
            return [NODE_EVENTS_FORBIDDEN]
        failing = [c.detail for c in self.optional.values() if c.ok is not True]
        return [f"node events not shown: {failing[0]}"] if failing else []

    @property
    def not_kubernetes(self) -> bool:
        return self.reachable.ok is False and self.reachable.detail.startswith(
            "this is not a Kubernetes API server"
        )

    @property
    def forbidden(self) -> list[str]:
        """Resources with a verb refused (or failing), in probe order."""
        failing = {n for n, c in (*self.resources.items(), *self.watches.items()) if c.ok is False}
        return [n for n in PROBED_RESOURCES if n in failing]

    @property
    def missing(self) -> list[tuple[str, str]]:
        """(verb, resource) of every check that failed: what to grant or fix."""
        return [("list", n) for n, c in self.resources.items() if c.ok is False] + [
            ("watch", n) for n, c in self.watches.items() if c.ok is False
        ]


class _Deadline:
    def __init__(self, timeout: float, deadline: float | None):
        self.timeout = timeout
        self.at = deadline  # time.monotonic(), or None for no overall bound

    def left(self) -> float:
        return self.timeout if self.at is None else min(self.timeout, self.at - time.monotonic())

    def request_timeout(self) -> tuple[float, float]:
        # Never 0: urllib3 treats a zero timeout as "non-blocking", not "expired".
        left = max(0.05, self.left())
        return (left, left)

    @property
    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def _read_and_release(resp: BaseHTTPResponse) -> bytes:
    try:
        return resp.read()
    finally:
        resp.release_conn()


def _list_one(
    api_client: ApiClient, resource: str, namespace: str | None, timeout: tuple[float, float]
) -> str:
    """One list with limit=1; returns the list's resourceVersion ("" if it has none)."""
    params: dict[str, Any] = {"limit": 1, "_request_timeout": timeout}
    if resource == "namespaces":
        resp = cast(  # with _preload_content=False: the raw urllib3 response
            BaseHTTPResponse, CoreV1Api(api_client).list_namespace(_preload_content=False, **params)
        )
    else:
        resp = request(api_client, RESOURCES[resource], namespace, None, **params)
    body = _read_and_release(resp)
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        return str(json.loads(body)["metadata"].get("resourceVersion") or "")
    return ""


def _watch_briefly(
    api_client: ApiClient,
    resource: str,
    namespace: str | None,
    resource_version: str,
    timeout: tuple[float, float],
) -> None:
    """Open a watch (timeoutSeconds=1) and close it as soon as the server accepted it.

    From the list's resourceVersion, so the server has nothing to replay; without one (the
    list failed) it would send every object as ADDED, which the probe never reads."""
    params: dict[str, Any] = {
        "watch": True,
        "timeout_seconds": WATCH_TIMEOUT_SECONDS,
        "allow_watch_bookmarks": True,
        "_request_timeout": timeout,
    }
    if resource_version:
        params["resource_version"] = resource_version
    resp = request(api_client, RESOURCES[resource], namespace, None, **params)
    # Accepted (a 2xx, headers sent after authorization): nothing more to learn from the
    # stream. Closing drops this one connection instead of waiting for the server to end it.
    with contextlib.suppress(Exception):
        resp.close()
    with contextlib.suppress(Exception):
        resp.release_conn()


def _context(verb: str, resource: str, namespace: str | None, server: str) -> RequestContext:
    if resource == "namespaces":
        return RequestContext(verb=verb, resource="namespaces", server=server)
    return RESOURCES[resource].context(verb, namespace, server)


def _anonymous(problem: ConnectionProblem) -> bool:
    return problem.kind == FORBIDDEN and "system:anonymous" in problem.message


def _where(resource: str, namespace: str | None) -> str:
    spec = RESOURCES.get(resource)
    return (
        f'in namespace "{namespace}"' if namespace and spec and spec.namespaced else "cluster-wide"
    )


def probe(
    api_client: ApiClient,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float | None = None,
) -> ProbeReport:
    """What works with this client: see the module docstring. `timeout` bounds each
    request, `deadline` (a `time.monotonic()` value) the whole probe. Never raises for API
    or network errors; they become failed checks with their cause in words."""
    server = server_of(api_client)
    clock = _Deadline(timeout, deadline)
    report = ProbeReport(server, namespace, Check(None, ""), Check(None, ""))
    not_checked = Check(None, "not checked")
    try:
        report.identity = identify(api_client, max(0.05, clock.left()))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
        problem = classify(exc, RequestContext(verb="get", server=server))
        if problem.kind == UNAUTHORIZED:
            # Refused before it could be identified: it answered, whatever it is.
            report.reachable = Check(True, f"{server} answered, but not without valid credentials")
            report.authenticated = Check(False, problem.message)
        elif problem.kind in TRANSPORT_PROBLEMS or problem.kind == NOT_KUBERNETES:
            report.reachable = Check(False, problem.message)
        else:  # 429, 5xx: it answered, but could not say what it is right now
            report.reachable = Check(False, f"{server} answered, but not usefully: {problem}")
        report.resources = dict.fromkeys(PROBED_RESOURCES, not_checked)
        report.watches = dict.fromkeys(WATCHED_RESOURCES, not_checked)
        return report
    report.reachable = Check(True, f"{server} answered: {report.identity.describe()}")

    anonymous = unauthorized = False
    late = Check(None, "not checked: the connection test ran out of time")
    for resource in PROBED_RESOURCES:
        ns = None if resource == "namespaces" else namespace
        rv = ""
        for verb in ("list", "watch"):
            checks = report.resources if verb == "list" else report.watches
            if verb == "watch" and resource not in WATCHED_RESOURCES:
                continue
            if clock.passed:
                report.timed_out = True
                checks[resource] = late
                continue
            try:
                if verb == "list":
                    rv = _list_one(api_client, resource, ns, clock.request_timeout())
                else:
                    _watch_briefly(api_client, resource, ns, rv, clock.request_timeout())
            except Exception as exc:  # noqa: BLE001
                problem = classify(exc, _context(verb, resource, ns, server))
                anonymous |= _anonymous(problem)
                unauthorized |= problem.kind == UNAUTHORIZED
                checks[resource] = Check(False, problem.message)
            else:
                checks[resource] = Check(True, f"{verb} allowed ({_where(resource, ns)})")
    _probe_optional(api_client, report, namespace, clock, server)
    if unauthorized:
        report.authenticated = Check(False, "the API server rejected the credentials (401)")
    elif anonymous:
        report.authenticated = Check(
            False, "the API server treats these requests as system:anonymous: no credentials"
        )
    else:
        report.authenticated = Check(True, "credentials accepted")
    return report


def _probe_optional(
    api_client: ApiClient,
    report: ProbeReport,
    namespace: str | None,
    clock: _Deadline,
    server: str,
) -> None:
    """The node-events watches a single namespace other than "default" adds: each verb
    once (their streams differ only in the field selector, which RBAC does not see)."""
    if not any(name in NODE_EVENT_RESOURCES for name in watched_resources(namespace)):
        return
    resource = NODE_EVENT_RESOURCES[0]
    spec = RESOURCES[resource]
    where = f"events in {spec.namespace}"
    rv = ""
    for verb in ("list", "watch"):
        if clock.passed:
            report.timed_out = True
            report.optional[f"{verb} {where}"] = Check(
                None, "not checked: the connection test ran out of time"
            )
            continue
        try:
            if verb == "list":
                rv = _list_one(api_client, resource, namespace, clock.request_timeout())
            else:
                _watch_briefly(api_client, resource, namespace, rv, clock.request_timeout())
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            problem = classify(exc, spec.context(verb, namespace, server))
            report.optional_refused |= problem.kind == FORBIDDEN
            report.optional[f"{verb} {where}"] = Check(False, problem.message)
        else:
            report.optional[f"{verb} {where}"] = Check(
                True, f'{verb} allowed (in namespace "{spec.namespace}": node events)'
            )


def unreachable(
    api_client: ApiClient, timeout: float = DEFAULT_TIMEOUT
) -> ConnectionProblem | None:
    """None when a Kubernetes API server answers (whatever the status: credentials are not
    judged here), else why not: DNS, refused, timeout, TLS (a bad or untrusted certificate),
    network, or an HTTP server that is not a Kubernetes API server."""
    try:
        identify(api_client, timeout)
    except Exception as exc:  # noqa: BLE001 - classified, never raised
        problem = classify(exc, RequestContext(verb="get", server=server_of(api_client)))
        if problem.kind in TRANSPORT_PROBLEMS or problem.kind == NOT_KUBERNETES:
            return problem
    return None
