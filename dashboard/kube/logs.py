"""The last lines of a container's log: `GET /api/v1/namespaces/NS/pods/NAME/log`.

Read only when a signed-in user opens a crash-looping cell (never by the collector), and
bounded three ways so one click can never hold a worker or fill memory: the server is
asked for `tailLines` lines and `limitBytes` bytes, the body is read in small pieces up to
that many bytes whatever the server sends, and a timer cuts the response at a deadline
(the client's read timeout only bounds each pause, not a server that trickles).

The RBAC grant is separate and optional (`get` on `pods/log`, deploy/): a refusal becomes
one sentence naming the rule to add. The text is returned as it came (decoded as UTF-8,
invalid bytes replaced); the caller scrubs credentials and the page escapes it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from urllib3 import BaseHTTPResponse

from .errors import FORBIDDEN, NOT_FOUND, ConnectionProblem, RequestContext, classify, status_body

DEFAULT_TAIL_LINES = 50
DEFAULT_LIMIT_BYTES = 16 * 1024
DEFAULT_TIMEOUT = 5.0  # seconds for the whole read, connection included
_PIECE = 4096
LOG_RULE = 'get on "pods/log" (core API group)'


@dataclass(frozen=True)
class LogTail:
    text: str
    truncated: bool  # cut at limit_bytes (or at the deadline): older lines may be missing
    previous: bool  # the previous (crashed) instance of the container, not the running one


class LogError(Exception):
    """The log could not be read; `problem` says why, in one line a person can act on."""

    def __init__(self, problem: ConnectionProblem):
        super().__init__(problem.message)
        self.problem = problem


def read_log(
    api_client: ApiClient,
    namespace: str,
    pod: str,
    container: str,
    *,
    previous: bool = True,
    tail_lines: int = DEFAULT_TAIL_LINES,
    limit_bytes: int = DEFAULT_LIMIT_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> LogTail:
    """The last `tail_lines` lines (at most `limit_bytes`) of `container`'s log; of its
    previous instance when `previous` (what `kubectl logs --previous` shows). Raises
    LogError."""
    context = RequestContext(verb="get", resource="pods/log", namespace=namespace)
    deadline = time.monotonic() + timeout
    try:
        # Typed as str by the generated client; with _preload_content=False it is the
        # urllib3 response, unread.
        resp: BaseHTTPResponse = CoreV1Api(api_client).read_namespaced_pod_log(  # type: ignore[assignment]
            pod,
            namespace,
            container=container or None,
            previous=previous,
            tail_lines=tail_lines,
            limit_bytes=limit_bytes,
            _preload_content=False,
            _request_timeout=(min(timeout, 3.0), timeout),
        )
    except ApiException as exc:
        raise LogError(_problem(exc, context, namespace, pod, container)) from None
    except Exception as exc:  # transport: refused, TLS, timeout — in words, never the request
        raise LogError(classify(exc, context)) from None
    body = bytearray()
    cut = threading.Event()

    def _cut() -> None:
        cut.set()
        resp.shutdown()  # wakes a read blocked on a server that trickles bytes

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), _cut)
    timer.daemon = True
    timer.start()
    try:
        while len(body) < limit_bytes and not cut.is_set():
            piece = resp.read1(min(_PIECE, limit_bytes - len(body)))
            if not piece:
                break
            body += piece
        truncated = len(body) >= limit_bytes or cut.is_set()
    except Exception as exc:
        if not cut.is_set():
            raise LogError(classify(exc, context)) from None
        truncated = True  # the deadline: keep what arrived
    finally:
        timer.cancel()
        resp.release_conn()
    return LogTail(bytes(body).decode("utf-8", "replace"), truncated, previous)


def _problem(
    exc: ApiException, context: RequestContext, namespace: str, pod: str, container: str
) -> ConnectionProblem:
    code = int(exc.status or 0)
    status = status_body(exc.body) or {}
    message = str(status.get("message") or "").splitlines()[0:1]
    said = message[0][:300] if message else ""
    if code == 403:
        return ConnectionProblem(
            FORBIDDEN,
            f'forbidden: the dashboard may not read logs in namespace "{namespace}" — add the '
            f"RBAC rule {LOG_RULE} to its account (the chart's logs.enabled=true, or "
            "deploy/rbac-logs.yaml)",
        )
    if code == 404:
        return ConnectionProblem(
            NOT_FOUND, f'pod "{pod}" is gone (404)' + (f": {said}" if said else "")
        )
    if code == 400 and said:
        # e.g. 'previous terminated container "app" in pod "x" not found'
        return ConnectionProblem("bad_request", f"the API server says: {said}")
    return classify(exc, context)
