"""Test a connection the way the dashboard will use it, with GET requests only.

Reachable: the server answered `GET /version` at all (any HTTP status). Authenticated:
it did not answer 401, and did not treat us as `system:anonymous`. Then, for each resource
the dashboard needs, one `list` with `limit=1` says whether listing is allowed — the real
request, so it is exact for this cluster's RBAC, admission and aggregation. No
SelfSubjectAccessReview: that is a POST (a create), and the dashboard writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes.client import ApiClient, CoreV1Api, VersionApi
from urllib3 import BaseHTTPResponse

from .errors import (
    DNS,
    FORBIDDEN,
    NETWORK,
    REFUSED,
    TIMEOUT,
    TLS,
    UNAUTHORIZED,
    ConnectionProblem,
    RequestContext,
    classify,
)
from .resources import RESOURCES, request, server_of

# Problems that mean "cannot talk to this server at all", as opposed to an answer we do
# not like (401, 403...).
TRANSPORT_PROBLEMS = frozenset({DNS, REFUSED, TIMEOUT, TLS, NETWORK})
# What the dashboard lists and watches, plus namespaces (the namespace filters offer them).
PROBED_RESOURCES = ("nodes", "pods", "daemonsets", "controllerrevisions", "namespaces")
DEFAULT_TIMEOUT = 4.0


@dataclass(frozen=True)
class Check:
    ok: bool | None  # None: not checked (an earlier step failed)
    detail: str


@dataclass
class ProbeReport:
    server: str
    namespace: str | None
    reachable: Check
    authenticated: Check
    resources: dict[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(
            self.reachable.ok
            and self.authenticated.ok
            and all(c.ok for c in self.resources.values())
        )

    @property
    def forbidden(self) -> list[str]:
        return [name for name, c in self.resources.items() if c.ok is False]


def _timeout(seconds: float) -> tuple[float, float]:
    return (seconds, seconds)


def get_version(api_client: ApiClient, timeout: float = DEFAULT_TIMEOUT) -> None:
    """GET /version; raises what the client raises (ApiException, urllib3 errors)."""
    # With _preload_content=False the client returns the raw urllib3 response, not the
    # model its annotation names.
    resp = cast(
        BaseHTTPResponse,
        VersionApi(api_client).get_code(_preload_content=False, _request_timeout=_timeout(timeout)),
    )
    try:
        resp.read()
    finally:
        resp.release_conn()


def _list_one(api_client: ApiClient, resource: str, namespace: str | None, timeout: float) -> None:
    params: dict[str, Any] = {"limit": 1, "_request_timeout": _timeout(timeout)}
    if resource == "namespaces":
        resp = cast(  # the raw response, as in get_version
            BaseHTTPResponse, CoreV1Api(api_client).list_namespace(_preload_content=False, **params)
        )
    else:
        resp = request(api_client, RESOURCES[resource], namespace, None, **params)
    try:
        resp.read()
    finally:
        resp.release_conn()


def _context(resource: str, namespace: str | None, server: str) -> RequestContext:
    if resource == "namespaces":
        return RequestContext(verb="list", resource="namespaces", server=server)
    return RESOURCES[resource].context("list", namespace, server)


def _anonymous(problem: ConnectionProblem) -> bool:
    return problem.kind == FORBIDDEN and "system:anonymous" in problem.message


def probe(
    api_client: ApiClient, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> ProbeReport:
    """What works with this client: see the module docstring. Never raises for API or
    network errors; they become failed checks with their cause in words."""
    server = server_of(api_client)
    report = ProbeReport(server, namespace, Check(None, ""), Check(None, ""))
    try:
        get_version(api_client, timeout)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
        problem = classify(exc, RequestContext(verb="get", server=server))
        if problem.kind == UNAUTHORIZED:
            report.reachable = Check(True, f"{server} answered")
            report.authenticated = Check(False, problem.message)
        elif status := getattr(exc, "status", 0):
            # Any other HTTP answer (403 for /version, 404...) still proves reachability.
            report.reachable = Check(True, f"{server} answered (HTTP {status})")
        else:
            report.reachable = Check(False, problem.message)
        if report.reachable.ok is False or report.authenticated.ok is False:
            report.resources = {r: Check(None, "not checked") for r in PROBED_RESOURCES}
            return report
    else:
        report.reachable = Check(True, f"{server} answered")

    anonymous = unauthorized = False
    for resource in PROBED_RESOURCES:
        ns = None if resource == "namespaces" else namespace
        try:
            _list_one(api_client, resource, ns, timeout)
        except Exception as exc:  # noqa: BLE001
            problem = classify(exc, _context(resource, ns, server))
            anonymous |= _anonymous(problem)
            unauthorized |= problem.kind == UNAUTHORIZED
            report.resources[resource] = Check(False, problem.message)
        else:
            spec = RESOURCES.get(resource)
            where = f'in namespace "{ns}"' if ns and spec and spec.namespaced else "cluster-wide"
            report.resources[resource] = Check(True, f"list allowed ({where})")
    if unauthorized:
        report.authenticated = Check(False, "the API server rejected the credentials (401)")
    elif anonymous:
        report.authenticated = Check(
            False, "the API server treats these requests as system:anonymous: no credentials"
        )
    else:
        report.authenticated = Check(True, "credentials accepted")
    return report


def unreachable(
    api_client: ApiClient, timeout: float = DEFAULT_TIMEOUT
) -> ConnectionProblem | None:
    """None when the server answers over HTTP(S) at all (any status), else why not: DNS,
    refused, timeout, TLS (a bad or untrusted certificate), network."""
    try:
        get_version(api_client, timeout)
    except Exception as exc:  # noqa: BLE001 - classified, never raised
        problem = classify(exc, RequestContext(verb="get", server=server_of(api_client)))
        if problem.kind in TRANSPORT_PROBLEMS:
            return problem
    return None
