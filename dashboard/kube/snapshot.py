"""List a live cluster once (for `manage.py coverage --kubeconfig`): no watches, only GETs."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes.client import ApiClient

from dashboard.coverage.records import Record, Skipped

from .errors import ConnectionProblem, ProblemError, RequestContext, classify
from .identity import identify
from .resources import DEFAULT_PAGE_SIZE, RESOURCE_NAMES, RESOURCES, list_all, server_of


class ClusterUnreachable(ProblemError):
    """Listing failed; `.problem` says why in words, `.resource` which list failed ("" when
    the server could not be identified as a Kubernetes API server)."""

    def __init__(self, resource: str, problem: ConnectionProblem):
        super().__init__(problem)
        self.resource = resource


def list_cluster(
    api_client: ApiClient,
    *,
    namespace: str | None = None,
    resources: tuple[str, ...] = RESOURCE_NAMES,
    page_size: int = DEFAULT_PAGE_SIZE,
    request_timeout: tuple[float, float] = (10.0, 60.0),
    on_skipped: Callable[[Skipped], None] | None = None,
) -> dict[str, list[Record]]:
    """Every node, pod, DaemonSet and ControllerRevision, as records, by resource name.

    Pods are all listed (a DaemonSet's pods cannot be selected by label, docs/cells.md);
    non-DaemonSet pods have `owner_uid == ""` and are for the caller to drop. The server is
    identified first (`identity.py`). Raises `ClusterUnreachable` with the cause in words.
    Objects that cannot be decoded are left out and handed to `on_skipped`.
    """
    try:
        # A web page or any other HTTP server at that address is said to be one, instead of
        # "API path not found" for the first resource listed.
        identify(api_client, max(request_timeout))
    except Exception as exc:
        context = RequestContext(verb="get", server=server_of(api_client))
        raise ClusterUnreachable("", classify(exc, context)) from exc
    out: dict[str, list[Record]] = {}
    for name in resources:
        spec = RESOURCES[name]
        try:
            out[name], _ = list_all(
                api_client,
                spec,
                namespace=namespace,
                page_size=page_size,
                request_timeout=request_timeout,
                on_skipped=on_skipped,
            )
        except Exception as exc:
            context = spec.context("list", namespace, server_of(api_client))
            raise ClusterUnreachable(name, classify(exc, context)) from exc
    return out
