"""WatchList streams against paginated lists, and protobuf against JSON, on a real
kube-apiserver (issue 20 §3).

Usage: python bench/watchlist_bench.py [--nodes 100] [--daemonsets 20] [--rounds 3]
                                       [--protobuf-python PATH]

Starts the e2e tier's control plane (tests/e2e/controlplane: etcd, kube-apiserver v1.36,
controller manager, scheduler, kwok; built and cached by `make e2e-build`), creates
`--nodes` kwok nodes and `--daemonsets` DaemonSets whose pods the real DaemonSet controller
creates and kwok runs, then:

* initial sync of the pods (and of all six resources) by a `ClusterWatch` with WatchList
  streams and with paginated lists, alternating, each in a fresh process (its own peak RSS);
* the same pods fetched as 500-item pages in JSON and in protobuf
  (`application/vnd.kubernetes.protobuf`): bytes and server time; then decode time of both
  on the same objects — JSON through our decoder into records (`decode_list`), protobuf with
  the `protobuf` package (upb) into messages built from k8s.io/api's generated.proto.
  The protobuf decoder is not a dependency of the project: give a Python that has
  `protobuf` and `grpcio-tools` (for protoc) with `--protobuf-python`, else that part is
  skipped.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGE = 500
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- child: one sync


def child_sync(kubeconfig: Path, mode: str, resources: list[str]) -> dict:
    from dashboard.kube.clients import client_from_kubeconfig
    from dashboard.kube.reflector import ClusterWatch

    client = client_from_kubeconfig(kubeconfig)
    counts: dict[str, int] = {}

    def sink(resource_name: str, event: object) -> None:
        records = getattr(event, "records", None)
        if records is not None:
            counts[resource_name] = len(records)

    rss0 = _peak_mb()
    c0, t0 = _cpu(), time.perf_counter()
    w = ClusterWatch(
        client,
        sink,
        resources=resources,
        identify_first=False,
        watch_list=(mode == "watch-list"),
    )
    try:
        if not w.wait_synced(600):
            raise SystemExit(f"not synced: {w.status}")
        wall = time.perf_counter() - t0
        cpu = _cpu() - c0
        modes = {r: x.stats.list_mode for r, x in w.reflectors.items()}
    finally:
        w.stop()
    return {
        "mode": mode,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(_peak_mb(), 1),
        "rss_before_mb": round(rss0, 1),
        "objects": counts,
        "list_modes": sorted(set(modes.values())),
    }


# ---------------------------------------------------------------------------- cluster set-up


def populate(plane, nodes: int, daemonsets: int, log) -> int:
    from dashboard.kube.clients import client_from_kubeconfig
    from tests.e2e.workload import NAMESPACE, Admin, daemonset_manifest, node_manifest

    admin = Admin(client_from_kubeconfig(plane.admin_kubeconfig))
    admin.create_namespace(NAMESPACE)
    for i in range(nodes):
        manifest = node_manifest(f"general-{i + 1}", "general")
        admin.core.create_node(manifest)
    for d in range(daemonsets):
        admin.create_daemonset(daemonset_manifest(f"bench-{d:02d}", image="bench/agent:1"))
    want = nodes * daemonsets
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        pods = admin.core.list_namespaced_pod(NAMESPACE, _preload_content=False)
        items = json.loads(pods.data)["items"]
        running = sum(p.get("status", {}).get("phase") == "Running" for p in items)
        log(f"{len(items)} / {want} pods, {running} running")
        if len(items) >= want and running >= want:
            return len(items)
        time.sleep(5)
    raise SystemExit("the DaemonSet controller and kwok did not bring every pod up in time")


# ---------------------------------------------------------------------------- JSON vs protobuf


def fetch_pages(plane, accept: str, out: Path) -> dict:
    ctx = ssl.create_default_context(cafile=str(plane.run_dir / "pki" / "ca.crt"))
    token = plane.admin_token
    cont, n, total = "", 0, 0
    t0 = time.perf_counter()
    while True:
        path = f"/api/v1/pods?limit={PAGE}" + (f"&continue={cont}" if cont else "")
        req = urllib.request.Request(
            plane.server + path, headers={"Authorization": f"Bearer {token}", "Accept": accept}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
            body = r.read()
            ctype = r.headers.get("Content-Type", "")
        (out / f"page-{n:05d}").write_bytes(body)
        total += len(body)
        n += 1
        cont = _continue_of(body, ctype)
        if not cont:
            break
    return {
        "content_type": ctype,
        "pages": n,
        "bytes": total,
        "fetch_seconds": round(time.perf_counter() - t0, 3),
    }


def _continue_of(body: bytes, ctype: str) -> str:
    if ctype.startswith("application/json"):
        return json.loads(body).get("metadata", {}).get("continue", "")
    # Protobuf: the continue token is read by the decoder child; fetch one page at a time
    # there would cost a subprocess per page, so ask the JSON twin for the token instead.
    return _PB_CONTINUE.pop(0) if _PB_CONTINUE else ""


_PB_CONTINUE: list[str] = []


def json_decode_seconds(pages: Path) -> dict:
    from dashboard.coverage.records import decode_list

    blobs = [p.read_bytes() for p in sorted(pages.iterdir())]
    best = cpu = float("inf")
    n = 0
    for _ in range(5):
        # CPU time beside wall time: on a loaded machine the wall is mostly waiting.
        t0, c0 = time.perf_counter(), time.process_time()
        n = sum(len(decode_list(b, "Pod").records) for b in blobs)
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return {"pods": n, "seconds_best_of_5": round(best, 4), "cpu_seconds_best_of_5": round(cpu, 4)}


PB_DECODER = textwrap.dedent(
    """
    import glob, json, os, sys, time
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    inc, pages = sys.argv[1], sys.argv[2]
    desc = os.path.join(inc, "all.pb")
    from grpc_tools import protoc
    rc = protoc.main(["protoc", "-I" + inc, "--include_imports", "--descriptor_set_out=" + desc,
                      "k8s.io/api/core/v1/generated.proto",
                      "k8s.io/apimachinery/pkg/runtime/generated.proto"])
    assert rc == 0, rc
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(desc, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    Unknown = message_factory.GetMessageClass(pool.FindMessageTypeByName("k8s.io.apimachinery.pkg.runtime.Unknown"))
    PodList = message_factory.GetMessageClass(pool.FindMessageTypeByName("k8s.io.api.core.v1.PodList"))
    blobs = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(pages, "page-*")))]
    assert all(b[:4] == b"k8s\\x00" for b in blobs)
    best, cpu, n = float("inf"), float("inf"), 0
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for b in blobs:
            lst = PodList.FromString(Unknown.FromString(b[4:]).raw)
            n += len(lst.items)
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    # What the records need, read from the messages (owner, node, phase, readiness):
    t0 = time.process_time()
    for b in blobs:
        for p in PodList.FromString(Unknown.FromString(b[4:]).raw).items:
            owner = [o.uid for o in p.metadata.ownerReferences if o.controller]
            node, phase = p.spec.nodeName, p.status.phase
            ready = [c.status for c in p.status.conditions if c.type == "Ready"]
    fields = time.process_time() - t0
    from google.protobuf.internal import api_implementation
    print(json.dumps({"pods": n, "seconds_best_of_5": round(best, 4),
                      "cpu_seconds_best_of_5": round(cpu, 4),
                      "decode_and_read_fields_cpu_seconds": round(fields, 4),
                      "implementation": api_implementation.Type()}))
    """
)


def protobuf_decode(python: str, pages: Path) -> dict:
    gomod = Path.home() / ".cache" / "daemonviz-e2e" / "gomod"
    # The staging modules at the control plane's version: the schema of the server we ask.
    version = next(iter(sorted(gomod.glob("k8s.io/api@v0.36.*"))), None)
    if version is None:
        return {"skipped": f"no k8s.io/api@v0.36.* in {gomod}"}
    inc = Path(tempfile.mkdtemp(prefix="daemonviz-pb-"))
    (inc / "k8s.io").mkdir()
    tag = version.name.split("@", 1)[1]
    (inc / "k8s.io" / "api").symlink_to(gomod / "k8s.io" / f"api@{tag}")
    (inc / "k8s.io" / "apimachinery").symlink_to(gomod / "k8s.io" / f"apimachinery@{tag}")
    proc = subprocess.run(
        [python, "-c", PB_DECODER, str(inc), str(pages)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"skipped": proc.stderr.strip().splitlines()[-1:]}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "schema": f"k8s.io/api@{tag}"}


# ---------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--daemonsets", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--protobuf-python", help="a Python with protobuf and grpcio-tools")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "KUBECONFIG", "RESOURCES"))
    args = ap.parse_args()
    if args.child:
        mode, kubeconfig, resources = args.child
        print(json.dumps(child_sync(Path(kubeconfig), mode, resources.split(","))))
        return

    from tests.e2e.controlplane.cluster import ControlPlane, build

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    plane = ControlPlane.create(build(log=log), log=log)
    plane.start()
    try:
        pods = populate(plane, args.nodes, args.daemonsets, log)
        sa = str(plane.sa_kubeconfig)
        syncs: dict[str, list[dict]] = {}
        for label, resources in (
            ("pods", "pods"),
            ("all", "nodes,pods,daemonsets,controllerrevisions,services,endpointslices"),
        ):
            for _ in range(args.rounds):
                for mode in ("watch-list", "paginated"):
                    proc = subprocess.run(
                        [sys.executable, __file__, "--child", mode, sa, resources],
                        capture_output=True,
                        text=True,
                        check=True,
                        cwd=ROOT,
                    )
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                    result["load_average_1m"] = round(os.getloadavg()[0], 2)
                    syncs.setdefault(f"{label}:{mode}", []).append(result)
                    log(f"{label} {mode}: {result['seconds']} s, {result['cpu_seconds']} CPU s")

        encodings: dict[str, dict] = {}
        with tempfile.TemporaryDirectory(prefix="daemonviz-pages-") as tmp:
            jdir, pdir = Path(tmp) / "json", Path(tmp) / "pb"
            jdir.mkdir()
            pdir.mkdir()
            encodings["json"] = fetch_pages(plane, "application/json", jdir)
            # Same pages in protobuf: the JSON pages' continue tokens (a token is an opaque
            # server string, the same for either encoding of the same list).
            for p in sorted(jdir.iterdir())[:-1]:
                _PB_CONTINUE.append(json.loads(p.read_bytes())["metadata"]["continue"])
            encodings["protobuf"] = fetch_pages(plane, PROTOBUF, pdir)
            encodings["json"]["decode"] = json_decode_seconds(jdir)
            if args.protobuf_python:
                encodings["protobuf"]["decode"] = protobuf_decode(args.protobuf_python, pdir)
    finally:
        plane.stop()

    def med(rows: list[dict], key: str) -> float:
        vals = sorted(r[key] for r in rows)
        return vals[len(vals) // 2]

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "cluster": {"nodes": args.nodes, "daemonsets": args.daemonsets, "pods": pods},
        "sync_median": {
            k: {
                "seconds": med(v, "seconds"),
                "cpu_seconds": med(v, "cpu_seconds"),
                "peak_rss_mb": med(v, "peak_rss_mb"),
                "list_modes": v[0]["list_modes"],
            }
            for k, v in syncs.items()
        },
        "sync_runs": syncs,
        "encodings": encodings,
    }
    if "decode" in encodings.get("protobuf", {}) and "seconds_best_of_5" in encodings[
        "protobuf"
    ].get("decode", {}):
        j, p = encodings["json"], encodings["protobuf"]
        report["protobuf_vs_json"] = {
            "bytes_ratio": round(p["bytes"] / j["bytes"], 3),
            "decode_ratio": round(
                p["decode"]["seconds_best_of_5"] / j["decode"]["seconds_best_of_5"], 2
            ),
            "decode_cpu_ratio": round(
                p["decode"]["cpu_seconds_best_of_5"] / j["decode"]["cpu_seconds_best_of_5"], 2
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
