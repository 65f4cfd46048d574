"""The live pipeline, wired: every collector gets the grid's and the wall's payload
builders, the channel-layer publisher and the coverage history recorder here, so the
collect package itself renders nothing and knows no page (imports go engine ← kube ←
collect ← pages ← this module).

Used by the embedded default (asgi.py, signals.py) and by `manage.py collect`.
"""

from __future__ import annotations

import atexit
import functools
from typing import Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from dashboard.clusters.config import ClusterConfig
from dashboard.collect import deltarefs
from dashboard.collect.collector import ClusterCollector, Publisher
from dashboard.collect.desired import CollectorFactory
from dashboard.collect.embedded import EmbeddedCollectors
from dashboard.coverage.matrix import Delta, Matrix
from dashboard.coverage.summary import cluster_summary, headline
from dashboard.grid import fragments, frames
from dashboard.history import recorder
from dashboard.wall import aggregate as wall


def delta_payload(cluster: ClusterConfig, matrix: Matrix, delta: Delta) -> dict[str, Any]:
    """The message published for one coalesced delta (called under the collector's lock):
    the grid's rendered pieces and the wall display's bounded view of the cluster, which
    the wall aggregation maintains incrementally (O(touched rows))."""
    summary = cluster_summary(matrix)  # cheap: O(DaemonSets)
    payload = fragments.delta_payload(cluster.slug, matrix, delta, summary)
    payload["wall"] = wall.payload_data(
        matrix, delta, headline(summary), cluster.group_by_label or ""
    )
    return payload


def channel_publisher(layer: BaseChannelLayer) -> Publisher:
    """Publishes a payload to its cluster's group, packed once for every socket. Across
    processes (REDIS_URL, a layer other than the in-memory one) a big payload is stored once
    in Redis and the group gets a reference (dashboard/collect/deltarefs.py)."""
    store = (
        deltarefs.store_for(settings.REDIS_URL)
        if settings.REDIS_URL and not isinstance(layer, InMemoryChannelLayer)
        else None
    )

    async def publish(payload: dict[str, Any]) -> None:
        packed = frames.pack(payload)
        if store is not None and len(packed) > deltarefs.INLINE_BYTES:
            ref = await store.put(
                payload["slug"], payload.get("epoch", ""), payload["revision"], packed
            )
            message = frames.reference_message(payload, ref)
        else:
            message = frames.delta_message(payload, packed)
        await layer.group_send(frames.group_name(payload["slug"]), message)

    return publish


def make_collector(
    config: ClusterConfig,
    *,
    channel_layer: BaseChannelLayer | None = None,
    coalesce: float | None = None,
    history: bool | None = None,
) -> ClusterCollector:
    """A collector for `config`, publishing to the channel layer (the default one unless
    given) and recording coverage history (unless `history` is False or
    DAEMONVIZ_HISTORY is off)."""
    layer = channel_layer if channel_layer is not None else get_channel_layer()
    collector = ClusterCollector(
        config,
        coalesce=settings.DAEMONVIZ_COALESCE_SECONDS if coalesce is None else coalesce,
        coalescing=settings.DAEMONVIZ_COALESCE,
        burst=settings.DAEMONVIZ_COALESCE_BURST,
        quiet=settings.DAEMONVIZ_COALESCE_QUIET_SECONDS,
        payload=delta_payload,
        publish=channel_publisher(layer) if layer is not None else None,
    )
    if history is not False:
        recorder.attach(collector)
    return collector


def collector_factory(**options: Any) -> CollectorFactory:
    """`make_collector` with fixed options, for EmbeddedCollectors and the supervisor."""
    return functools.partial(make_collector, **options)


# The embedded default's collectors (DAEMONVIZ_EMBEDDED_COLLECTOR): started on the ASGI
# server's loop by asgi.py, reconciled by signals.py when a cluster row changes.
embedded = EmbeddedCollectors(make_collector)
atexit.register(embedded.stop_sources_now)
