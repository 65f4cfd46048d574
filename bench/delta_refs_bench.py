"""Publishing a big delta across processes (issue 20, section 1): inline in the channel
message, as before, beside stored once in Redis and published by reference, in one run.

Usage: python bench/delta_refs_bench.py [--workers 3 10] [--rows 1000] [--reps 5]

A simulated 1,000 x 20 cluster is synced in process and a delta of `rows` x 20 cells (a
rollout of the whole cluster) rendered by the production payload builder. A real Redis
(Debian's redis-server, 127.0.0.1, free port) carries it through channels-redis to
`workers` web workers — one RedisChannelLayer each, as each daphne process has its own
queue — with one socket channel each (channels-redis writes one copy per process, not per
socket). Measured per publication:

  publish_ms     the collector's `await publish(payload)` (pack, [SET,] group_send)
  deliver_ms     publish + every worker receiving the message and holding the decoded
                 payload (inline: decode; by reference: GET + decode, once per worker)
  redis_in_mb    bytes Redis read from its clients for the publication (INFO stats)
  backlog_mb     Redis memory for `reps` publications no worker has drained yet (a worker
                 busy decoding a snapshot, say): what piles up while it is busy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchkit import loadavg, setup_django
from fanout_bench import synced_collector


def _info(client, section: str, field: str) -> int:
    return int(client.info(section)[field])


async def measure(url: str, mode: str, workers: int, payload: dict, reps: int) -> dict:
    import redis
    from channels.layers import BaseChannelLayer
    from channels_redis.core import RedisChannelLayer

    from daemonviz.settings import redis_channel_layer
    from dashboard import pipeline
    from dashboard.grid import frames

    client = redis.Redis.from_url(url)
    client.flushall()
    config = redis_channel_layer(url)["CONFIG"]
    layers = [RedisChannelLayer(**config, capacity=1000) for _ in range(workers)]
    channels = []
    for layer in layers:
        channel = await layer.new_channel()
        await layer.group_add(frames.group_name("k1"), channel)
        channels.append(channel)
    collector: BaseChannelLayer = RedisChannelLayer(**config)

    async def inline(p: dict) -> None:  # the publisher before this change
        await collector.group_send(frames.group_name("k1"), frames.delta_message(p))

    publish = inline if mode == "inline" else pipeline.channel_publisher(collector)
    base = payload["revision"]
    publish_s, deliver_s, redis_in = [], [], []
    for rep in range(reps):
        p = {**payload, "revision": base + 1 + rep}
        before = _info(client, "stats", "total_net_input_bytes")
        t0 = time.perf_counter()
        await publish(p)
        publish_s.append(time.perf_counter() - t0)
        redis_in.append(_info(client, "stats", "total_net_input_bytes") - before)
        for layer, channel in zip(layers, channels, strict=True):
            message = await layer.receive(channel)
            frames._unpacked.clear()  # each worker is a process of its own
            assert await frames.unpacked(message) is not None
        deliver_s.append(time.perf_counter() - t0)
    # The backlog: `reps` publications with no worker draining.
    used = _info(client, "memory", "used_memory")
    for rep in range(reps):
        await publish({**payload, "revision": base + 100 + rep})
    backlog = _info(client, "memory", "used_memory") - used
    for layer in [*layers, collector]:
        await layer.flush()
    return {
        "publish_ms_median": round(statistics.median(publish_s) * 1000, 1),
        "deliver_ms_median": round(statistics.median(deliver_s) * 1000, 1),
        "redis_in_mb": round(statistics.median(redis_in) / 1e6, 2),
        "backlog_mb": round(backlog / 1e6, 1),
    }


async def run(args) -> dict:
    from django.conf import settings

    from dashboard import pipeline
    from dashboard.coverage.matrix import Delta
    from dashboard.grid import frames
    from tests.helpers import services
    from tests.helpers.processes import stop_process

    collector = synced_collector(1000, 20)
    m = collector.matrix
    rows = set(sorted(m.nodes)[: args.rows])
    delta = Delta(m.revision, cells={k: c for k, c in m.cells.items() if k[0] in rows})
    delta.changed_daemonsets = sorted(m.daemonsets)
    payload = pipeline.delta_payload(collector.cluster, m, delta)
    collector.stop_source()
    packed = len(frames.pack(payload))

    server = services.start_redis(Path(tempfile.mkdtemp()))
    settings.REDIS_URL = server.url
    results = {}
    try:
        for workers in args.workers:
            for mode in ("inline", "reference"):
                results[f"{workers} workers, {mode}"] = await measure(
                    server.url, mode, workers, payload, args.reps
                )
    finally:
        stop_process(server.proc)
    return {
        "setup": {
            "cluster": "simulated large, 1,000 nodes x 20 DaemonSets",
            "cells_in_delta": len(payload["cells"]),
            "packed_payload_mb": round(packed / 1e6, 2),
            "reps": args.reps,
            "load": loadavg(),
        },
        "results": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    setup_django()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
