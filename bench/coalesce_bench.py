"""Store write -> collector drain, fixed tick against adaptive coalescing, in one process
(issue 20, section 4): the stage of change -> DOM that coalescing decides, without the
browser and the sockets around it, so it can be compared on a busy machine.

Usage: python bench/coalesce_bench.py [--churn 300] [--seconds 20] [--nodes 1000]

One simulated `large` cluster (seed 7, 20 DaemonSets) with its clock running, one
collector built by `pipeline.make_collector` (the production payload builder; no channel
layer, no history). After the initial sync and its backlog, four windows switch the
collector's `coalescing` in the order fixed, adaptive, adaptive, fixed (so a drift of the
machine favours neither). Bench-only wrappers stamp every store write (monotonic clock)
and record, per drain, the oldest write it picked up. Prints one JSON line per window:
load average, drains that carried writes per second, write -> drain p50/p95 (oldest write
of each drain, and every write), and the process's CPU per store write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(values: list[float], q: float) -> float | None:
    v = sorted(values)
    return round(1000 * v[min(len(v) - 1, int(q / 100 * len(v)))], 1) if v else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--churn", type=float, default=300.0, help="simulated events per minute")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    ap.add_argument("--nodes", type=int, default=1000)
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daemonviz.settings")
    import django

    django.setup()
    from dashboard import pipeline
    from dashboard.clusters.config import ClusterConfig
    from dashboard.collect import sources
    from dashboard.simulator import store as store_mod

    stamps: dict[int, float] = {}
    orig_append = store_mod.ObjectStore._append

    def _append(self, ev):
        stamps[ev.rv] = time.monotonic()
        orig_append(self, ev)

    store_mod.ObjectStore._append = _append
    window: dict = {"cur": None, "data": {}}
    orig_drain = sources.SimulatedSource.drain

    def drain(self):
        before = self._rv
        out = orig_drain(self)
        t, after = time.monotonic(), self._rv
        if before is not None and window["cur"] and after and after > before:
            ws = [stamps.pop(rv) for rv in range(before + 1, after + 1) if rv in stamps]
            if ws:
                d = window["data"].setdefault(
                    window["cur"], {"oldest": [], "per_write": [], "drains": 0, "writes": 0}
                )
                d["oldest"].append(t - min(ws))
                d["per_write"] += [t - w for w in ws]
                d["drains"] += 1
                d["writes"] += len(ws)
        return out

    sources.SimulatedSource.drain = drain

    async def run() -> None:
        config = ClusterConfig(slug="k1", name="k1", scenario="large", nodes=args.nodes,
                               daemonsets=20, seed=7, churn=args.churn)  # fmt: skip
        collector = pipeline.make_collector(config, history=False)
        collector.start()
        while not collector.matrix.cells:
            await asyncio.sleep(0.1)
        await asyncio.sleep(30)  # the backlog of the initial sync drains first
        for i, mode in enumerate(["fixed", "adaptive", "adaptive", "fixed"]):
            collector.coalescing = mode
            await asyncio.sleep(1)
            key = f"{i}-{mode}"
            window["cur"], cpu0, load0 = key, time.process_time(), os.getloadavg()[0]
            await asyncio.sleep(args.seconds)
            window["cur"], cpu = None, time.process_time() - cpu0
            d = window["data"].get(key, {"oldest": [], "per_write": [], "drains": 0, "writes": 0})
            print(json.dumps({
                "window": key, "churn": args.churn, "load": round(load0, 1),
                "drains_with_writes_per_s": round(d["drains"] / args.seconds, 2),
                "writes": d["writes"],
                "oldest_write_to_drain_p50_p95_ms": [pct(d["oldest"], 50), pct(d["oldest"], 95)],
                "per_write_to_drain_p50_p95_ms": [pct(d["per_write"], 50), pct(d["per_write"], 95)],
                "process_cpu_ms_per_write": round(1000 * cpu / d["writes"], 3) if d["writes"] else None,
            }), flush=True)  # fmt: skip
        await collector.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
