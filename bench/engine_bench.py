"""Benchmark of the coverage engine (issue 2): decode + matrix build from bytes, pod events/s,
and peers (the official client's typed models, orjson into dicts) on the same bytes.

Usage: python bench/engine_bench.py [--nodes 5000] [--daemonsets 30] [--sample 10000]
                                    [--warning-events 20000] [--no-requests]

Objects are generated from the real captured fixtures (tests/fixtures/), so every pod
is a full ~6 KB daemon pod as the API serves it. The lists are written as 500-item pages
(what a paginated LIST returns) to a scratch directory, then each measurement runs in a
fresh subprocess so its peak RSS is its own.

Since issue 14 the build includes what the "why" needs: every daemon container requests
cpu and memory (the matrix keeps each node's requested sum, capacity.py), and the list
holds `--warning-events` core/v1 Warning events (BackOff of crash-looping daemon pods,
node and DaemonSet events, and a quarter about pods the dashboard does not show), decoded
from their own pages and applied last, as `replace_all` does. `--warning-events 0
--no-requests` measures the build as it was before.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from benchkit import cpu_seconds, peak_rss_mb, rss_now_mb

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PAGE = 500
# A child may measure another tree's engine (--compare-ref): the same bench, other code.
sys.path.insert(0, os.environ.get("DAEMONVIZ_BENCH_CODE") or str(ROOT))


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _event(serial: int, kind: str, namespace: str, name: str, reason: str, message: str) -> dict:
    stamp = "2026-12-01T10:00:00Z"
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{name}.{serial:016x}",
            "namespace": "default" if kind == "Node" else namespace,
            "uid": f"ev-{serial}",
            "resourceVersion": str(10_000 + serial),
            "creationTimestamp": stamp,
        },
        "involvedObject": {"kind": kind, "namespace": namespace, "name": name, "apiVersion": "v1"},
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "ip-10-0-0-1.ec2.internal"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 3,
        "type": "Warning",
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    }


def generate(
    out: Path, nodes: int, daemonsets: int, warning_events: int = 0, requests: bool = False
) -> dict:
    """Write nodes/daemonsets/pods (and events) pages as JSON lists; return sizes."""
    node_t = _load("node-eks-ready-worker.json")
    ds_t = _load("daemonset-efa-device-plugin-eks.json")
    pod_ok = _load("pod-daemonset-owned-running-eks.json")
    pod_crash = _load("pod-daemonset-crashloopbackoff-eks.DERIVED.json")
    # Served pods carry managedFields (server-side apply bookkeeping); the captured
    # fixture had them stripped, so add the two entries a daemon pod always has.
    managed = [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2023-07-28T17:10:56Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:generateName": {},
                    "f:labels": {
                        ".": {},
                        "f:controller-revision-hash": {},
                        "f:name": {},
                        "f:pod-template-generation": {},
                    },
                    "f:ownerReferences": {".": {}, 'k:{"uid":"64cbfeb6"}': {}},
                },
                "f:spec": {
                    "f:affinity": {
                        ".": {},
                        "f:nodeAffinity": {
                            ".": {},
                            "f:requiredDuringSchedulingIgnoredDuringExecution": {},
                        },
                    },
                    "f:containers": {
                        'k:{"name":"aws-efa-k8s-device-plugin"}': {
                            ".": {},
                            "f:image": {},
                            "f:imagePullPolicy": {},
                            "f:name": {},
                            "f:resources": {},
                            "f:securityContext": {
                                ".": {},
                                "f:allowPrivilegeEscalation": {},
                                "f:capabilities": {".": {}, "f:drop": {}},
                            },
                            "f:terminationMessagePath": {},
                            "f:terminationMessagePolicy": {},
                            "f:volumeMounts": {
                                ".": {},
                                'k:{"mountPath":"/var/lib/kubelet/device-plugins"}': {
                                    ".": {},
                                    "f:mountPath": {},
                                    "f:name": {},
                                },
                            },
                        }
                    },
                    "f:dnsPolicy": {},
                    "f:enableServiceLinks": {},
                    "f:hostNetwork": {},
                    "f:priorityClassName": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {},
                    "f:tolerations": {},
                    "f:volumes": {
                        ".": {},
                        'k:{"name":"device-plugin"}': {
                            ".": {},
                            "f:hostPath": {".": {}, "f:path": {}, "f:type": {}},
                            "f:name": {},
                        },
                    },
                },
            },
        },
        {
            "manager": "kubelet",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2023-07-28T17:11:03Z",
            "fieldsType": "FieldsV1",
            "subresource": "status",
            "fieldsV1": {
                "f:status": {
                    "f:conditions": {
                        'k:{"type":"ContainersReady"}': {
                            ".": {},
                            "f:lastProbeTime": {},
                            "f:lastTransitionTime": {},
                            "f:status": {},
                            "f:type": {},
                        },
                        'k:{"type":"Initialized"}': {
                            ".": {},
                            "f:lastProbeTime": {},
                            "f:lastTransitionTime": {},
                            "f:status": {},
                            "f:type": {},
                        },
                        'k:{"type":"Ready"}': {
                            ".": {},
                            "f:lastProbeTime": {},
                            "f:lastTransitionTime": {},
                            "f:status": {},
                            "f:type": {},
                        },
                    },
                    "f:containerStatuses": {},
                    "f:hostIP": {},
                    "f:phase": {},
                    "f:podIP": {},
                    "f:podIPs": {".": {}, 'k:{"ip":"192.168.2.48"}': {".": {}, "f:ip": {}}},
                    "f:startTime": {},
                }
            },
        },
    ]
    for pod in (pod_ok, pod_crash):
        pod["metadata"]["managedFields"] = managed
        if requests:  # what a daemon typically asks for: the node's requested sum is kept
            for c in pod["spec"]["containers"]:
                c["resources"] = {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "128Mi"},
                }
    # Drop the instance-type affinity so every synthetic DaemonSet targets every node.
    ds_t["spec"]["template"]["spec"].pop("affinity", None)
    enc = msgspec.json.Encoder()
    sizes = {"pods_bytes": 0, "pods": 0, "events": 0, "events_bytes": 0}
    crashing: list[str] = []

    def write(kind: str, items: list[dict], page_no: int) -> int:
        body = {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}}
        data = enc.encode({**body, "items": items})
        (out / f"{kind}-{page_no:05d}.json").write_bytes(data)
        return len(data)

    node_names = [f"ip-10-0-{i // 250}-{i % 250}.ec2.internal" for i in range(nodes)]
    batch = []
    for i, name in enumerate(node_names):
        n = copy.deepcopy(node_t)
        n["metadata"]["name"] = name
        n["metadata"]["uid"] = f"node-{i}"
        n["metadata"]["labels"]["kubernetes.io/hostname"] = name
        batch.append(n)
    write("Node", batch, 0)

    ds_list = []
    for d in range(daemonsets):
        ds = copy.deepcopy(ds_t)
        ds["metadata"]["name"] = f"daemon-{d:02d}"
        ds["metadata"]["uid"] = f"ds-uid-{d}"
        ds["spec"]["selector"] = {"matchLabels": {"name": f"daemon-{d:02d}"}}
        ds_list.append(ds)
    write("DaemonSet", ds_list, 0)

    page: list[dict] = []
    page_no = 0
    for d, ds in enumerate(ds_list):
        for i, node in enumerate(node_names):
            tmpl = pod_crash if (i * 31 + d) % 50 == 0 else pod_ok  # ~2 % crash-looping
            p = copy.deepcopy(tmpl)
            meta = p["metadata"]
            meta["name"] = f"{ds['metadata']['name']}-{i:05d}"
            if tmpl is pod_crash:
                crashing.append(meta["name"])
            meta["uid"] = f"pod-{d}-{i}"
            meta["ownerReferences"][0]["uid"] = ds["metadata"]["uid"]
            meta["ownerReferences"][0]["name"] = ds["metadata"]["name"]
            meta["labels"]["name"] = ds["metadata"]["name"]
            p["spec"]["nodeName"] = node
            terms = p["spec"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]
            terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] = [node]
            page.append(p)
            if len(page) == PAGE:
                sizes["pods_bytes"] += write("Pod", page, page_no)
                sizes["pods"] += len(page)
                page, page_no = [], page_no + 1
    if page:
        sizes["pods_bytes"] += write("Pod", page, page_no)
        sizes["pods"] += len(page)
    events = []
    for serial in range(warning_events):
        roll = serial % 20
        if roll < 12 and crashing:  # 60 %: the crash-looping daemon pods' BackOff
            ns = ds_list[0]["metadata"]["namespace"]
            name = crashing[serial % len(crashing)]
            ev = _event(serial, "Pod", ns, name, "BackOff", "Back-off restarting failed container")
        elif roll < 14:  # 10 %: nodes
            name = node_names[serial % len(node_names)]
            ev = _event(serial, "Node", "", name, "ContainerGCFailed", "rpc error: deadline")
        elif roll < 15:  # 5 %: DaemonSets (FailedCreate)
            ds = ds_list[serial % len(ds_list)]["metadata"]
            message = f'Error creating: pods "{ds["name"]}-x" is forbidden: exceeded quota'
            ev = _event(serial, "DaemonSet", ds["namespace"], ds["name"], "FailedCreate", message)
        else:  # 25 %: pods the dashboard does not show
            ev = _event(serial, "Pod", "apps", f"web-{serial}", "BackOff", "Back-off pulling")
        events.append(ev)
    for start in range(0, len(events), PAGE):
        sizes["events_bytes"] += write("Event", events[start : start + PAGE], start // PAGE)
        sizes["events"] += len(events[start : start + PAGE])
    return sizes


def _generated(
    out: Path, nodes: int, daemonsets: int, warning_events: int = 0, requests: bool = False
) -> dict:
    """generate(), or the sizes of pages a previous run left in `out` for the same shape."""
    stamp = out / "shape.json"
    shape = {
        "nodes": nodes,
        "daemonsets": daemonsets,
        "warning_events": warning_events,
        "requests": requests,
    }
    if stamp.exists() and json.loads(stamp.read_text()).get("shape") == shape:
        return json.loads(stamp.read_text())["sizes"]
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*-*.json"):
        old.unlink()
    sizes = generate(out, nodes, daemonsets, warning_events, requests)
    stamp.write_text(json.dumps({"shape": shape, "sizes": sizes}))
    return sizes


def measure_build(out: Path) -> dict:
    from dashboard.coverage.matrix import Matrix
    from dashboard.coverage.records import KINDS, decode_list

    start_rss = peak_rss_mb()
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    m = Matrix()
    lists = {}
    # An older engine (--compare-ref) that knows no Events builds without them, as it would.
    for kind in [k for k in ("Node", "DaemonSet", "Pod", "Event") if k in KINDS]:
        records = lists[kind] = []
        for f in sorted(out.glob(f"{kind}-*.json")):
            # One page at a time, as a paginated LIST arrives: bytes never pile up.
            records.extend(decode_list(f.read_bytes(), kind).records)
    m.replace_all(lists)
    del lists, records
    elapsed = time.perf_counter() - t0
    _BUILT["matrix"] = m
    gc.collect()
    retained = rss_now_mb() - start_rss
    return {
        "retained_mb": round(retained, 1),
        "retained_bytes_per_cell": round(retained * 1024 * 1024 / max(len(m.cells), 1)),
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu_seconds() - c0, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(start_rss, 1),
        "cells": len(m.cells),
        "pods": len(m.pods),
        "events_kept": len(getattr(m, "events", ())),
        "nodes_with_requests": sum(1 for load in m.load.by_node.values() if load.requested)
        if hasattr(m, "load")
        else None,
    }


def measure_grid(out: Path) -> dict:
    """The grid's default view of the whole matrix (no filters: groups, collapsed ones
    included): building the view, then rendering its rows' HTML (`attach_html`), the two
    steps of a page load that grow with the cluster. Best of 3 after one warm-up."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daemonviz.settings")
    django.setup()
    from dashboard.grid import fragments
    from dashboard.grid.model import GridFilters, build_grid

    built = measure_build(out)
    m = _BUILT["matrix"]
    timings: dict[str, list[float]] = {"build_grid": [], "attach_html": []}
    view = None
    for _ in range(4):
        t0 = time.perf_counter()
        view = build_grid(m, GridFilters())
        t1 = time.perf_counter()
        fragments.attach_html("bench", view)
        t2 = time.perf_counter()
        timings["build_grid"].append(t1 - t0)
        timings["attach_html"].append(t2 - t1)
    assert view is not None
    return {
        "matrix_build_seconds": built["seconds"],
        "build_grid_seconds": round(min(timings["build_grid"][1:]), 3),
        "attach_html_seconds": round(min(timings["attach_html"][1:]), 3),
        "rows_rendered": view.rows_rendered,
        "cells_rendered": sum(len(r.cells or ()) for g in view.groups for r in g.rows),
        "groups": len(view.groups),
        "columns": len(view.columns),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


_BUILT: dict[str, object] = {}


def measure_events(out: Path, count: int) -> dict:
    """Pod MODIFIED events: decode each watch line from bytes and apply it."""
    from dashboard.coverage.matrix import Matrix
    from dashboard.coverage.records import decode_event, decode_list

    m = Matrix()
    for kind in ("Node", "DaemonSet", "Pod"):
        recs = [
            r
            for f in sorted(out.glob(f"{kind}-*.json"))
            for r in decode_list(f.read_bytes(), kind).records
        ]
        m.replace(kind, recs)
    # Build watch lines from real pod pages, flipping readiness so every event changes a cell.
    pods = json.loads(next(iter(sorted(out.glob("Pod-*.json")))).read_bytes())["items"]
    lines = []
    for i in range(count):
        p = copy.deepcopy(pods[i % len(pods)])
        p["metadata"]["resourceVersion"] = str(1000 + i)
        for c in p["status"]["conditions"]:
            if c["type"] == "Ready":
                # Flip once per pass over the page so every event really changes a cell.
                c["status"] = "False" if (i // len(pods)) % 2 == 0 else "True"
        lines.append(msgspec.json.encode({"type": "MODIFIED", "object": p}))
    t0 = time.perf_counter()
    c0 = cpu_seconds()
    changed = 0
    for line in lines:
        ev = decode_event(line, "Pod")
        changed += len(m.apply(ev.type, ev.record).cells)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    decoded = [decode_event(line, "Pod") for line in lines]
    t1 = time.perf_counter()
    for ev in decoded:
        m.apply(ev.type, ev.record)
    apply_only = time.perf_counter() - t1
    return {
        "events": count,
        "decode_and_apply_per_s": round(count / elapsed),
        "decode_and_apply_per_cpu_s": round(count / cpu),
        "apply_only_per_s": round(count / apply_only),
        "cells_changed": changed,
    }


def measure_peer(out: Path, how: str, sample: int) -> dict:
    pages = sorted(out.glob("Pod-*.json"))[: max(1, sample // PAGE)]
    blobs = [f.read_bytes() for f in pages]
    n = sum(len(json.loads(b)["items"]) for b in blobs)
    t0 = time.perf_counter()
    if how == "msgspec":
        from dashboard.coverage.records import decode_list

        for b in blobs:
            decode_list(b, "Pod")
    elif how == "orjson":
        import orjson

        for b in blobs:
            orjson.loads(b)
    elif how == "typed":
        from kubernetes.client import ApiClient

        api = ApiClient()
        for b in blobs:
            api.deserialize(b.decode(), "V1PodList", "application/json")
    return {
        "pods": n,
        "seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _child(args: list[str], code: Path | None = None) -> dict:
    env = {**os.environ, "DAEMONVIZ_BENCH_CODE": str(code or ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=code or ROOT,
        env=env,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tree_of(ref: str, into: Path) -> Path:
    """The code of git `ref`, unpacked (no worktree, no checkout of this one)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--daemonsets", type=int, default=30)
    ap.add_argument("--sample", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=50_000, help="pod watch events to apply")
    ap.add_argument("--warning-events", type=int, default=20_000, help="Event objects listed")
    ap.add_argument("--no-requests", action="store_true", help="pods without resource requests")
    ap.add_argument("--only-build", action="store_true", help="skip the events and peers")
    ap.add_argument("--skip-peers", action="store_true", help="skip the typed/orjson peers")
    ap.add_argument("--child", nargs="+")
    ap.add_argument(
        "--data", type=Path, help="keep the generated pages here and reuse them next time"
    )
    ap.add_argument(
        "--compare-ref",
        action="append",
        help="(repeatable) also measure the engine of this git ref, each right before this tree's: the "
        "build from bytes (retained bytes per cell side by side) and, unless --only-build, "
        "the pod events",
    )
    args = ap.parse_args()
    if args.child:
        what, out = args.child[0], Path(args.child[1])
        if what == "build":
            result = measure_build(out)
        elif what == "grid":
            result = measure_grid(out)
        elif what == "events":
            result = measure_events(out, args.events)
        else:
            result = measure_peer(out, what, args.sample)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="daemonviz-bench-") as tmp:
        out = args.data or Path(tmp)
        t0 = time.perf_counter()
        sizes = _generated(
            out, args.nodes, args.daemonsets, args.warning_events, not args.no_requests
        )
        gen = time.perf_counter() - t0
        if args.compare_ref:
            with tempfile.TemporaryDirectory(prefix="daemonviz-ref-") as ref_tmp:
                codes = {}
                for n, ref in enumerate(args.compare_ref):
                    codes[ref] = _tree_of(ref, Path(ref_tmp) / str(n))
                report = {
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "input": {"nodes": args.nodes, "daemonsets": args.daemonsets, **sizes},
                    "build_from_bytes": {
                        **{
                            ref: _child(["--child", "build", str(out)], c)
                            for ref, c in codes.items()
                        },
                        "this tree": _child(["--child", "build", str(out)]),
                    },
                }
                if not args.only_build:
                    events = ["--events", str(args.events), "--child", "events", str(out)]
                    report["pod_events"] = {
                        **{ref: _child(events, c) for ref, c in codes.items()},
                        "this tree": _child(events),
                    }
                report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(report, indent=2))
            return
        build = _child(["--child", "build", str(out)])
        if args.only_build:
            print(json.dumps({"load_average": os.getloadavg(), "sizes": sizes, "build": build}))
            return
        events = _child(["--events", str(args.events), "--child", "events", str(out)])
        peers = {
            how: _child(["--sample", str(args.sample), "--child", how, str(out)])
            for how in (() if args.skip_peers else ("msgspec", "orjson", "typed"))
        }
    base = (peers["msgspec"]["seconds"] or 1e-9) if peers else 1e-9
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "input": {
            "nodes": args.nodes,
            "daemonsets": args.daemonsets,
            "pods": sizes["pods"],
            "pod_json_mb": round(sizes["pods_bytes"] / 1e6, 1),
            "avg_pod_kb": round(sizes["pods_bytes"] / max(sizes["pods"], 1) / 1024, 2),
            "warning_events": sizes["events"],
            "event_json_mb": round(sizes["events_bytes"] / 1e6, 1),
            "pod_requests": not args.no_requests,
            "generate_seconds": round(gen, 1),
        },
        "build_from_bytes": build,
        "pod_events": events,
        "peers_10k_pods": {
            how: {**r, "ratio_vs_msgspec": round(r["seconds"] / base, 1)}
            for how, r in peers.items()
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
