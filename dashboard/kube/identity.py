"""Is the server at this address a Kubernetes API server at all?

Any HTTP server answers *something*: a web page, a 404, a sign-in redirect. Without this
check a kubeconfig pointing at the wrong address looked "reachable" and the collector polled
`/api/v1/pods` forever as if the cluster were merely failing. A Kubernetes API server is
recognised by two discovery documents every one of them serves, with GET only:

* `GET /version`: JSON with a string `gitVersion` (kube-apiserver lets anyone read it,
  through the `system:public-info-viewer` role);
* `GET /api`: JSON of kind `APIVersions` (the core group's discovery, for authenticated
  users through `system:discovery`).

An error answer counts as Kubernetes only when its body is a Kubernetes `Status` object —
except 401, which says "no credentials accepted" whoever sends it, and 429/5xx, which say
"not now": those are raised as they are for the caller to classify and retry.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any, cast

from kubernetes.client import ApiClient, CoreApi, VersionApi
from kubernetes.client.exceptions import ApiException
from urllib3 import BaseHTTPResponse

from .errors import NOT_KUBERNETES, ConnectionProblem, ProblemError
from .resources import server_of

# Discovery documents are a few hundred bytes; a server sending more than this is not one
# (and must not make the check read megabytes).
MAX_BODY = 64 * 1024
DEFAULT_TIMEOUT = 4.0


@dataclass(frozen=True)
class ServerIdentity:
    git_version: str  # "" when /version was refused with a Kubernetes Status (403)
    platform: str = ""

    def describe(self) -> str:
        if not self.git_version:
            return "Kubernetes API server (version not readable)"
        platform = f", {self.platform}" if self.platform else ""
        return f"Kubernetes {self.git_version}{platform}"


class NotKubernetes(ProblemError):
    """The address answered over HTTP, but not as a Kubernetes API server."""

    def __init__(self, server: str, answers: list[str]):
        where = f"{server}: " if server else ""
        super().__init__(
            ConnectionProblem(
                NOT_KUBERNETES,
                f"this is not a Kubernetes API server ({where}{'; '.join(answers)})"
                " — check the server address of the kubeconfig",
            )
        )
        self.answers = answers


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.body)
        except ValueError:  # also UnicodeDecodeError
            return None
        return data if isinstance(data, dict) else None

    def is_status(self) -> bool:
        """A Kubernetes Status object: what the API server sends with every error."""
        data = self.json()
        return bool(data and data.get("kind") == "Status" and data.get("apiVersion") == "v1")


def identify(api_client: ApiClient, timeout: float = DEFAULT_TIMEOUT) -> ServerIdentity:
    """The server's identity, or `NotKubernetes` with what it answered instead.

    Transport failures, 401, 429 and 5xx are raised as the client raises them (ApiException,
    urllib3 errors): `errors.classify` puts them in words, and they may pass by themselves.
    """
    server = server_of(api_client)
    request_timeout = (timeout, timeout)
    version = _get(
        lambda: VersionApi(api_client).get_code(
            _preload_content=False, _request_timeout=request_timeout
        )
    )
    doc = version.json() if version.status == 200 else None
    git_version = doc.get("gitVersion") if doc else None
    if version.status == 200 and isinstance(git_version, str) and git_version:
        identity = ServerIdentity(git_version, str(doc.get("platform") or "") if doc else "")
    elif version.status == 403 and version.is_status():
        identity = ServerIdentity("")  # /version locked down: /api decides
    else:
        raise NotKubernetes(server, [_describe("/version", version, "gitVersion")])

    api = _get(
        lambda: CoreApi(api_client).get_api_versions(
            _preload_content=False, _request_timeout=request_timeout
        )
    )
    doc = api.json() if api.status == 200 else None
    if doc and doc.get("kind") == "APIVersions":
        return identity
    if api.status == 403 and api.is_status():
        return identity  # anonymous, or discovery refused: the lists will say which
    raise NotKubernetes(server, [_describe("/api", api, "kind APIVersions")])


def _get(call: Any) -> _Answer:
    """Run one generated GET with `_preload_content=False`: its status and bounded body.
    Raises what the client raises for 401, 429, 5xx and transport failures."""
    try:
        resp = cast(BaseHTTPResponse, call())
    except ApiException as exc:
        status = int(exc.status or 0)
        if status == 0 or status == 401 or status == 429 or status >= 500:
            raise
        headers = exc.headers or {}
        body = exc.body.encode() if isinstance(exc.body, str) else b""
        return _Answer(status, str(headers.get("Content-Type") or ""), body[:MAX_BODY])
    try:
        body = resp.read(MAX_BODY + 1)
    finally:
        # A body longer than the cap is left unread: drop that connection rather than hand
        # it back to the pool with bytes still in it.
        if len(body) > MAX_BODY:
            resp.close()
        resp.release_conn()
    return _Answer(resp.status, str(resp.headers.get("Content-Type") or ""), body)


# --------------------------------------------------------------------------- in words

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_HTML = re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<!--)", re.IGNORECASE)


def _describe(path: str, answer: _Answer, wanted: str) -> str:
    """e.g. 'GET /version answered HTTP 404 with an HTML page titled "Page not found"'."""
    return f"GET {path} answered HTTP {answer.status} with {_body_in_words(answer, wanted)}"


def _body_in_words(answer: _Answer, wanted: str) -> str:
    ctype = _clean(answer.content_type.split(";")[0], 60) or "no content type"
    body = answer.body
    if not body.strip():
        return f"an empty body ({ctype})"
    if len(body) > MAX_BODY:
        return f"more than {MAX_BODY // 1024} KiB of {ctype}"
    if "html" in ctype.lower() or _HTML.match(body):
        m = _TITLE.search(body)
        title = _clean(html.unescape(m[1].decode("utf-8", "replace")), 80) if m else ""
        return f'an HTML page titled "{title}"' if title else "an HTML page"
    data = answer.json()
    if data is not None:
        kind = data.get("kind")
        if isinstance(kind, str) and kind:
            return f'JSON of kind "{_clean(kind, 60)}", not {wanted}'
        return f"JSON without {wanted}"
    text = _clean(body.decode("utf-8", "replace"), 80)
    return f'{ctype}: "{text}"'


def _clean(text: str, limit: int) -> str:
    """One line of printable text, at most `limit` characters: what a hostile server sends
    ends up in a message (pages escape it; this keeps it short and on one line)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
