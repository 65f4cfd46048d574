"""A fake Kubernetes API server: serves an `ObjectStore` over real HTTP on 127.0.0.1.

It speaks the read-only subset of the API that kubectl, the official Python client and the
dashboard's reflectors use (docs/list-watch.md): discovery, list with
limit/continue and resourceVersion, GET of one object, and watch as a chunked stream of
JSON lines with bookmarks, `timeoutSeconds` and 410 Expired. Fault switches let tests cut
streams (between events or in the middle of one), truncate an event line, and inject error
statuses, latency and RBAC refusals. Every non-GET request is
refused with 405 and recorded, so tests can assert the dashboard never wrote anything.

Why threads: the store is a `threading.Condition`-based structure and each watch is one
long blocking loop over it, so one thread per connection (`ThreadingHTTPServer`) is the
simplest correct model; a few hundred concurrent watches are fine.

Known simplifications (documented, deliberate):
* label/field selectors on a watch are evaluated on each event's new object; an object that
  stops matching is sent as DELETED if this stream had shown it, one that starts matching as
  ADDED (as the real server does), but "had shown it" is approximated by the objects that
  matched when the stream began.
* list with resourceVersion=X and limit (exact semantics) is served only when X is the
  latest RV or a snapshot still held for a continue token; otherwise 410 Expired.
* compact() on the store ends every open watch with an ERROR 410 event (a forced relist).

A restored store (`ObjectStore.restore`, an etcd backup put back: resourceVersions lower
than the ones clients hold) is answered the way kube-apiserver v1.36's watch cache does,
checked against the real one (docs/list-watch.md): a list or GET with a resourceVersion
the store has not reached waits `too_large_wait` (3 s) for it, then answers 504 "Too large
resource version" (cause ResourceVersionTooLarge); a watch from such a version is accepted
and stays silent — no events up to that version, no bookmarks below it — unless it asked
for initial events, which get an ERROR event with that 504 Status. restore() itself ends
the open watch streams cleanly, as the watch cache does when it is rebuilt, and a continue
token of the newer store is refused with 410 (a simplification).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dashboard.coverage.selectors import SelectorError, parse_selector

from .store import RESOURCES, Event, Expired, ObjectStore, Resource

Obj = dict[str, Any]

SHORT_NAMES = {"nodes": ["no"], "pods": ["po"], "daemonsets": ["ds"], "namespaces": ["ns"]}
CATEGORIES = {"pods": ["all"], "daemonsets": ["all"]}
DEFAULT_USER = "system:serviceaccount:daemonviz:daemonviz"
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-daemonviz-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
PHRASES = {
    401: "Unauthorized",
    410: "too old resource version",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "The server is currently unable to handle the request",
}
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
# Fields each kind lets you select on (a subset of the real server's, which rejects others).
FIELD_LABELS = {
    "pods": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "reason",
        "source",
        "type",
    },
}


# ---------------------------------------------------------------------------- Status bodies


def dump(obj: Any) -> bytes:
    """Compact JSON, as the real server writes it."""
    return json.dumps(obj, separators=(",", ":")).encode()


class ApiError(Exception):
    """An error answered as a metav1 Status with the given HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: Obj | None = None,
        metadata: Obj | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "")
        self.details = details
        self.metadata = metadata or {}
        self.headers = headers or {}

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": self.metadata,
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def qualified(r: Resource) -> str:
    """How the real server names a resource in messages: "pods", "daemonsets.apps"."""
    return f"{r.plural}.{r.group}" if r.group else r.plural


def not_found(r: Resource, name: str) -> ApiError:
    details = {"name": name, "kind": r.plural} | ({"group": r.group} if r.group else {})
    return ApiError(404, f'{qualified(r)} "{name}" not found', details=details)


def forbidden(user: str, verb: str, r: Resource, namespace: str | None, name: str) -> ApiError:
    subject = f'{qualified(r)} "{name}"' if name else qualified(r)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{r.plural}" '
        f'in API group "{r.group}" {scope}'
    )
    details = {"kind": r.plural} | ({"group": r.group} if r.group else {})
    if name:
        details["name"] = name
    return ApiError(403, message, details=details)


