"""The pod templates of a few DaemonSets, as the API server stores them (defaults filled in),
for the placement preview to tell a template change from an unchanged one (docs/plan.md).
One GET per DaemonSet; a DaemonSet that does not exist yet has no template."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from kubernetes.client import ApiClient, AppsV1Api
from kubernetes.client.exceptions import ApiException

MAX_BYTES = 4 * 1024 * 1024  # one DaemonSet object; far above a real one


def daemonset_templates(
    api_client: ApiClient,
    keys: Iterable[str],
    request_timeout: tuple[float, float] = (10.0, 30.0),
) -> dict[str, dict[str, Any]]:
    """`spec.template` of each existing DaemonSet of `keys` ("namespace/name")."""
    apps = AppsV1Api(api_client)
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        namespace, _, name = key.partition("/")
        try:
            # _preload_content=False: the raw urllib3 response, not a typed model.
            resp: Any = apps.read_namespaced_daemon_set(
                name, namespace, _preload_content=False, _request_timeout=request_timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                continue  # a new DaemonSet
            raise
        try:
            body = resp.read(MAX_BYTES + 1)
        finally:
            resp.release_conn()
        if len(body) > MAX_BYTES:
            continue  # compared by what the record keeps instead
        try:
            obj = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            continue
        template = (obj.get("spec") or {}).get("template") if isinstance(obj, dict) else None
        if isinstance(template, dict):
            out[key] = template
    return out
