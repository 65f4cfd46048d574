"""The watched resources and the two raw requests made for them: a paginated list and a
watch. Both go through the official client's generated methods (so auth, TLS, proxies and
token refresh are the client's), with `_preload_content=False`: the body is read as bytes
and decoded straight into compact records, never into the client's typed models
(docs/list-watch.md, bench/RESULTS.md: an order of magnitude cheaper). Only GET requests are
ever made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, DiscoveryV1Api, SchedulingV1Api
from kubernetes.client.exceptions import ApiException
from urllib3 import BaseHTTPResponse

from dashboard.coverage.records import Record, Skipped, decode_list
from dashboard.coverage.why import (
    EVENT_STREAMS,
    NODE_EVENT_STREAMS,
    NODE_EVENTS_NAMESPACE,
    WARNING_STREAM,
    stream_selector,
)

from .errors import GONE, ConnectionProblem, ProblemError, RequestContext

DEFAULT_PAGE_SIZE = 500  # client-go's default page size (docs/list-watch.md)
# A continue token can expire between pages (410): the list restarts from scratch, because
# the fresh token the 410 carries continues from a *different*, inconsistent snapshot.
MAX_LIST_RESTARTS = 3

log = logging.getLogger(__name__)

# What the status and the connection test say when node events cannot be watched: the
# optional node-events watches were refused (a namespaced Role that stops at its namespace).
NODE_EVENTS_FORBIDDEN = (
    "node events not shown: the ServiceAccount may not list/watch events in namespace "
    f"{NODE_EVENTS_NAMESPACE} (add a Role rule: get/list/watch events in {NODE_EVENTS_NAMESPACE})"
)


@dataclass(frozen=True)
class ResourceSpec:
    name: str  # plural, as in the API path
    kind: str  # record kind for decode_list / decode_event
    group: str
    version: str
    namespaced: bool
    api: Callable[[ApiClient], Any]
    list_all: str  # method name, all namespaces (or cluster-scoped)
    list_namespaced: str | None
    # Server-side filter (events: only the kinds that explain a daemon, docs/why.md).
    field_selector: str | None = None
    # Several watches of one API resource (events: one per field selector) each have a key
    # of their own and hand the matrix a record kind of their own (its relists replace
    # only what they select); "" = the API plural and the record kind.
    key: str = ""
    stream: str = ""
    # Watched in this namespace whatever the cluster's (node events: "default").
    namespace: str | None = None
    # Not needed for the cluster to count as synced: refused or failing, it leaves a note
    # on the status instead (node events in "default", docs/list-watch.md).
    optional: bool = False

    @property
    def id(self) -> str:
        return self.key or self.name

    @property
    def replace_kind(self) -> str:
        return self.stream or self.kind

    @property
    def primary(self) -> bool:
        """The first watch of its API resource: the one the connection test probes."""
        return not self.key

    def context(self, verb: str, namespace: str | None, server: str = "") -> RequestContext:
        return RequestContext(
            verb=verb,
            resource=self.name,
            group=self.group,
            version=self.version,
            namespace=(self.namespace or namespace) if self.namespaced else None,
            server=server,
        )


def _event_spec(stream: str, *, key: str, **options: Any) -> ResourceSpec:
    """One core/v1 events watch, filtered on the server to one stream (see below)."""
    return ResourceSpec(
        "events",
        "Event",
        "",
        "v1",
        True,
        CoreV1Api,
        "list_event_for_all_namespaces",
        "list_namespaced_event",
        field_selector=stream_selector(stream),
        key=key,
        stream=stream,
        **options,
    )


RESOURCES: dict[str, ResourceSpec] = {
    spec.id: spec
    for spec in (
        ResourceSpec("nodes", "Node", "", "v1", False, CoreV1Api, "list_node", None),
        ResourceSpec(
            "pods",
            "Pod",
            "",
            "v1",
            True,
            CoreV1Api,
            "list_pod_for_all_namespaces",
            "list_namespaced_pod",
        ),
        ResourceSpec(
            "daemonsets",
            "DaemonSet",
            "apps",
            "v1",
            True,
            AppsV1Api,
            "list_daemon_set_for_all_namespaces",
            "list_namespaced_daemon_set",
        ),
        ResourceSpec(
            "controllerrevisions",
            "ControllerRevision",
            "apps",
            "v1",
            True,
            AppsV1Api,
            "list_controller_revision_for_all_namespaces",
            "list_namespaced_controller_revision",
        ),
        # Access paths (docs/access.md): which Services select a DaemonSet's pods, and
        # whether their EndpointSlices list each pod as ready.
        ResourceSpec(
            "services",
            "Service",
            "",
            "v1",
            True,
            CoreV1Api,
            "list_service_for_all_namespaces",
            "list_namespaced_service",
        ),
        ResourceSpec(
            "endpointslices",
            "EndpointSlice",
            "discovery.k8s.io",
            "v1",
            True,
            DiscoveryV1Api,
            "list_endpoint_slice_for_all_namespaces",
            "list_namespaced_endpoint_slice",
        ),
        # core/v1, not events.k8s.io/v1: the same objects (one storage), and the DaemonSet
        # controller and kubelet write core/v1 ones. Warning events, and the few Normal
        # reasons that explain a daemon (one watch each: selectors cannot OR): every pod
        # start writes four Normal ones (Scheduled, Pulled, Created, Started) that explain
        # nothing.
        *(
            _event_spec(
                stream,
                key=""
                if stream == WARNING_STREAM
                else f"events-{stream.partition(':')[2].lower()}",
            )
            for stream in EVENT_STREAMS
        ),
        # With one namespace other than "default" watched: node events, which live in
        # "default", about nodes only (see why.py NODE_EVENT_STREAMS).
        *(
            _event_spec(
                stream,
                key="events-node" + "".join(f"-{r.lower()}" for r in stream.split(":")[1:]),
                namespace=NODE_EVENTS_NAMESPACE,
                optional=True,
            )
            for stream in NODE_EVENT_STREAMS
        ),
        # Read-only: which PriorityClass would let a Pending daemon preempt (docs/why.md).
        ResourceSpec(
            "priorityclasses",
            "PriorityClass",
            "scheduling.k8s.io",
            "v1",
            False,
            SchedulingV1Api,
            "list_priority_class",
            None,
        ),
    )
}
# Every watch (events: one per stream), and one per API resource (what is probed). The
# node-events watches are added only where they are needed (watched_resources).
NODE_EVENT_RESOURCES = tuple(
    key for key, spec in RESOURCES.items() if spec.stream in NODE_EVENT_STREAMS
)
RESOURCE_NAMES = tuple(key for key in RESOURCES if key not in NODE_EVENT_RESOURCES)
API_RESOURCES = tuple(key for key, spec in RESOURCES.items() if spec.primary)


def watched_resources(namespace: str | None) -> tuple[str, ...]:
    """What a cluster watches: everything, and with a single namespace other than
    "default" also the node events stored there (which its own watches cannot see)."""
    if namespace and namespace != NODE_EVENTS_NAMESPACE:
        return RESOURCE_NAMES + NODE_EVENT_RESOURCES
    return RESOURCE_NAMES


def record_key(record: Record) -> str:
    """The identity of a record within its resource: "namespace/name", or a node's name."""
    key = getattr(record, "key", None)
    return key if key is not None else record.name