def too_large(wanted: int, current: int) -> ApiError:
    """kube-apiserver's answer to a resourceVersion its store has not reached (byte for
    byte what v1.36 sends, but for the numbers)."""
    return ApiError(
        504,
        f"Timeout: Too large resource version: {wanted}, current: {current}",
        details={
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


def injected(code: int, retry_after: int | None) -> ApiError:
    headers, details = {}, None
    if code == 429 or retry_after is not None:
        seconds = 1 if retry_after is None else retry_after
        headers["Retry-After"] = str(seconds)
        details = {"retryAfterSeconds": seconds}
    return ApiError(
        code, PHRASES.get(code, f"injected fault {code}"), details=details, headers=headers
    )


# ---------------------------------------------------------------------------- selectors


class LabelSelector:
    """labels.Parse's grammar (k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k), parsed
    by the same code as the grid's filter (dashboard/coverage/selectors.py)."""

    def __init__(self, text: str):
        self.text = text
        try:
            self.requirements = parse_selector(text)
        except SelectorError as exc:
            raise ApiError(
                400, f"unable to parse requirement: invalid label selector: {text!r} ({exc})"
            ) from exc

    def matches(self, obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)


class FieldSelector:
    """fields.Parse's grammar: f=v, f==v, f!=v joined by commas, on the fields a kind allows."""

    def __init__(self, text: str, resource: str):
        self.terms: list[tuple[list[str], bool, str]] = []
        allowed = {"metadata.name", "metadata.namespace"} | FIELD_LABELS.get(resource, set())
        for term in filter(None, (t.strip() for t in text.split(","))):
            for op in ("!=", "==", "="):
                path, sep, value = term.partition(op)
                if sep:
                    break
            else:
                raise ApiError(400, f"invalid selector: '{text}'; can't understand '{term}'")
            if path.strip() not in allowed:
                raise ApiError(400, f"field label not supported: {path.strip()}")
            self.terms.append((path.strip().split("."), op != "!=", value.strip()))

    @staticmethod
    def _value(obj: Obj, path: list[str]) -> str:
        cur: Any = obj
        for part in path:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return "" if cur is None else str(cur)

    def matches(self, obj: Obj) -> bool:
        return all((self._value(obj, p) == v) == eq for p, eq, v in self.terms)


@dataclass
class Filter:
    labels: LabelSelector | None
    fields: FieldSelector | None

    @property
    def active(self) -> bool:
        return bool(self.labels and self.labels.requirements) or bool(
            self.fields and self.fields.terms
        )

    def __call__(self, obj: Obj) -> bool:
        return (self.labels is None or self.labels.matches(obj)) and (
            self.fields is None or self.fields.matches(obj)
        )


# ---------------------------------------------------------------------------- faults


@dataclass
class _Failure:
    status: int
    count: int
    resource: str | None
    watch: bool | None
    retry_after: int | None
    too_large: bool = False


class Faults:
    """Switches tests flip to make the server misbehave. Thread-safe."""

    def __init__(self, server: FakeApiServer):
        self._server = server
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        # (verb, resource, namespace): None = refused in every namespace and cluster-wide.
        self._forbidden: set[tuple[str, str, str | None]] = set()
        self._broken_events: list[str] = []
        self.latency = 0.0

    def cut_watches(self) -> int:
        """Close every open watch stream now, mid-stream; returns how many were cut."""
        return self._server._cut_watches()

    def fail_next(
        self,
        status: int,
        count: int = 1,
        resource: str | None = None,
        watch: bool | None = None,
        retry_after: int | None = None,
        too_large: bool = False,
    ) -> None:
        """The next `count` requests matching resource (plural; None = any request, discovery
        included) and watch (True = watches only, False = non-watch only) get `status`.
        `too_large`: the 504 "Too large resource version" Status instead of a generic one."""
        with self._lock:
            self._failures.append(_Failure(status, count, resource, watch, retry_after, too_large))

    def break_next_event(self, how: str) -> None:
        """The next event line any watch sends is sent half-written. `cut`: then the
        connection is torn down (a proxy or node dying mid-event: the client reads a partial
        JSON line, then EOF). `truncate`: the half line ends in a newline and the stream ends
        cleanly (a buggy intermediary that truncates lines). cut_watches() only ever cuts
        between events, which is the easy case; clients must survive both of these."""
        if how not in ("cut", "truncate"):
            raise ValueError(f"how must be 'cut' or 'truncate', not {how!r}")
        with self._lock:
            self._broken_events.append(how)

    def take_broken_event(self) -> str | None:
        with self._lock:
            return self._broken_events.pop(0) if self._broken_events else None

    def armed(self) -> int:
        """How many injected failures and broken events have not fired yet: lets a test
        prove its fault really happened."""
        with self._lock:
            return sum(f.count for f in self._failures) + len(self._broken_events)

    def delay(self, seconds: float) -> None:
        self.latency = max(0.0, seconds)

    def forbid(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Refuse `verb` on `resource` (a plural, or "pods/log") with RBAC's 403; with
        `namespace`, only requests in that namespace (a Role granted elsewhere, not there;
        a cluster-wide request is refused too, as RBAC would without a ClusterRole)."""
        if resource not in RESOURCES and resource != "pods/log":
            raise ValueError(f"unknown resource {resource!r}")
        with self._lock:
            self._forbidden.add((verb, resource, namespace))

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._forbidden.clear()
            self._broken_events.clear()
        self.latency = 0.0

    # -- used by the handler

    def take_failure(self, resource: str | None, watch: bool) -> ApiError | None:
        with self._lock:
            for f in self._failures:
                if f.resource not in (None, resource) or f.watch not in (None, watch):
                    continue
                f.count -= 1
                if f.count <= 0:
                    self._failures.remove(f)
                if f.too_large:
                    current = self._server.store.resource_version
                    return too_large(current + 1, current)
                return injected(f.status, f.retry_after)
        return None

    def is_forbidden(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        with self._lock:
            refused = {
                (v, r) for v, r, ns in self._forbidden if ns is None or namespace in (ns, None)
            }
        return (verb, resource) in refused


# ---------------------------------------------------------------------------- list snapshots


@dataclass
class _Snapshot:
    """A list result kept so continue tokens page through one consistent state."""

    rv: int
    resource: str
    namespace: str | None
    items: list[tuple[Obj, bytes]]
    generation: int = 0  # the store's; a restore voids the snapshots taken before it


class _Snapshots:
    """A small LRU of snapshots, by id. Only paginated lists store one."""

    def __init__(self, size: int = 16):
        self._lock = threading.Lock()
        self._size = size
        self._by_id: OrderedDict[int, _Snapshot] = OrderedDict()
        self._next = 1

    def add(self, snap: _Snapshot) -> int:
        with self._lock:
            sid = self._next
            self._next += 1
            self._by_id[sid] = snap
            while len(self._by_id) > self._size:
                self._by_id.popitem(last=False)
            return sid

    def get(self, sid: int) -> _Snapshot | None:
        with self._lock:
            snap = self._by_id.get(sid)
            if snap is not None:
                self._by_id.move_to_end(sid)
            return snap

    def drop(self, sid: int) -> None:
        with self._lock:
            self._by_id.pop(sid, None)


def encode_continue(rv: int, pos: int, key: str, sid: int) -> str:
    # Shaped like the real token ({"v":..,"rv":..,"start":..}), plus where our snapshot is.
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00", "pos": pos, "snap": sid}
    return base64.urlsafe_b64encode(dump(token)).decode().rstrip("=")


def decode_continue(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        int(data["rv"]), int(data["pos"]), int(data["snap"]), str(data["start"])
        return data
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, f"continue key is not valid: {exc}") from exc


def object_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


# ---------------------------------------------------------------------------- routing


@dataclass
class Route:
    """What a URL path addresses: a discovery document, a collection or one object."""

    doc: Obj | None = None
    resource: Resource | None = None
    namespace: str | None = None
    name: str = ""
    text: bytes | None = None
    subresource: str = ""  # "log": a pod's container log


def _resource_in(group_version: str, plural: str) -> Resource:
    r = RESOURCES.get(plural)
    if r is None or r.api_version != group_version:
        raise ApiError(404, "the server could not find the requested resource")
    return r


def api_resource_list(group_version: str) -> Obj:
    resources = [
        {
            "name": r.plural,
            "singularName": r.kind.lower(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "list", "watch"],
        }
        | ({"shortNames": SHORT_NAMES[r.plural]} if r.plural in SHORT_NAMES else {})
        | ({"categories": CATEGORIES[r.plural]} if r.plural in CATEGORIES else {})
        for r in RESOURCES.values()
        if r.api_version == group_version
    ]
    return {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}


def _groups() -> list[Obj]:
    names = sorted({r.group for r in RESOURCES.values() if r.group})
    out = []
    for g in names:
        version = {"groupVersion": f"{g}/v1", "version": "v1"}
        out.append({"name": g, "versions": [version], "preferredVersion": version})
    return out


def route(path: str, server_address: str) -> Route:
    parts = [p for p in path.split("/") if p]
    if parts in (["healthz"], ["livez"], ["readyz"]):
        return Route(text=b"ok")
    if parts == ["version"]:
        return Route(doc=VERSION_INFO)
    if parts == ["api"]:
        cidr = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
        return Route(
            doc={"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidr}
        )
    if parts == ["apis"]:
        return Route(doc={"kind": "APIGroupList", "apiVersion": "v1", "groups": _groups()})
    if len(parts) == 2 and parts[0] == "apis":
        for g in _groups():
            if g["name"] == parts[1]:
                return Route(doc={"kind": "APIGroup", "apiVersion": "v1"} | g)
    if parts[:2] == ["api", "v1"]:
        group_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise ApiError(404, "the server could not find the requested resource")
    if not rest:
        doc = api_resource_list(group_version)
        if not doc["resources"]:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(doc=doc)
    # namespaces/{ns}/pods/{name}/log: a container's log (the only subresource served).
    if group_version == "v1" and len(rest) == 5 and rest[0] == "namespaces":
        if rest[2] == "pods" and rest[4] == "log":
            return Route(
                resource=RESOURCES["pods"], namespace=rest[1], name=rest[3], subresource="log"
            )
        raise ApiError(404, "the server could not find the requested resource")
    # namespaces/{ns}/{plural}[/{name}] addresses namespaced resources inside a namespace.
    if rest[0] == "namespaces" and len(rest) in (3, 4):
        r = _resource_in(group_version, rest[2])
        if not r.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(resource=r, namespace=rest[1], name=rest[3] if len(rest) == 4 else "")
    if len(rest) in (1, 2):
        r = _resource_in(group_version, rest[0])
        if len(rest) == 2 and r.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(resource=r, name=rest[1] if len(rest) == 2 else "")
    raise ApiError(404, "the server could not find the requested resource")


# ---------------------------------------------------------------------------- TLS


def self_signed_cert() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for 127.0.0.1/localhost, its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "daemonviz-fake-apiserver")])
    now = datetime.now(UTC)
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain only reads files
        cert_file, key_file = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _hard_shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown even on an SSLSocket: SSLSocket.shutdown would detach its TLS
    # state under a thread that may be writing.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# ---------------------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins every handler thread
    block_on_close = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: FakeApiServer,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.owner = owner
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            # The handshake happens in the handler thread (setup), not in the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    # `request` is the accepted socket (typeshed's type also allows a UDP (data, socket) pair).
    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients (and cut_watches) drop connections all the time; that is not an error here.
        pass


def _line(kind: str, data: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + data + b"}\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watches, as clients expect
    server_version = "daemonviz-fake-apiserver"
    timeout = 300  # idle keep-alive connections (and stuck writes) end after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass  # quiet: tests assert on FakeApiServer.requests instead

    # -- non-GET: refuse and record

    def _refuse(self) -> None:
        owner = self.server.owner
        owner.requests.append((self.command, self.path))
        owner.non_get_requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.close_connection = True
        msg = f"the server does not allow this method on the requested resource ({self.command})"
        self._send_status(ApiError(405, msg))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _refuse

    # -- GET

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.requests.append(("GET", self.path))
        try:
            self._get(owner)
        except ApiError as err:
            self._send_status(err)
        except (ConnectionError, OSError):
            self.close_connection = True

    def _get(self, owner: FakeApiServer) -> None:
        if owner.faults.latency:
            time.sleep(owner.faults.latency)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        watch = query.get("watch", "").lower() in ("1", "true")
        if owner.token is not None:
            auth = self.headers.get("Authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {owner.token}".encode()):
                raise ApiError(401, "Unauthorized")
        rt = route(url.path, f"127.0.0.1:{owner.port}")
        failure = owner.faults.take_failure(rt.resource.plural if rt.resource else None, watch)
        if failure:
            raise failure
        if rt.text is not None:
            return self._send(200, rt.text, "text/plain; charset=utf-8")
        if rt.doc is not None:
            return self._send(200, dump(rt.doc))
        assert rt.resource is not None
        if rt.subresource == "log":
            return owner._serve_log(self, rt, query)
        verb = "get" if rt.name else "watch" if watch else "list"
        if owner.faults.is_forbidden(verb, rt.resource.plural, rt.namespace):
            raise forbidden(owner.user, verb, rt.resource, rt.namespace, rt.name)
        if rt.name:
            return self._get_one(owner.store, rt)
        filt = Filter(
            LabelSelector(query["labelSelector"]) if query.get("labelSelector") else None,
            FieldSelector(query["fieldSelector"], rt.resource.plural)
            if query.get("fieldSelector")
            else None,
        )
        if watch:
            return owner._serve_watch(self, rt, query, filt)
        status, body = owner._list(rt, query, filt)
        self._send(status, body)

    def _get_one(self, store: ObjectStore, rt: Route) -> None:
        r = rt.resource
        assert r is not None
        obj = store.get(r.plural, rt.namespace or "", rt.name)
        if obj is None:
            raise not_found(r, rt.name)
        self._send(200, msgspec.json.encode(obj))

    # -- writing

    def _send(
        self,
        code: int,
        body: bytes | Iterable[bytes],
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        chunks = [body] if isinstance(body, bytes) else list(body)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"".join(chunks))

    def _send_status(self, err: ApiError) -> None:
        self._send(err.code, dump(err.status()), headers=err.headers)

    def start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


@dataclass(eq=False)  # identity hash: kept in a set
class _Watch:
    """One open watch stream, so cut_watches() and stop() can reach its socket."""

    sock: socket.socket
    cut: bool = False
    shown: set[str] = field(default_factory=set)


class FakeApiServer:
    def __init__(
        self,
        store: ObjectStore,
        port: int = 0,
        token: str | None = "secret-token",
        bookmark_interval: float = 1.0,
        user: str = DEFAULT_USER,
        watch_timeout: float | None = None,
        tls: bool = False,
        too_large_wait: float = 3.0,
        watch_list: bool = True,
    ):
        """`watch_timeout`: server-side cap on watches without timeoutSeconds (the real server
        picks 30–60 min); None = until the client or stop() ends them.

        `too_large_wait`: how long a read waits for a resourceVersion the store has not
        reached before answering 504 "Too large resource version" (the real server: 3 s).

        `watch_list`: serve WatchList streams (a watch with sendInitialEvents=true), as
        kube-apiserver does with its WatchList feature gate on (the default since v1.34).
        False answers them 422 as a server with the gate off does.

        `tls=True` serves https with a fresh self-signed certificate (`ca_cert`, PEM) that
        write_kubeconfig embeds. Needed for kubectl with a token: kubectl never sends
        credentials over plain http (kubernetes/kubectl#744); the Python client does."""
        self.store = store
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.user = user
        self.watch_timeout = watch_timeout
        self.too_large_wait = too_large_wait
        self.watch_list = watch_list
        self.faults = Faults(self)
        self.requests: list[tuple[str, str]] = []
        self.non_get_requests: list[tuple[str, str]] = []
        # Container logs: (namespace, pod, container, previous) -> text (set_log).
        self.logs: dict[tuple[str, str, str, bool], str] = {}
        # Seconds between the lines of a log body: a server that trickles (deadline tests).
        self.log_trickle = 0.0
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._snapshots = _Snapshots()
        self._watches: set[_Watch] = set()
        self._watches_lock = threading.Lock()
        self._stopping = False
        self.ca_cert: bytes | None = None
        self._tls: ssl.SSLContext | None = None
        if tls:
            self.ca_cert, key = self_signed_cert()
            self._tls = server_context(self.ca_cert, key)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeApiServer:
        self._stopping = False
        self._httpd = _HTTPServer(("127.0.0.1", self._port), _Handler, self, self._tls)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits one poll: keep tests fast
            name=f"fake-apiserver:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping = True
        httpd.shutdown()  # no new connections
        self._cut_watches()
        with httpd.connections_lock:
            idle = list(httpd.connections)
        for sock in idle:  # keep-alive handlers blocked reading their next request
            _hard_shutdown(sock)
        httpd.server_close()  # joins the handler threads
        if self._thread:
            self._thread.join()
        self._httpd = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def open_watches(self) -> int:
        with self._watches_lock:
            return len(self._watches)

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    def write_kubeconfig(
        self, path: str | Path, context: str = "fake", token: str | None = None
    ) -> Path:
        """A kubeconfig for kubectl and kubernetes.config.new_client_from_config."""
        token = self.token if token is None else token
        user = {"token": token} if token else {}
        cluster: Obj = {"server": self.url}
        if self.ca_cert:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_cert).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is valid YAML
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------ logs

    def set_log(
        self, namespace: str, pod: str, container: str, text: str, previous: bool = True
    ) -> None:
        """What GET .../pods/POD/log?container=C[&previous=true] answers."""
        self.logs[(namespace, pod, container, previous)] = text

    def _serve_log(self, h: _Handler, rt: Route, query: dict[str, str]) -> None:
        """The kubelet's answer, as the API server relays it: plain text, `tailLines` then
        `limitBytes` applied (the last N lines, then at most that many bytes of them), 400
        for a missing or ambiguous container and for a previous instance that never was."""
        ns, name = rt.namespace or "", rt.name
        if self.faults.is_forbidden("get", "pods/log", rt.namespace):
            message = (
                f'pods "{name}" is forbidden: User "{self.user}" cannot get resource '
                f'"pods/log" in API group "" in the namespace "{ns}"'
            )
            raise ApiError(403, message, details={"name": name, "kind": "pods"})
        pod = self.store.get("pods", ns, name)
        if pod is None:
            raise not_found(RESOURCES["pods"], name)
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        names = [c.get("name", "") for c in spec.get("containers") or []]
        container = query.get("container", "")
        if not container:
            if len(names) != 1:
                choices = " ".join(names)
                raise ApiError(
                    400,
                    f"a container name must be specified for pod {name}, choose one of: [{choices}]",
                )
            container = names[0]
        inits = [c.get("name", "") for c in spec.get("initContainers") or []]
        if container not in names + inits:
            raise ApiError(400, f"container {container} is not valid for pod {name}")
        previous = query.get("previous", "").lower() in ("1", "true")
        text = self.logs.get((ns, name, container, previous))
        if text is None and previous:
            statuses = (status.get("containerStatuses") or []) + (
                status.get("initContainerStatuses") or []
            )
            crashed = any(
                (s.get("lastState") or {}).get("terminated")
                for s in statuses
                if s.get("name") == container
            )
            if not crashed:
                raise ApiError(
                    400, f'previous terminated container "{container}" in pod "{name}" not found'
                )
        body = (text or "").encode()
        if "tailLines" in query:
            tail = _int(query["tailLines"], "tailLines")
            lines = body.splitlines(keepends=True)
            body = b"".join(lines[-tail:]) if tail > 0 else b""
        if "limitBytes" in query:
            limit = _int(query["limitBytes"], "limitBytes")
            if limit <= 0:
                raise ApiError(400, "limitBytes: Invalid value: must be greater than 0")
            body = body[:limit]
        if not self.log_trickle:
            return h._send(200, body, "text/plain")
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for line in body.splitlines(keepends=True):
            h.write_chunk(line)
            h.wfile.flush()
            time.sleep(self.log_trickle)
        h.end_chunked()

    # ------------------------------------------------------------------ list

    def _list(self, rt: Route, query: dict[str, str], filt: Filter) -> tuple[int, bytes]:
        r = rt.resource
        assert r is not None
        limit = _int(query.get("limit") or "0", "limit")
        token = query.get("continue") or ""
        if token:
            if query.get("resourceVersion") not in (None, "", "0"):
                raise ApiError(
                    400, "specifying resource version is not allowed when using continue"
                )
            snap, sid, pos = self._resume(rt, token)
        else:
            snap = self._snapshot_for(rt, query)
            sid, pos = 0, 0
        page, end = self._page(snap.items, pos, limit, filt)
        meta: Obj = {"resourceVersion": str(snap.rv)}
        if end < len(snap.items):
            sid = sid or self._snapshots.add(snap)
            meta["continue"] = encode_continue(
                snap.rv, end, object_key(snap.items[end - 1][0]), sid
            )
            if not filt.active:  # the real server omits the estimate under selectors
                meta["remainingItemCount"] = len(snap.items) - end
        elif sid:
            self._snapshots.drop(sid)  # the last page was served: the client is done
        head = b'{"kind":"' + r.kind.encode() + b'List","apiVersion":"' + r.api_version.encode()
        head += b'","metadata":' + dump(meta) + b',"items":['
        return 200, head + b",".join(page) + b"]}"

    @staticmethod
    def _page(
        items: list[tuple[Obj, bytes]], pos: int, limit: int, filt: Filter
    ) -> tuple[list[bytes], int]:
        """Matching items' bytes from `pos`, at most `limit` (0 = all); and where it stopped."""
        if not filt.active and not limit:
            return [data for _, data in items[pos:]], len(items)
        out: list[bytes] = []
        i = pos
        while i < len(items) and (not limit or len(out) < limit):
            obj, data = items[i]
            if filt(obj):
                out.append(data)
            i += 1
        return out, i

    def _snapshot_for(self, rt: Route, query: dict[str, str]) -> _Snapshot:
        """The state a first page reads, per resourceVersion/resourceVersionMatch."""
        assert rt.resource is not None
        rv_text = query.get("resourceVersion")
        match = query.get("resourceVersionMatch", "")
        if match and not rv_text:
            raise ApiError(
                400, "resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if match not in ("", "Exact", "NotOlderThan"):
            raise ApiError(400, f'resourceVersionMatch: Unsupported value: "{match}"')
        if match == "Exact" and rv_text == "0":
            raise ApiError(400, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        exact = match == "Exact" or (not match and query.get("limit") not in (None, "", "0"))
        wanted = _int(rv_text, "resourceVersion") if rv_text not in (None, "", "0") else 0
        if wanted > self.store.resource_version:
            self._wait_until(wanted)
        items, rv = self.store.list(rt.resource.plural, rt.namespace)
        if wanted and exact and wanted != rv:
            if wanted < self.store.oldest_rv():
                raise ApiError(
                    410, f"too old resource version: {wanted} ({self.store.oldest_rv()})"
                )
            # We keep no multi-version state: we cannot serve that exact past snapshot.
            raise ApiError(410, "The resourceVersion for the provided list is too old.")
        return _Snapshot(rv, rt.resource.plural, rt.namespace, items, self.store.generation)

    def _wait_until(self, wanted: int) -> None:
        # The real server waits ~3 s for its cache to catch up, then answers 504.
        deadline = time.monotonic() + self.too_large_wait
        while self.store.resource_version < wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                raise too_large(wanted, self.store.resource_version)
            self.store.wait_for_change(self.store.resource_version, left)

    def _resume(self, rt: Route, token: str) -> tuple[_Snapshot, int, int]:
        assert rt.resource is not None
        data = decode_continue(token)
        rv, sid, pos = int(data["rv"]), int(data["snap"]), int(data["pos"])
        snap = self._snapshots.get(sid)
        if snap is not None and snap.generation != self.store.generation:
            snap = None  # taken from the store before it was restored
        if snap is None and rv == self.store.resource_version:
            # Evicted, but nothing changed since: the current state *is* that snapshot.
            items, now = self.store.list(rt.resource.plural, rt.namespace)
            if now == rv:
                snap = _Snapshot(rv, rt.resource.plural, rt.namespace, items, self.store.generation)
                sid = self._snapshots.add(snap)
        if snap is None or rv < self.store.oldest_rv():
            self._snapshots.drop(sid)
            raise self._continue_expired(rt, data)
        if (snap.resource, snap.namespace) != (rt.resource.plural, rt.namespace) or not (
            0 <= pos <= len(snap.items)
        ):
            raise ApiError(400, "continue key is not valid: it belongs to another list")
        return snap, sid, pos

    def _continue_expired(self, rt: Route, data: dict[str, Any]) -> ApiError:
        assert rt.resource is not None
        # Like the real server, offer a fresh token that continues (inconsistently) from the
        # latest state after the same key.
        items, rv = self.store.list(rt.resource.plural, rt.namespace)
        start = str(data["start"]).rstrip("\x00")
        pos = next((i for i, (o, _) in enumerate(items) if object_key(o) > start), len(items))
        meta: Obj = {}
        if pos < len(items):
            snap = _Snapshot(rv, rt.resource.plural, rt.namespace, items, self.store.generation)
            sid = self._snapshots.add(snap)
            meta["continue"] = encode_continue(rv, pos, start, sid)
        return ApiError(410, CONTINUE_EXPIRED, reason="Expired", metadata=meta)

    # ------------------------------------------------------------------ watch

    def _serve_watch(self, h: _Handler, rt: Route, query: dict[str, str], filt: Filter) -> None:
        r = rt.resource
        assert r is not None
        rv_text = query.get("resourceVersion") or ""
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")
        initial_events = query.get("sendInitialEvents", "").lower() in ("1", "true")
        # kube-apiserver's validation of watch options (ValidateListOptions) and its gate.
        if initial_events and not self.watch_list:
            raise ApiError(
                422,
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate "
                "is enabled",
                reason="Invalid",
            )
        match = query.get("resourceVersionMatch", "")
        if match and not initial_events:
            raise ApiError(
                422,
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                reason="Invalid",
            )
        if initial_events and match != "NotOlderThan":
            raise ApiError(
                422,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                reason="Invalid",
            )
        timeout = _int(query.get("timeoutSeconds") or "0", "timeoutSeconds") or self.watch_timeout
        deadline = time.monotonic() + timeout if timeout else None

        epoch, generation = self.store.epoch, self.store.generation
        too_new: ApiError | None = None
        if initial_events and rv_text not in ("", "0"):
            # A watch-list must start at least as new as asked: like a list, it waits for
            # the store, then fails — with an ERROR event, the watch itself is accepted.
            try:
                self._wait_until(_int(rv_text, "resourceVersion"))
            except ApiError as err:
                too_new = err
        initial: list[tuple[Obj, bytes]] = []
        if too_new is not None:
            cursor = self.store.resource_version
        elif rv_text in ("", "0") or initial_events:
            # Synthetic ADDED for the current state, then changes after it (no resourceVersion).
            items, cursor = self.store.list(r.plural, rt.namespace)
            initial = [(o, d) for o, d in items if filt(o)]
            if rv_text not in ("", "0"):
                cursor = max(cursor, _int(rv_text, "resourceVersion"))
        else:
            cursor = _int(rv_text, "resourceVersion")

        w = _Watch(h.connection)
        if filt.active:
            # Which objects this stream counts as shown, to turn "stopped matching" into DELETED.
            shown = initial or [
                (o, d) for o, d in self.store.list(r.plural, rt.namespace)[0] if filt(o)
            ]
            w.shown = {object_key(o) for o, _ in shown}
        with self._watches_lock:
            self._watches.add(w)
        try:
            h.start_chunked()
            if too_new is not None:
                h.write_chunk(_line("ERROR", dump(too_new.status())))
                h.end_chunked()
                return
            self._write_batched(h, (_line("ADDED", d) for _, d in initial))
            if initial_events and bookmarks:
                h.write_chunk(_line("BOOKMARK", _bookmark(r, cursor, initial_end=True)))
            streaming = (cursor, epoch, generation)
            if self._stream(h, w, r, rt.namespace, streaming, filt, bookmarks, deadline):
                h.end_chunked()
        finally:
            with self._watches_lock:
                self._watches.discard(w)
        if w.cut:
            h.close_connection = True

    def _stream(
        self,
        h: _Handler,
        w: _Watch,
        r: Resource,
        namespace: str | None,
        start: tuple[int, int, int],
        filt: Filter,
        bookmarks: bool,
        deadline: float | None,
    ) -> bool:
        """Send events after `cursor` until the deadline (True: end cleanly) or a cut/stop.

        `start` is (cursor, the store's epoch, its generation) when the watch began."""
        cursor, epoch, generation = start
        floor = cursor  # what the client asked for: it may be ahead of a restored store
        next_bookmark = time.monotonic() + self.bookmark_interval
        while not (w.cut or self._stopping):
            head = self.store.resource_version  # read before the log: safe to advance to
            if self.store.generation != generation:
                return True  # the store was restored: the watch cache ends every watch
            if self.store.epoch != epoch:
                h.write_chunk(_line("ERROR", _expired_status(cursor, self.store.oldest_rv())))
                return True
            try:
                events = self.store.events_since(cursor, r.plural, namespace)
            except Expired as exc:
                h.write_chunk(_line("ERROR", _expired_status(exc.requested, exc.oldest)))
                return True
            lines = [line for ev in events if (line := self._event_line(ev, w, filt))]
            broken = self.faults.take_broken_event() if lines else None
            if broken is not None:
                h.write_chunk(
                    lines[0][: len(lines[0]) // 2] + (b"\n" if broken == "truncate" else b"")
                )
                if broken == "truncate":
                    return True  # end the stream cleanly after the damaged line
                w.cut = True
                _hard_shutdown(w.sock)
                return False
            self._write_batched(h, lines)
            cursor = max(cursor, head, events[-1].rv if events else 0)
            now = time.monotonic()
            if bookmarks and now >= next_bookmark:
                # Never a version the store has not reached: the watch cache drops the
                # bookmarks below the version a watch started from.
                if head >= floor:
                    h.write_chunk(_line("BOOKMARK", _bookmark(r, cursor)))
                next_bookmark = now + self.bookmark_interval
            if deadline is not None and now >= deadline:
                return True
            wait = min(
                next_bookmark - now if bookmarks else 60.0,
                deadline - now if deadline is not None else 60.0,
            )
            self.store.wait_for_change(
                cursor, max(wait, 0.0), until=lambda: w.cut or self._stopping
            )
        return False

    @staticmethod
    def _event_line(ev: Event, w: _Watch, filt: Filter) -> bytes | None:
        if not filt.active:
            return _line(ev.type, ev.data)
        key = object_key(ev.obj)
        matches = filt(ev.obj)
        was_shown = key in w.shown
        if ev.type == "DELETED" or not matches:
            w.shown.discard(key)
            return (
                _line("DELETED", ev.data)
                if was_shown or (matches and ev.type == "DELETED")
                else None
            )
        w.shown.add(key)
        return _line("MODIFIED" if was_shown else "ADDED", ev.data)

    @staticmethod
    def _write_batched(h: _Handler, lines: Iterable[bytes], size: int = 256 * 1024) -> None:
        # One chunk per ~256 KiB: 150,000 synthetic ADDED lines must not be 150,000 syscalls.
        buf: list[bytes] = []
        n = 0
        for line in lines:
            buf.append(line)
            n += len(line)
            if n >= size:
                h.write_chunk(b"".join(buf))
                buf, n = [], 0
        if buf:
            h.write_chunk(b"".join(buf))

    def _cut_watches(self) -> int:
        with self._watches_lock:
            watches = list(self._watches)
        for w in watches:
            w.cut = True
            _hard_shutdown(w.sock)  # the client sees EOF without the terminating chunk
        self.store.wake()
        return len(watches)


def _bookmark(r: Resource, rv: int, initial_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return dump({"kind": r.kind, "apiVersion": r.api_version, "metadata": meta})


def _expired_status(requested: int, oldest: int) -> bytes:
    err = ApiError(410, f"too old resource version: {requested} ({oldest})", reason="Expired")
    return dump(err.status())


def _int(text: str | None, name: str) -> int:
    try:
        return int(text or 0)
    except ValueError:
        raise ApiError(400, f"invalid {name}: {text!r}") from None
