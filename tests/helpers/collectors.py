"""Collectors as the tests build them: the production payload builder, and a publisher
only when a channel layer is given (no history unless a test attaches it)."""

from __future__ import annotations

from channels.layers import BaseChannelLayer

from dashboard import pipeline
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector


def make(
    config: ClusterConfig, layer: BaseChannelLayer | None = None, coalesce: float = 0.25
) -> ClusterCollector:
    return ClusterCollector(
        config,
        coalesce=coalesce,
        payload=pipeline.delta_payload,
        publish=pipeline.channel_publisher(layer) if layer is not None else None,
    )
