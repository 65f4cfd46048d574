"""Collectors as the tests build them: the production payload builder, and a publisher
only when a channel layer is given (no history unless a test attaches it); clusters read
through a kubeconfig (the fake API server's, the real control plane's) and a collector
following one for the length of a block; and the reference a collector is judged against:
the matrix a fresh client builds from a store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from channels.layers import BaseChannelLayer

from dashboard import pipeline
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import DecodeError, decode
from dashboard.simulator.store import ObjectStore

# The resources the matrix is built from, and their kinds.
KINDS = {
    "nodes": "Node",
    "daemonsets": "DaemonSet",
    "pods": "Pod",
    "controllerrevisions": "ControllerRevision",
    # Access paths (the simulator's demo has Services and EndpointSlices for two daemons).
    "services": "Service",
    "endpointslices": "EndpointSlice",
}


def make(
    config: ClusterConfig,
    layer: BaseChannelLayer | None = None,
    coalesce: float = 0.25,
    **options: Any,
) -> ClusterCollector:
    """`options`: the collector's coalescing knobs (coalescing, burst, quiet)."""
    return ClusterCollector(
        config,
        coalesce=coalesce,
        **options,
        payload=pipeline.delta_payload,
        publish=pipeline.channel_publisher(layer) if layer is not None else None,
    )


def kubeconfig_cluster(kubeconfig: Path | str, slug: str, **fields: Any) -> ClusterConfig:
    """A cluster read through the kubeconfig file `kubeconfig`, named after its slug unless
    `name` is among `fields` (scope, grouping, …)."""
    fields.setdefault("name", slug)
    return ClusterConfig(slug=slug, source="kubeconfig", kubeconfig_path=str(kubeconfig), **fields)


@contextmanager
def running(
    config: ClusterConfig, layer: BaseChannelLayer | None = None
) -> Iterator[ClusterCollector]:
    """A collector (as `make` builds it) with its source started; the source stops when the
    block ends, however it ends."""
    collector = make(config, layer)
    collector.start_source()
    try:
        yield collector
    finally:
        collector.stop_source()


def synced(collector: ClusterCollector, seconds: float = 20.0) -> bool:
    """Tick until the collector's source reports synced; whether it did."""
    return tick_until(collector, lambda: collector.status.state == "synced", seconds)


def fresh_matrix(store: ObjectStore) -> Matrix:
    """The matrix a client that lists `store` right now builds: decoded from the bytes the
    server sends, leaving out (as every client must) what cannot be decoded."""
    lists = {}
    for resource, kind in KINDS.items():
        records = []
        for _, data in store.list(resource)[0]:
            try:
                records.append(decode(kind, data))
            except DecodeError:
                continue
        lists[kind] = records
    m = Matrix()
    m.replace_all(lists)
    return m


def tick_until(
    collector: ClusterCollector, done: Callable[[], bool], seconds: float = 20.0
) -> bool:
    """Tick as the collector's loop does until `done()`; whether it came true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        collector.tick()
        if done():
            return True
        time.sleep(0.05)
    return False
