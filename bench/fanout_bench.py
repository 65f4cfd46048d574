"""Server-side fan-out of one big delta to many grid sockets: the old frame format beside
the current one, in one run (issue 4, latency goal).

Usage: python bench/fanout_bench.py [--sockets 51] [--rows 48] [--reps 7]

A simulated 1,000 x 20 cluster is synced in process; a delta of `rows` x 20 cells (48 rows
= 960 cells, the largest rollout frame the browser benchmark saw) is rendered by
`fragments.delta_payload`, then published through the real in-memory channel layer to
`sockets` channels, and every channel's message is turned into its frame text and UTF-8
bytes, as each GridConsumer and daphne do. All of it runs on one event loop, which in the
server is the loop every socket and page shares.

  before: the payload carried each changed cell as full HTML (~480 B: names twice, the
          link, title and aria-label) and crossed the layer as a nested dict (the in-memory
          layer deep-copies it per socket); every consumer joined its own frame.
  after:  cells as ids + shared skeletons, the payload packed once (msgpack bytes), each
          process unpacks it once and builds one frame per distinct filter set
          (`dashboard.grid.frames`).

The "before" format is emulated here from the same rendered pieces (the old code is in
git history: `fragments.client_frame` before the JSON frames).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from benchkit import setup_django

ROOT = Path(__file__).resolve().parents[1]


def synced_collector(nodes: int, daemonsets: int):
    from dashboard import pipeline
    from dashboard.clusters.config import ClusterConfig
    from dashboard.collect.collector import ClusterCollector

    # The production payload builder from the first tick on, as a running collector has:
    # the wall's aggregate of the matrix is then kept up to date, not built by the
    # measured delta.
    collector = ClusterCollector(
        ClusterConfig(
            slug="k1", name="k1", scenario="large", nodes=nodes, daemonsets=daemonsets, churn=0
        ),
        payload=pipeline.delta_payload,
    )
    collector.start_source(run_clock=False)
    deadline = time.monotonic() + 120
    while len(collector.matrix.nodes) < nodes or not collector.matrix.pods:
        collector._compute()
        if time.monotonic() > deadline:
            raise SystemExit("the simulated cluster did not sync")
        time.sleep(0.05)
    for _ in range(5):
        collector._compute()
    return collector


def legacy_payload(payload: dict) -> dict:
    """The same payload with cells as the old format carried them: full out-of-band HTML."""
    from dashboard.grid import fragments

    cells = []
    for node, ds_key, _cid, index in payload["cells"]:
        full = fragments.fill_cell(
            payload["skeletons"][index], payload["cell_url"], node, ds_key
        ).replace(' role="gridcell"', ' role="gridcell" hx-swap-oob="true"', 1)
        cells.append([node, ds_key, full])
    out = {k: v for k, v in payload.items() if k not in ("skeletons", "cell_url")}
    out["cells"] = cells
    return out


def legacy_frame(payload: dict, filters) -> str:
    """The old per-socket frame: a revision marker, the visible cells' HTML, the rest (the
    rest is what `frames.oob_html` still builds)."""
    from dashboard.grid import frames

    parts = [
        f'<div id="live-rev" hx-swap-oob="true" hidden data-revision="{payload["revision"]}"'
        f' data-base="{payload["base"]}" data-epoch="{payload["epoch"]}"></div>'
    ]
    q = filters.q.lower()
    for node, ds_key, html in payload["cells"]:
        if filters.column_visible(ds_key) and (not q or q in node.lower()):
            parts.append(html)
    parts.append(frames.oob_html(payload, filters))
    return "".join(parts)


async def fan_out(layer, channels: list[str], message: dict, frame_of) -> tuple[float, list[int]]:
    """group_send + every channel's receive + frame + UTF-8 encode; wall seconds, frame sizes."""
    t0 = time.perf_counter()
    await layer.group_send("bench", message)
    sizes = []
    for name in channels:
        received = await layer.receive(name)
        sizes.append(len(frame_of(received).encode("utf-8")))
    return time.perf_counter() - t0, sizes


async def run(args) -> dict:
    from channels.layers import InMemoryChannelLayer

    from dashboard import pipeline
    from dashboard.coverage.matrix import Delta
    from dashboard.grid import frames
    from dashboard.grid.model import GridFilters

    collector = synced_collector(1000, 20)
    m = collector.matrix
    rows = set(sorted(m.nodes)[: args.rows])
    delta = Delta(m.revision, cells={k: c for k, c in m.cells.items() if k[0] in rows})
    delta.changed_daemonsets = sorted(m.daemonsets)
    t0 = time.perf_counter()
    payload = pipeline.delta_payload(collector.cluster, m, delta)
    render_s = time.perf_counter() - t0
    payload["base"] = payload["revision"] - 1
    old_payload = legacy_payload(payload)
    filters = GridFilters(group="-", expand=("*",))

    layer = InMemoryChannelLayer(capacity=10_000)
    channels = [await layer.new_channel() for _ in range(args.sockets)]
    for name in channels:
        await layer.group_add("bench", name)

    results: dict[str, list] = {"before": [], "after": []}
    sizes: dict[str, list[int]] = {}
    for _ in range(args.reps):
        old_msg = {"type": "grid.delta", "payload": old_payload}
        t, s = await fan_out(
            layer, channels, old_msg, lambda e: legacy_frame(e["payload"], filters)
        )
        results["before"].append(t)
        sizes["before"] = s
        # A fresh revision each time, as live deltas have: nothing is reused across reps.
        payload = {**payload, "revision": payload["revision"] + 1}
        t1 = time.perf_counter()
        new_msg = frames.delta_message(payload)
        pack = time.perf_counter() - t1
        t, s = await fan_out(layer, channels, new_msg, lambda e: frames.frame_for(e, filters))
        results["after"].append(t + pack)
        sizes["after"] = s
    return {
        "setup": {
            "cluster": "simulated large, 1,000 nodes x 20 DaemonSets",
            "cells_in_delta": len(payload["cells"]),
            "sockets": args.sockets,
            "reps": args.reps,
            "delta_payload_render_ms": round(render_s * 1000, 1),
            "skeletons": len(payload["skeletons"]),
            "channel_layer": "channels.layers.InMemoryChannelLayer",
        },
        "per_frame_ms_median": {
            k: round(statistics.median(v) * 1000, 1) for k, v in results.items()
        },
        "per_frame_ms_all": {k: [round(x * 1000, 1) for x in v] for k, v in results.items()},
        "frame_bytes_per_socket": {k: v[0] for k, v in sizes.items()},
        "bytes_for_all_sockets_mb": {k: round(sum(v) / 1e6, 2) for k, v in sizes.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sockets", type=int, default=51)
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    setup_django()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
