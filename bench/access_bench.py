"""Benchmark of the access paths (issue 15): the engine bench's cluster (5,000 nodes × 30
DaemonSets, full ~6 KB pods) plus one Service per DaemonSet with its EndpointSlices (every
daemon pod an endpoint, 100 per slice, as the controller writes them) and 2,000 unrelated
Services, each with a slice of 10 endpoints of pods the dashboard never sees.

Usage: python bench/access_bench.py [--nodes 5000] [--daemonsets 30] [--unrelated 2000]

Measured, each in a fresh process so its peak RSS is its own: the decode + matrix build
from bytes without the access objects (the baseline, as bench/engine_bench.py does it) and
with them, plus how many slices the matrix keeps; then a burst of slice MODIFIED events
(one endpoint's readiness flipped), applied from watch-line bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchkit  # noqa: E402
import engine_bench  # noqa: E402  (the same generated cluster, same fixtures)

PER_SLICE = 100
NAMESPACE = "kube-system"


def _node_names(nodes: int) -> list[str]:
    return [f"ip-10-0-{i // 250}-{i % 250}.ec2.internal" for i in range(nodes)]


def _slice(name: str, service: str, endpoints: list[dict], port: int) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"es-{name}",
            "resourceVersion": "1",
            "generateName": f"{service}-",
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "metrics", "port": port, "protocol": "TCP"}],
    }


def _endpoint(address: str, pod: str, node: str, ready: bool = True) -> dict:
    return {
        "addresses": [address],
        "conditions": {"ready": ready, "serving": ready, "terminating": False},
        "nodeName": node,
        "zone": "us-east-1a",
        "targetRef": {"kind": "Pod", "namespace": NAMESPACE, "name": pod, "uid": f"uid-{pod}"},
    }


def generate(out: Path, nodes: int, daemonsets: int, unrelated: int) -> dict:
    sizes = engine_bench.generate(out, nodes, daemonsets)
    # Give each DaemonSet's template the label its Service selects (the engine bench only
    # rewrites the selector).
    ds_file = out / "DaemonSet-00000.json"
    doc = json.loads(ds_file.read_bytes())
    for ds in doc["items"]:
        ds["spec"]["template"]["metadata"]["labels"]["name"] = ds["metadata"]["name"]
    ds_file.write_bytes(msgspec.json.encode(doc))
    enc = msgspec.json.Encoder()
    names = _node_names(nodes)
    services, slices = [], []
    for d in range(daemonsets):
        ds = f"daemon-{d:02d}"
        services.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": ds, "namespace": NAMESPACE, "uid": f"svc-{ds}"},
                "spec": {
                    "clusterIP": "None",
                    "selector": {"name": ds},
                    "ports": [{"name": "metrics", "port": 80, "targetPort": 9100}],
                },
            }
        )
        for s in range(0, nodes, PER_SLICE):
            eps = [
                _endpoint(f"10.{d}.{i // 250}.{i % 250}", f"{ds}-{i:05d}", names[i])
                for i in range(s, min(s + PER_SLICE, nodes))
            ]
            slices.append(_slice(f"{ds}-{s // PER_SLICE:05x}", ds, eps, 9100))
    for u in range(unrelated):
        svc = f"app-{u:04d}"
        services.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc, "namespace": NAMESPACE, "uid": f"svc-{svc}"},
                "spec": {
                    "clusterIP": f"10.96.{u // 250}.{u % 250}",
                    "selector": {"app": svc},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            }
        )
        eps = [
            _endpoint(f"10.200.{u // 250}.{k}", f"{svc}-{k}", names[(u + k) % nodes])
            for k in range(10)
        ]
        slices.append(_slice(f"{svc}-x", svc, eps, 8080))
    for kind, items in (("Service", services), ("EndpointSlice", slices)):
        for page_no in range(0, len(items), engine_bench.PAGE):
            body = {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}}
            page = items[page_no : page_no + engine_bench.PAGE]
            data = enc.encode({**body, "items": page})
            (out / f"{kind}-{page_no // engine_bench.PAGE:05d}.json").write_bytes(data)
            sizes[f"{kind.lower()}_bytes"] = sizes.get(f"{kind.lower()}_bytes", 0) + len(data)
    sizes.update(services=len(services), slices=len(slices))
    return sizes


def measure_build(out: Path, with_access: bool) -> dict:
    from dashboard.coverage.matrix import Matrix
    from dashboard.coverage.records import decode_list

    kinds = ["Node", "DaemonSet", "Pod"] + (["Service", "EndpointSlice"] if with_access else [])
    start_rss = benchkit.peak_rss_mb()
    c0 = benchkit.cpu_seconds()
    t0 = time.perf_counter()
    m = Matrix()
    lists: dict[str, list] = {}
    for kind in kinds:
        records = lists[kind] = []
        for f in sorted(out.glob(f"{kind}-*.json")):
            records.extend(decode_list(f.read_bytes(), kind).records)
    m.replace_all(lists)
    del lists, records
    elapsed = time.perf_counter() - t0
    in_endpoints = sum(1 for c in m.cells.values() if c.in_service_endpoints)
    result = {
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(benchkit.cpu_seconds() - c0, 2),
        "peak_rss_mb": round(benchkit.peak_rss_mb(), 1),
        "rss_before_mb": round(start_rss, 1),
        "cells": len(m.cells),
        "services_kept": len(m.access.services),
        "slices_kept": len(m.access.slices),
        "cells_in_endpoints": in_endpoints,
    }
    if with_access:
        result["slice_events"] = _slice_events(m, out)
    return result


def _slice_events(m, out: Path, count: int = 300) -> dict:
    """Slice MODIFIED watch lines (one endpoint flipped not ready), decoded and applied."""
    from dashboard.coverage.records import decode_event

    first = json.loads((out / "EndpointSlice-00000.json").read_bytes())["items"]
    lines = []
    for k in range(count):
        es = json.loads(json.dumps(first[k % len(first)]))
        ep = es["endpoints"][k % len(es["endpoints"])]
        ep["conditions"]["ready"] = ep["conditions"]["serving"] = k % 2 == 1
        es["metadata"]["resourceVersion"] = str(10 + k)
        lines.append(msgspec.json.encode({"type": "MODIFIED", "object": es}))
    t0 = time.perf_counter()
    changed = 0
    for line in lines:
        ev = decode_event(line, "EndpointSlice")
        changed += len(m.apply(ev.type, ev.record).cells)
    elapsed = time.perf_counter() - t0
    return {
        "events": count,
        "per_second": round(count / elapsed),
        "cells_changed": changed,
    }


def _child(args: list[str], script: str = __file__) -> dict:
    proc = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--daemonsets", type=int, default=30)
    ap.add_argument("--unrelated", type=int, default=2000)
    ap.add_argument("--child", choices=("baseline", "access"))
    ap.add_argument("--dir")
    ap.add_argument(
        "--before",
        help="another checkout (e.g. `git worktree`/`git archive` of an older commit): its "
        "builds run on the same input, alternating with this one's, for a side-by-side",
    )
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure_build(Path(args.dir), args.child == "access")))
        return
    with tempfile.TemporaryDirectory(prefix="daemonviz-access-bench-") as tmp:
        out = Path(tmp)
        sizes = generate(out, args.nodes, args.daemonsets, args.unrelated)
        report: dict = {
            "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
            "sizes": sizes,
        }
        before = str(Path(args.before) / "bench" / "access_bench.py") if args.before else None
        for child in ("baseline", "access"):
            if before:
                report[f"{child}_before"] = _child(["--child", child, "--dir", tmp], before)
                report[f"{child}_before"]["load"] = os.getloadavg()
            report[child] = _child(["--child", child, "--dir", tmp])
            report[child]["load"] = os.getloadavg()
        report["machine"]["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
