"""Turn any failure talking to an API server into a `ConnectionProblem`: a kind the code can
branch on and one line a human can act on.

Messages are built from the failure's *type* and the API server's Status object, never from
`str(ApiException)` (which dumps headers and bodies) and never from request data, so no token,
key or password can end up in a message.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import urllib3.exceptions as u3
from kubernetes.client.exceptions import ApiException

from .clients import KubeconfigError

# kinds, in words for the code that branches on them
DNS = "dns"
REFUSED = "refused"
TIMEOUT = "timeout"
TLS = "tls"
NETWORK = "network"  # reset, closed mid-response, unreachable network...
UNAUTHORIZED = "unauthorized"  # 401
FORBIDDEN = "forbidden"  # 403
NOT_FOUND = "not_found"  # 404
GONE = "gone"  # 410: resourceVersion or continue token expired
# 504 "Too large resource version": the server has not reached the resourceVersion asked
# for. Held for long, it means the server's store went back in time (an etcd restore).
TOO_LARGE = "too_large"
THROTTLED = "throttled"  # 429
SERVER_ERROR = "server_error"  # 5xx
HTTP_ERROR = "http_error"  # any other status
CONFIG = "config"  # kubeconfig or exec plugin problem surfacing while connecting
PROTOCOL = "protocol"  # the server answered something that is not Kubernetes JSON
NOT_KUBERNETES = "not_kubernetes"  # an HTTP server answered, but not a Kubernetes API server
BAD_OBJECT = "bad_object"  # one object we cannot read (e.g. nested too deeply): not the network

# Failures that no amount of waiting fixes by itself: somebody must change the
# configuration, the credentials or the RBAC rules. Still retried (with backoff): they do
# get fixed, and the dashboard should recover without a restart.
NEEDS_ACTION = frozenset({DNS, TLS, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFIG, NOT_KUBERNETES})

READ_VERBS = "get/list/watch"


@dataclass(frozen=True)
class ConnectionProblem:
    kind: str
    message: str
    retry_after: float | None = None  # seconds, from a 429's Retry-After header

    @property
    def needs_action(self) -> bool:
        return self.kind in NEEDS_ACTION

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RequestContext:
    """What was being asked when the failure happened: makes 403/404 messages exact."""

    verb: str = ""  # list | watch | get
    resource: str = ""  # plural, e.g. "controllerrevisions"
    group: str = ""  # "" for the core group, "apps"
    version: str = "v1"
    namespace: str | None = None
    server: str = ""  # https://host:port

    @property
    def qualified_resource(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def scope(self) -> str:
        return f'in namespace "{self.namespace}"' if self.namespace else "at the cluster scope"

    @property
    def api_path(self) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{prefix}{ns}/{self.resource}"


NO_CONTEXT = RequestContext()


class ProblemError(Exception):
    """An exception that already knows its problem (raised by this package's own code)."""

    def __init__(self, problem: ConnectionProblem):
        super().__init__(problem.message)
        self.problem = problem


def classify(exc: BaseException, context: RequestContext = NO_CONTEXT) -> ConnectionProblem:
    """The cause of `exc`, in words."""
    if isinstance(exc, ProblemError):
        return exc.problem
    if isinstance(exc, KubeconfigError):
        return ConnectionProblem(CONFIG, str(exc))
    if isinstance(exc, ApiException):
        return _from_api_exception(exc, context)
    if isinstance(exc, u3.HTTPError | OSError):
        return _from_transport_error(exc, context)
    if isinstance(exc, RecursionError):
        # The decoder's depth limit on one deeply nested object: the connection is fine.
        return ConnectionProblem(
            BAD_OBJECT, "an object from the API server is nested too deeply to decode"
        )
    if isinstance(exc, ValueError):  # records.DecodeError and JSON errors
        return ConnectionProblem(PROTOCOL, f"unexpected response from the API server: {exc}")
    return ConnectionProblem(NETWORK, f"{type(exc).__name__}: {_first_line(str(exc))}")


def from_status(
    status: dict[str, Any], context: RequestContext = NO_CONTEXT, retry_after: float | None = None
) -> ConnectionProblem:
    """A problem from a Kubernetes Status object (an HTTP error body or a watch ERROR event)."""
    code = int(status.get("code") or 0)
    message = str(status.get("message") or status.get("reason") or "")
    details = status.get("details") or {}
    if not isinstance(details, dict):
        details = {}
    if details.get("retryAfterSeconds") and retry_after is None:
        retry_after = float(details["retryAfterSeconds"])
    if is_too_large_resource_version(code, message, details):
        return ConnectionProblem(
            TOO_LARGE,
            f"resourceVersion ahead of the API server ({code}): {_first_line(message)} — "
            "its store went back in time (etcd restored?); listing afresh",
        )
    return _from_code(code, message, context, retry_after)


TOO_LARGE_CAUSE = "ResourceVersionTooLarge"
TOO_LARGE_MESSAGE = "Too large resource version"


def is_too_large_resource_version(code: int, message: str, details: dict[str, Any]) -> bool:
    """client-go's isTooLargeResourceVersionError: the cause the server sets since 1.18.6,
    else (older servers) a 504 whose cause or message says it in words."""
    causes = details.get("causes") or []
    causes = [c for c in causes if isinstance(c, dict)] if isinstance(causes, list) else []
    if any(c.get("reason") == TOO_LARGE_CAUSE for c in causes):
        return True
    if code != 504:
        return False
    return any(c.get("message") == TOO_LARGE_MESSAGE for c in causes) or (
        TOO_LARGE_MESSAGE in message
    )


# --------------------------------------------------------------------------- HTTP answers


def _from_api_exception(exc: ApiException, context: RequestContext) -> ConnectionProblem:
    code = int(exc.status or 0)
    if code == 0:
        # The REST layer turns urllib3's SSLError into ApiException(status=0, reason=...).
        reason = str(exc.reason or "")
        if "SSL" in reason or "CERTIFICATE" in reason.upper():
            return _tls_problem(reason, context)
        return ConnectionProblem(NETWORK, _first_line(reason) or "request failed")
    status = _status_body(exc.body)
    retry_after = _retry_after(exc.headers)
    if status is not None:
        return from_status({**status, "code": code}, context, retry_after)
    return _from_code(code, str(exc.reason or ""), context, retry_after)


def status_body(body: Any) -> dict[str, Any] | None:
    """The Status object of an error body, or None."""
    return _status_body(body)


def _status_body(body: Any) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == "Status" else None


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from an API server; the backoff covers it


def _from_code(
    code: int, message: str, context: RequestContext, retry_after: float | None
) -> ConnectionProblem:
    msg = _first_line(message)
    if code == 401:
        return ConnectionProblem(
            UNAUTHORIZED,
            "unauthorized (401): the API server rejected the credentials — the token or "
            "client certificate is invalid or expired; refresh the kubeconfig",
        )
    if code == 403:
        return ConnectionProblem(FORBIDDEN, _forbidden_message(msg, context))
    if code == 404:
        what = f"{context.qualified_resource} ({context.api_path})" if context.resource else ""
        return ConnectionProblem(
            NOT_FOUND,
            f"API path not found (404): the server does not serve {what or 'this resource'}"
            " — resource not served by this cluster or API version",
        )
    if code == 410:
        return ConnectionProblem(GONE, f"expired (410): {msg or 'resourceVersion too old'}")
    if code == 429:
        wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
        return ConnectionProblem(
            THROTTLED, f"throttled (429): the API server is rate limiting{wait}", retry_after
        )
    if 500 <= code <= 599:
        return ConnectionProblem(
            SERVER_ERROR, f"API server error ({code}){': ' + msg if msg else ''}", retry_after
        )
    return ConnectionProblem(HTTP_ERROR, f"HTTP {code}{': ' + msg if msg else ''}", retry_after)


# e.g. 'nodes is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "nodes"
#       in API group "" at the cluster scope'
_FORBIDDEN = re.compile(
    r'(?:User "(?P<user>[^"]*)" )?cannot (?P<verb>\w+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)?'
)


def _forbidden_message(message: str, context: RequestContext) -> str:
    m = _FORBIDDEN.search(message)
    verb = (m and m["verb"]) or context.verb or "access"
    resource = (m and m["resource"]) or context.resource
    group = m["group"] if m and m["group"] is not None else context.group
    namespace = m["namespace"] if m and m["namespace"] else context.namespace
    where = RequestContext(resource=resource, group=group, namespace=namespace)
    subject = f' (user "{m["user"]}")' if m and m["user"] else ""
    if not resource:
        return f"forbidden (403): {message or 'permission denied'}"
    return (
        f"forbidden: cannot {verb} {where.qualified_resource} {where.scope}"
        f" — grant {READ_VERBS} on it{subject}"
    )


# --------------------------------------------------------------------------- transport


def _from_transport_error(exc: BaseException, context: RequestContext) -> ConnectionProblem:
    cause = _root_cause(exc)
    server = context.server or _server_of(exc)
    at = f" {server}" if server else ""
    if isinstance(cause, u3.NameResolutionError | socket.gaierror):
        host = getattr(cause, "_host", "") or _host_only(server)
        return ConnectionProblem(
            DNS, f"DNS: the API server name {host or server!r} does not resolve"
        )
    if isinstance(cause, u3.SSLError | ssl.SSLError):
        return _tls_problem(str(cause), context)
    if isinstance(cause, u3.ConnectTimeoutError):
        return ConnectionProblem(TIMEOUT, f"timeout: no answer connecting to{at}")
    if isinstance(cause, u3.ReadTimeoutError | TimeoutError | socket.timeout):
        return ConnectionProblem(TIMEOUT, f"timeout: the API server{at} stopped answering")
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
        return ConnectionProblem(
            REFUSED, f"connection refused by{at or ' the API server'} (is it running?)"
        )
    if isinstance(cause, u3.ProtocolError | ConnectionError | u3.HTTPError | OSError):
        return ConnectionProblem(
            NETWORK, f"network: connection to{at or ' the API server'} lost ({_short(cause)})"
        )
    return ConnectionProblem(NETWORK, f"network: {_short(cause)}")


def _root_cause(exc: BaseException) -> BaseException:
    """urllib3 wraps the real cause: MaxRetryError.reason, ProtocolError(args[1]), __cause__."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        elif isinstance(exc, u3.NameResolutionError | u3.SSLError):
            return exc
        elif isinstance(exc, u3.ProtocolError) and len(exc.args) > 1:
            inner = exc.args[1]
            if not isinstance(inner, BaseException):
                return exc
            exc = inner
        elif isinstance(exc, u3.NewConnectionError) and exc.__context__ is not None:
            exc = exc.__context__
        else:
            return exc
    return exc


def _tls_problem(detail: str, context: RequestContext) -> ConnectionProblem:
    at = f" with {context.server}" if context.server else ""
    upper = detail.upper()
    if "CERTIFICATE_VERIFY_FAILED" in upper or "VERIFY FAILED" in upper:
        why = _between(detail, "certificate verify failed:", ")") or "untrusted certificate"
        return ConnectionProblem(
            TLS,
            f"TLS: certificate verify failed{at} ({why.strip()}) — check the cluster's "
            "certificate-authority in the kubeconfig",
        )
    if "HOSTNAME" in upper or "IP ADDRESS MISMATCH" in upper:
        return ConnectionProblem(TLS, f"TLS: the server certificate does not match its address{at}")
    return ConnectionProblem(TLS, f"TLS handshake failed{at}: {_first_line(detail)}")


def _server_of(exc: BaseException) -> str:
    pool = getattr(exc, "pool", None)
    if pool is not None and getattr(pool, "host", None):
        return f"{pool.scheme}://{pool.host}:{pool.port}"
    return ""


def _host_only(server: str) -> str:
    return server.split("://", 1)[-1].rsplit(":", 1)[0] if server else ""


def _between(text: str, start: str, end: str) -> str:
    i = text.find(start)
    if i < 0:
        return ""
    rest = text[i + len(start) :]
    j = rest.find(end)
    return rest[:j] if j >= 0 else rest


def _short(exc: BaseException) -> str:
    text = _first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
