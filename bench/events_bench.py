"""Benchmark of the event book (issue 14): memory stays flat under a steady stream of
Warning events.

Usage: python bench/events_bench.py [--nodes 5000] [--daemonsets 30] [--rate 50]
                                    [--seconds 300] [--troubled-pods 500]

One process, the collector's engine path: the engine bench's cluster (full ~6 KB daemon
pods from the captured fixtures) is built from bytes, then core/v1 Warning events arrive
as watch lines at `rate` per second for `seconds`. Every tick (0.25 s, the collector's
coalescing) decodes the lines that are due and applies them with `Matrix.apply_many`;
every 10 s `Matrix.refresh_timed` runs (it expires events), as `ClusterCollector.run`
does. RSS (from /proc/self/statm) and the book's size are sampled every 10 s.

The stream is the worst case for memory: every event is a new Event object (a fresh
name; one in four instead bumps the count of an earlier one, as the kubelet's
aggregation does), spread over a *troubled set* — `troubled-pods` daemon pods (BackOff,
Unhealthy, FailedMount), 50 nodes and every DaemonSet (FailedCreate) — plus one event in
five about a pod the dashboard does not show (dropped on arrival). The book keeps 5 per
object, so it fills within the first minute or two and must then stay at its bound.

CPU is reported two ways: the process's whole CPU (generating the lines included) and the
decode + apply share alone, as a fraction of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from benchkit import cpu_seconds, rss_now_mb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TICK = 0.25
TIMED_REFRESH = 10.0
SAMPLE_EVERY = 10.0


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Stream:
    """Watch lines of core/v1 Warning events, as the API server sends them."""

    def __init__(self, nodes: list[str], daemonsets: list[str], pods: list[str], seed: int):
        self.rng = random.Random(seed)
        self.nodes, self.daemonsets, self.pods = nodes, daemonsets, pods
        self.sent: list[dict] = []  # a bounded window of earlier events, for count bumps
        self.serial = 0
        self.enc = msgspec.json.Encoder()

    def _new(self, now: float) -> dict:
        self.serial += 1
        roll = self.rng.random()
        if roll < 0.60:
            kind, ns, name = "Pod", "kube-system", self.rng.choice(self.pods)
            reason, message, component = self.rng.choice(
                [
                    ("BackOff", "Back-off restarting failed container app in pod", "kubelet"),
                    (
                        "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        "kubelet",
                    ),
                    (
                        "FailedMount",
                        'MountVolume.SetUp failed for volume "config" : configmap "x" not found',
                        "kubelet",
                    ),
                ]
            )
        elif roll < 0.70:
            kind, ns, name = "Node", "", self.rng.choice(self.nodes)
            reason, message, component = (
                "ContainerGCFailed",
                "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
                "kubelet",
            )
        elif roll < 0.80:
            kind, ns, name = "DaemonSet", "kube-system", self.rng.choice(self.daemonsets)
            reason, component = "FailedCreate", "daemonset-controller"
            message = (
                f'Error creating: pods "{name}-{self.serial:x}" is forbidden: exceeded quota: '
                "pods, requested: pods=1, used: pods=40, limited: pods=40"
            )
        else:  # a pod the matrix does not show: dropped on arrival
            kind, ns, name = "Pod", "apps", f"web-{self.rng.randrange(100_000)}"
            reason, message, component = "BackOff", "Back-off pulling image", "kubelet"
        event_ns = "default" if kind == "Node" else ns
        return {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": f"{name}.{self.serial:016x}",
                "namespace": event_ns,
                "uid": f"ev-{self.serial}",
                "resourceVersion": str(1_000_000 + self.serial),
                "creationTimestamp": _stamp(now),
            },
            "involvedObject": {
                "kind": kind,
                "namespace": ns,
                "name": name,
                "uid": f"uid-{name}",
                "apiVersion": "v1",
            },
            "reason": reason,
            "message": message,
            "source": {"component": component, "host": self.rng.choice(self.nodes)},
            "firstTimestamp": _stamp(now),
            "lastTimestamp": _stamp(now),
            "count": 1,
            "type": "Warning",
            "eventTime": None,
            "reportingComponent": "",
            "reportingInstance": "",
        }

    def line(self, now: float) -> bytes:
        if self.sent and self.rng.random() < 0.25:
            ev = self.rng.choice(self.sent)  # the same event seen again: count bumped
            self.serial += 1
            ev["count"] += 1
            ev["lastTimestamp"] = _stamp(now)
            ev["metadata"]["resourceVersion"] = str(1_000_000 + self.serial)
            kind = "MODIFIED"
        else:
            ev = self._new(now)
            self.sent.append(ev)
            del self.sent[:-2000]
            kind = "ADDED"
        return self.enc.encode({"type": kind, "object": ev})


def run(args: argparse.Namespace) -> dict:
    import engine_bench

    from dashboard.coverage.matrix import Matrix
    from dashboard.coverage.records import decode_event, decode_list

    with tempfile.TemporaryDirectory(prefix="daemonviz-events-bench-") as tmp:
        out = Path(tmp)
        engine_bench.generate(out, args.nodes, args.daemonsets)
        rss_empty = round(rss_now_mb(), 1)
        m = Matrix()
        lists: dict[str, list] = {}
        for kind in ("Node", "DaemonSet", "Pod"):
            lists[kind] = [
                r
                for f in sorted(out.glob(f"{kind}-*.json"))
                for r in decode_list(f.read_bytes(), kind).records
            ]
        m.replace_all(lists)
        del lists
    nodes = sorted(m.nodes)
    daemonsets = sorted(ds.name for ds in m.daemonsets.values())
    rng = random.Random(args.seed)
    # The troubled pods are those of red cells (crash-looping ones): their events are
    # attached to cells and re-classify them, the expensive path.
    red = sorted(c.pod for c in m.cells.values() if c.pod and c.state.value != "healthy")
    rest = sorted(p.name for p in m.pods.values() if p.name not in set(red))
    troubled = (red + rest)[: min(args.troubled_pods, len(m.pods))]
    stream = Stream(rng.sample(nodes, min(50, len(nodes))), daemonsets, troubled, args.seed)

    rss_built = round(rss_now_mb(), 1)
    samples = []
    t0 = time.time()
    c0 = cpu_seconds()
    engine_cpu = 0.0
    sent = 0
    next_tick = t0
    last_refresh = t0
    next_sample = t0
    cells_changed = 0
    while True:
        now = time.time()
        if now >= next_sample:
            samples.append(
                {
                    "t": round(now - t0),
                    "rss_mb": round(rss_now_mb(), 1),
                    "events_kept": len(m.events),
                    "objects_with_events": m.events.objects(),
                    "events_sent": sent,
                }
            )
            next_sample += SAMPLE_EVERY
        if now - t0 >= args.seconds:
            break
        due = int((now - t0) * args.rate) - sent
        lines = [stream.line(now) for _ in range(max(0, due))]
        sent += len(lines)
        e0 = cpu_seconds()
        batch = []
        for line in lines:
            ev = decode_event(line, "Event")
            if ev.record is not None:
                batch.append((ev.type, ev.record))
        if batch:
            cells_changed += len(m.apply_many(batch).cells)
        if now - last_refresh >= TIMED_REFRESH:
            last_refresh = now
            m.refresh_timed()
        engine_cpu += cpu_seconds() - e0
        next_tick += TICK
        time.sleep(max(0.0, next_tick - time.time()))
    wall = time.time() - t0
    cpu = cpu_seconds() - c0
    steady = [s["rss_mb"] for s in samples if s["t"] >= args.seconds / 3]
    return {
        "machine": {"cpus": os.cpu_count(), "load_average_end": os.getloadavg()},
        "input": {
            "nodes": args.nodes,
            "daemonsets": args.daemonsets,
            "pods": len(m.pods),
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "troubled_pods": len(troubled),
        },
        "rss_mb": {"before_build": rss_empty, "after_build": rss_built},
        "events_sent": sent,
        "events_per_s_achieved": round(sent / wall, 1),
        "cells_changed": cells_changed,
        "cpu_pct_of_one_core": round(100 * cpu / wall, 2),
        "decode_apply_cpu_pct_of_one_core": round(100 * engine_cpu / wall, 2),
        "steady_rss_mb": {"min": min(steady), "max": max(steady)} if steady else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--daemonsets", type=int, default=30)
    ap.add_argument("--rate", type=float, default=50.0, help="Warning events per second")
    ap.add_argument("--seconds", type=float, default=300.0, help="how long the stream runs")
    ap.add_argument("--troubled-pods", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    result = run(args)
    result["machine"]["load_average_start"] = load
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