def server_of(api_client: ApiClient) -> str:
    return str(api_client.configuration.host or "")


class ListExpired(ProblemError):
    """The list had to restart too often because its continue token kept expiring."""

    def __init__(self, resource: str):
        super().__init__(
            ConnectionProblem(
                GONE,
                f"expired (410): the continue token for {resource} expired "
                f"{MAX_LIST_RESTARTS} times in a row while listing",
            )
        )


def request(
    api_client: ApiClient,
    spec: ResourceSpec,
    namespace: str | None,
    label_selector: str | None,
    **params: Any,
) -> BaseHTTPResponse:
    """One raw GET for `spec` (a list page, or a watch when `watch=True`).

    Returns the urllib3 response, unread. A non-2xx status raises ApiException with the
    Status body already read.
    """
    api = spec.api(api_client)
    namespace = spec.namespace or namespace
    if spec.namespaced and namespace:
        assert spec.list_namespaced is not None  # every namespaced spec names its method
        method = getattr(api, spec.list_namespaced)
        params["namespace"] = namespace
    else:
        method = getattr(api, spec.list_all)
    if label_selector:
        params["label_selector"] = label_selector
    if spec.field_selector:
        params["field_selector"] = spec.field_selector
    return method(_preload_content=False, **params)


def check_resource_version(
    api_client: ApiClient,
    spec: ResourceSpec,
    resource_version: str,
    *,
    namespace: str | None = None,
    request_timeout: tuple[float, float] = (10.0, 60.0),
    on_response: Callable[[Any], None] = lambda resp: None,
) -> None:
    """Ask the server whether its store has reached `resource_version`: a list of at most
    one object, "not older than" that version. The server does the comparison (clients
    must not order resourceVersions themselves): a healthy one answers at once, one whose
    store went back in time (an etcd restore) answers 504 "Too large resource version"
    (errors.TOO_LARGE) after waiting ~3 s, and a version it has compacted away 410.
    Raises ApiException for those."""
    resp = request(
        api_client,
        spec,
        namespace,
        None,
        limit=1,
        resource_version=resource_version,
        resource_version_match="NotOlderThan",
        _request_timeout=request_timeout,
    )
    try:
        on_response(resp)
        resp.read()
    finally:
        resp.release_conn()


def list_all(
    api_client: ApiClient,
    spec: ResourceSpec,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    request_timeout: tuple[float, float] = (10.0, 60.0),
    on_response: Callable[[Any], None] = lambda resp: None,
    on_skipped: Callable[[Skipped], None] | None = None,
) -> tuple[list[Record], str]:
    """Every object of `spec`, page by page, as records, and the list's resourceVersion.

    All pages of one list are a consistent snapshot at the first page's resourceVersion
    (docs/list-watch.md), which is where a watch must start. `on_response` sees each open
    response first, so another thread can abort a slow read. An object that cannot be
    decoded is left out, and handed to `on_skipped` (else logged).
    """
    last_expiry: ApiException | None = None
    for _ in range(MAX_LIST_RESTARTS):
        records: list[Record] = []
        token = ""
        try:
            while True:
                params: dict[str, Any] = {"limit": page_size, "_request_timeout": request_timeout}
                if token:
                    params["_continue"] = token
                resp = request(api_client, spec, namespace, label_selector, **params)
                try:
                    on_response(resp)
                    body = resp.read()
                finally:
                    resp.release_conn()
                page = decode_list(body, spec.kind, strict=False)
                for item in page.bad:
                    # Keep the rest of the cluster visible; the bad object is named.
                    if on_skipped is not None:
                        on_skipped(item)
                    else:
                        log.warning("%s: skipped an object: %s", spec.name, item.describe())
                records.extend(page.records)
                token = page.continue_token
                if not token:
                    return records, page.resource_version
        except ApiException as exc:
            if exc.status != 410 or not token:
                raise
            last_expiry = exc
    raise ListExpired(spec.name) from last_expiry
