"""Benchmark of the kube layer (issue 3): the dashboard's process syncing the `large`
simulated cluster from the fake API server over real HTTP, sustained pod churn, and peers.

Usage: python bench/kube_bench.py [--nodes 5000] [--daemonsets 30] [--rate 1000]
                                  [--churn-seconds 30] [--sample 10000] [--no-kubectl]

Processes (each measurement in its own process, so its peak RSS is its own):

* server  — `Simulator.from_scenario("large", ...)` served by `FakeApiServer` on 127.0.0.1,
            exactly as `manage.py fakeapiserver` does (simulator clock not started, so the
            only writes during the churn phase are the bench's own), plus a churn driver
            switched on over stdin. No auth token: kubectl never sends one over plain http.
* sync    — the dashboard's side, through the collector's own code path: `KubeSource`
            (client_from_kubeconfig -> ClusterWatch -> reflector threads -> deque) drained
            by a loop that does what `ClusterCollector.run` does with DAEMONVIZ_COALESCE=fixed
            (sleep `coalesce`, drain,
            `ClusterCollector._apply`: `replace_all` of the Replace records, `apply_many`
            of the Changes), minus rendering the websocket payload. It measures the initial
            sync, stays up for the churn phase, then reports.
* typed / raw / podlist / kubectl — the peers, against the same (then idle) server.

Churn lag, how it is measured: the server's driver modifies existing daemon pods at a
fixed rate (flips readiness of the pod and its containers, bumps restartCount, stamps the
wall-clock send time into the `bench.daemonviz/sent-at` annotation) with `store.put`,
and keeps (resourceVersion, sent-at) for each write. The records the dashboard decodes do
not keep annotations, but they keep the resourceVersion, which is unique per write; the
sync process logs (resourceVersion, time) when each Change leaves the reflector
(`received`) and when the tick that applied it to the Matrix returned (`applied`). Both
processes read the same host clock (time.time()), so lag = applied - sent per event,
joined on resourceVersion after the run (side-channel JSON files).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchkit import cpu_seconds, peak_rss_mb, rss_now_mb, setup_django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENT_AT = "bench.daemonviz/sent-at"


class GcPauses:
    """Python's cyclic GC stops every thread of the process: time each collection."""

    def __init__(self):
        self.pauses: list[tuple[int, float, float]] = []  # (generation, start, seconds)
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.time(), time.perf_counter() - self._t0))

    def summary(self, since: float = 0.0) -> dict:
        ps = [p for p in self.pauses if p[1] >= since]
        gen2 = [d for g, _, d in ps if g == 2]
        return {
            "collections": len(ps),
            "gen2": len(gen2),
            "total_s": round(sum(d for _, _, d in ps), 3),
            "max_pause_s": round(max((d for _, _, d in ps), default=0.0), 3),
        }


def _say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


# =========================================================================== server process


def serve(args) -> None:
    import msgspec

    from dashboard.simulator import Simulator
    from dashboard.simulator.apiserver import FakeApiServer

    t0 = time.perf_counter()
    sim = Simulator.from_scenario(
        "large", nodes=args.nodes, daemonsets=args.daemonsets, seed=args.seed, churn=0
    )
    build_s = time.perf_counter() - t0
    # The fake server stands in for kube-apiserver: its own stop-the-world GC pauses (a full
    # pass over 2+ GB of simulator dicts takes ~2 s) are not the dashboard's lag. "freeze"
    # is what `manage.py fakeapiserver` does; "off" also disables the cyclic GC (the store
    # holds acyclic JSON trees, freed by refcounting); "normal" leaves it alone.
    if args.server_gc in ("freeze", "off"):
        gc.freeze()
    if args.server_gc == "off":
        gc.disable()
    store = sim.store
    server = FakeApiServer(store, port=0, token=None, bookmark_interval=5.0).start()
    server.write_kubeconfig(args.kubeconfig)
    sizes = {}
    for r in ("nodes", "pods", "daemonsets", "controllerrevisions"):
        items, _ = store.list(r)
        sizes[r] = {"count": len(items), "json_bytes": sum(len(d) for _, d in items)}
    _say(
        {
            "ready": True,
            "url": server.url,
            "build_seconds": round(build_s, 1),
            "server_peak_rss_mb": round(peak_rss_mb(), 1),
            "sizes": sizes,
        }
    )
    decoder = msgspec.json.Decoder()
    gc_pauses = GcPauses()
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "churn":
            rate, seconds, out = float(cmd[1]), float(cmd[2]), Path(cmd[3])
            since = time.time()
            result = _churn(store, decoder, rate, seconds, out)
            _say({"churned": True, **result, "server_gc": gc_pauses.summary(since)})
        elif cmd[0] == "cpu":
            _say({"cpu_s": round(cpu_seconds(), 2)})
        elif cmd[0] == "quit":
            break
    server.stop()
    _say({"stopped": True, "non_get_requests": len(server.non_get_requests)})
    os._exit(0)  # freeing 2+ GB of simulator dicts one by one takes ~15 s: skip it


def _churn(store, decoder, rate: float, seconds: float, out: Path) -> dict:
    """Modify existing daemon pods at `rate` per second for `seconds`; write [[rv, sent]]."""
    items, _ = store.list("pods")
    keys = [
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o, _ in items
        if any(ref.get("kind") == "DaemonSet" for ref in o["metadata"].get("ownerReferences", []))
    ]
    del items
    # Spread the writes over the whole cluster, deterministically.
    step = 7919  # a prime: i * step mod n visits every pod once per n events
    n = len(keys)
    total = int(rate * seconds)
    sent: list[tuple[int, float]] = []
    cpu0 = cpu_seconds()
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ns, name = keys[(i * step) % n]
        # The stored dict belongs to the store: work on a fresh copy decoded from its bytes.
        with store._lock:
            _, data = store._objects["pods"][(ns, name)]
        obj = decoder.decode(data)
        status = obj["status"]
        ready = next(
            (c["status"] == "True" for c in status.get("conditions", []) if c["type"] == "Ready"),
            False,
        )
        flip = "False" if ready else "True"
        for c in status.get("conditions", []):
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = flip
        for cs in status.get("containerStatuses", []):
            cs["ready"] = flip == "True"
        if status.get("containerStatuses"):
            status["containerStatuses"][0]["restartCount"] = (
                status["containerStatuses"][0].get("restartCount", 0) + 1
            )
        now = time.time()
        obj["metadata"].setdefault("annotations", {})[SENT_AT] = f"{now:.6f}"
        store.put("pods", obj)
        sent.append((int(obj["metadata"]["resourceVersion"]), now))
    elapsed = time.monotonic() - start
    out.write_text(json.dumps(sent))
    return {
        "events": total,
        "seconds": round(elapsed, 2),
        "rate": round(total / elapsed, 1),
        "driver_cpu_s": round(cpu_seconds() - cpu0, 2),
        "pods_cycled": n,
    }


# =========================================================================== dashboard process


def sync(args) -> None:
    """Initial sync to a complete matrix, then churn until told to stop on stdin."""
    t_process = time.perf_counter()
    setup_django()  # the kube source reads its watch options from the settings
    from dashboard.clusters.config import ClusterConfig
    from dashboard.collect.collector import ClusterCollector
    from dashboard.collect.sources import KubeSource
    from dashboard.coverage.events import Change, Replace
    from dashboard.coverage.records import Pod

    received: list[tuple[str, float]] = []
    gc_pauses = GcPauses()

    class TimedSource(KubeSource):
        # The collector's KubeSource, logging when each pod Change leaves the reflector.
        def _sink(self, resource, event):
            if isinstance(event, Change) and isinstance(event.record, Pod):
                received.append((event.record.resource_version, time.time()))
            super()._sink(resource, event)

    import dashboard.kube.reflector as reflector_mod
    import dashboard.kube.resources as resources_mod

    # Count the JSON bytes the reflectors decode: each list page body, each watch line.
    nbytes = {"list": 0, "watch": 0}
    decode_list, decode_event = resources_mod.decode_list, reflector_mod.decode_event

    def counting_decode_list(body, *a, **kw):
        nbytes["list"] += len(body)
        return decode_list(body, *a, **kw)

    def counting_decode_event(line, *a, **kw):
        nbytes["watch"] += len(line)
        return decode_event(line, *a, **kw)

    resources_mod.decode_list = counting_decode_list
    reflector_mod.decode_event = counting_decode_event

    import_s = time.perf_counter() - t_process
    rss_before = round(rss_now_mb(), 1)
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    config = ClusterConfig(
        slug="bench", name="bench", source="kubeconfig", kubeconfig_path=str(args.kubeconfig)
    )
    collector = ClusterCollector(config, coalesce=args.coalesce)
    source = TimedSource(config)
    collector.use_source(source)
    source.start()
    watch = source._watch

    replaced: set[str] = set()
    applied: list[tuple[str, float]] = []
    ticks: list[float] = []
    stop = threading.Event()
    synced = threading.Event()
    sync_result: dict = {}

    def tick() -> None:
        # ClusterCollector.tick without rendering/publishing the websocket payload.
        items = source.drain()
        if not items:
            return
        t = time.perf_counter()
        with collector.lock:
            collector._apply(items)
        done = time.time()
        ticks.append(time.perf_counter() - t)
        for event in items:
            if isinstance(event, Replace):
                replaced.add(event.kind)
            elif synced.is_set() and isinstance(event.record, Pod):
                applied.append((event.record.resource_version, done))

    # ClusterCollector.run with fixed coalescing: sleep(coalesce), tick, forever.
    # The four kinds the matrix needs, by name: the source also lists PriorityClasses,
    # Services, EndpointSlices and Events now, small lists that replaced first and ended
    # this wait before the nodes and pods had arrived.
    while not {"Node", "Pod", "DaemonSet", "ControllerRevision"} <= replaced:
        time.sleep(args.coalesce)
        tick()
        if time.perf_counter() - t0 > 300:
            raise SystemExit("initial sync did not finish in 300 s")
    sync_s = time.perf_counter() - t0
    watch.wait_synced(30)
    m = collector.matrix
    sync_result = {
        "seconds": round(sync_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": rss_before,
        "rss_after_mb": round(rss_now_mb(), 1),
        "import_seconds": round(import_s, 2),
        "cpu_seconds": round(cpu_seconds() - cpu0, 2),
        "list_json_bytes": nbytes["list"],
        "watch_json_bytes": nbytes["watch"],
        "nodes": len(m.nodes),
        "daemonsets": len(m.daemonsets),
        "pods": len(m.pods),
        "revisions": len(m.revisions),
        "cells": len(m.cells),
        "ticks": len(ticks),
        "longest_tick_s": round(max(ticks), 2),
        "status": watch.status.state,
    }
    sync_result["gc"] = gc_pauses.summary()
    synced.set()
    churn_since = time.time()
    nbytes["watch"] = 0
    ticks.clear()
    received.clear()
    _say({"synced": True, **sync_result})

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    cpu1 = cpu_seconds()
    while not stop.is_set():
        time.sleep(args.coalesce)
        tick()
    # Let the tail arrive (the driver has finished when we are told to stop).
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        time.sleep(args.coalesce)
        tick()
    churn_cpu = cpu_seconds() - cpu1
    watch.stop()
    Path(args.out).write_text(json.dumps({"received": received, "applied": applied}))
    _say(
        {
            "done": True,
            "churn_cpu_seconds": round(churn_cpu, 2),
            "churn_ticks": len(ticks),
            "gc": gc_pauses.summary(churn_since),
            "watch_json_bytes": nbytes["watch"],
            "churn_tick_p99_s": round(_pct(ticks, 99), 4),
            "peak_rss_mb_end": round(peak_rss_mb(), 1),
            "status_end": watch.status.state,
        }
    )


# =========================================================================== peers


def peer(args) -> None:
    from dashboard.kube.clients import client_from_kubeconfig

    api = client_from_kubeconfig(args.kubeconfig)
    how = args.role
    t0 = time.perf_counter()
    n = 0
    if how == "typed":
        from kubernetes.client import CoreV1Api

        core = CoreV1Api(api)
        token = None
        pods = []
        while n < args.sample:
            kw = {"_continue": token} if token else {}
            page = core.list_pod_for_all_namespaces(limit=500, **kw)
            pods.extend(page.items)
            n += len(page.items)
            token = page.metadata._continue
            if not token:
                break
    elif how == "raw":
        from dashboard.coverage.records import decode_list
        from dashboard.kube.resources import RESOURCES, request

        token = ""
        pods = []
        while n < args.sample:
            kw = {"_continue": token} if token else {}
            resp = request(api, RESOURCES["pods"], None, None, limit=500, **kw)
            try:
                body = resp.read()
            finally:
                resp.release_conn()
            page = decode_list(body, "Pod", strict=False)
            pods.extend(page.records)
            n += len(page.records)
            token = page.continue_token
            if not token:
                break
    elif how == "podlist":
        from dashboard.kube.snapshot import list_cluster

        pods = list_cluster(api, resources=("pods",))["pods"]
        n = len(pods)
    seconds = time.perf_counter() - t0
    _say(
        {
            "pods": n,
            "seconds": round(seconds, 3),
            "pods_per_s": round(n / seconds),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )


def _kubectl_version(exe: str) -> str:
    out = subprocess.run([exe, "version", "--client", "-o", "json"], capture_output=True)
    try:
        return json.loads(out.stdout)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError):
        return "?"


def _klog_seconds(line: str) -> float | None:
    try:
        h, m, sec = line.split()[1].split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (IndexError, ValueError):
        return None


def kubectl(args) -> None:
    """`kubectl get pods -A -o json > /dev/null`: wall time and kubectl's own peak RSS.

    kubectl is slow on 150,000 pods (it decodes every page into unstructured maps, then
    prints the whole list): past `--kubectl-timeout` it is stopped, and the pages it had
    fetched by then (its -v=6 request log) give its rate and an extrapolated total.
    """
    exe = shutil.which("kubectl") or "/usr/bin/kubectl"
    cmd = [exe, "--kubeconfig", str(args.kubeconfig), "get", "pods", "-A", "-o", "json", "-v=6"]
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=log)
        try:
            proc.wait(args.kubectl_timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
        seconds = time.perf_counter() - t0
        log.seek(0)
        text = log.read().decode(errors="replace")
    page_lines = [ln for ln in text.splitlines() if "GET" in ln and "/api/v1/pods?" in ln]
    pages = len(page_lines)
    # klog lines start "I1126 02:25:59.442490": when did the last page arrive?
    stamps = [_klog_seconds(ln) for ln in (text.splitlines()[:1] + page_lines[-1:])]
    last_page_at = stamps[1] - stamps[0] if len(stamps) == 2 and None not in stamps else None
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "seconds": None if timed_out else round(seconds, 2),
        "exit": proc.returncode,
        "pages_fetched": pages,
        "last_page_at_s": None if last_page_at is None else round(last_page_at, 1),
        "peak_rss_mb": round(rss, 1),
        "version": _kubectl_version(exe),
    }
    if timed_out:
        fetched = min(pages * 500, args.total_pods or pages * 500)
        fetching = last_page_at or seconds
        result |= {
            "timed_out_after_s": round(seconds, 1),
            "pods_fetched_approx": fetched,
            "pods_per_s_while_fetching": round(fetched / fetching),
        }
        if fetched < args.total_pods:  # a lower bound: printing excluded
            result["extrapolated_seconds"] = round(fetching * args.total_pods / fetched, 1)
        else:
            result["note"] = "every page fetched; killed while building/printing the JSON"
    _say(result)


# =========================================================================== orchestration


class Child:
    """A bench subprocess speaking JSON lines on stdout, commands on stdin."""

    def __init__(self, *argv: str):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.proc.args[2:4]}: no answer in {timeout:.0f} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.proc.args[2:4]} exited ({self.proc.wait()})")
                if line.startswith("{"):
                    return json.loads(line)

    def close(self, timeout: float = 10) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _run(argv: list[str], timeout: float) -> dict:
    child = Child(*argv)
    try:
        return child.read(timeout)
    finally:
        child.close(timeout)


def _progress(what: str, result: dict) -> None:
    print(f"[kube_bench] {what}: {json.dumps(result)}", file=sys.stderr, flush=True)


def _wait_serving(url: str, timeout: float = 10.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/version", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _lags(sent_file: Path, client_file: Path, rate_events: int) -> dict:
    sent = {rv: t for rv, t in json.loads(sent_file.read_text())}
    client = json.loads(client_file.read_text())

    start = min(sent.values())

    def stats(pairs: list[list]) -> dict:
        timed = [(sent[int(rv)], t - sent[int(rv)]) for rv, t in pairs if int(rv) in sent]
        lags = [lag for _, lag in timed]
        # The worst lag of each second of the run: shows whether slow events cluster.
        worst: dict[int, float] = {}
        for t, lag in timed:
            sec = int(t - start)
            worst[sec] = max(worst.get(sec, 0.0), lag)
        return {
            "events": len(lags),
            "p50_ms": round(_pct(lags, 50) * 1000, 1),
            "p95_ms": round(_pct(lags, 95) * 1000, 1),
            "p99_ms": round(_pct(lags, 99) * 1000, 1),
            "max_ms": round(max(lags) * 1000, 1) if lags else None,
            "over_1s": sum(lag > 1.0 for lag in lags),
            "worst_ms_per_second": [round(worst[k] * 1000) for k in sorted(worst)],
        }

    out = {"received": stats(client["received"]), "applied": stats(client["applied"])}
    out["missing_events"] = rate_events - out["applied"]["events"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--daemonsets", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1000.0, help="pod events per second")
    ap.add_argument("--churn-seconds", type=float, default=30.0)
    ap.add_argument("--sample", type=int, default=10_000, help="pods for the typed/raw peers")
    ap.add_argument("--coalesce", type=float, default=0.25, help="collector tick, seconds")
    ap.add_argument("--no-kubectl", action="store_true")
    ap.add_argument("--server-gc", choices=["off", "freeze", "normal"], default="off")
    ap.add_argument("--kubectl-timeout", type=float, default=120.0)
    ap.add_argument("--total-pods", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--role", default="main")
    ap.add_argument("--kubeconfig", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.role == "serve":
        return serve(args)
    if args.role == "sync":
        return sync(args)
    if args.role in ("typed", "raw", "podlist"):
        return peer(args)
    if args.role == "kubectl":
        return kubectl(args)

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="daemonviz-kube-bench-") as tmp:
        tmp_path = Path(tmp)
        kubeconfig = tmp_path / "kubeconfig"
        size = ["--nodes", str(args.nodes), "--daemonsets", str(args.daemonsets)]
        size += ["--seed", str(args.seed)]
        size += ["--server-gc", args.server_gc]
        server = Child("--role", "serve", *size, "--kubeconfig", str(kubeconfig))
        try:
            ready = server.read(timeout=180)
            _progress("server", ready)
            _wait_serving(ready["url"])
            kc = ["--kubeconfig", str(kubeconfig)]

            # 1 + 2: the dashboard's process: initial sync, then churn.
            client_out = tmp_path / "client.json"
            load_sync = os.getloadavg()
            server.send("cpu")
            server_cpu0 = server.read(timeout=30)["cpu_s"]
            dash = Child("--role", "sync", *kc, "--out", str(client_out),
                         "--coalesce", str(args.coalesce))  # fmt: skip
            synced = dash.read(timeout=320)
            server.send("cpu")
            synced["server_cpu_seconds"] = round(server.read(timeout=30)["cpu_s"] - server_cpu0, 2)
            _progress("sync", synced)
            time.sleep(1.0)  # let the watches settle before the churn starts
            sent_file = tmp_path / "sent.json"
            load_churn = os.getloadavg()
            server.send(f"churn {args.rate} {args.churn_seconds} {sent_file}")
            churned = server.read(timeout=args.churn_seconds * 3 + 30)
            _progress("churn", churned)
            dash.send("stop")
            done = dash.read(timeout=60)
            dash.close()
            lag = _lags(sent_file, client_out, churned["events"])
            _progress("lag", {**done, **lag})

            # 3: peers on the same, now idle, server.
            sample = ["--sample", str(args.sample)]
            typed = _run(["--role", "typed", *kc, *sample], timeout=180)
            _progress("typed", typed)
            raw = _run(["--role", "raw", *kc, *sample], timeout=180)
            _progress("raw", raw)
            podlist = _run(["--role", "podlist", *kc], timeout=180)
            _progress("podlist", podlist)
            kctl = None
            if not args.no_kubectl:
                kt = ["--kubectl-timeout", str(args.kubectl_timeout)]
                kt += ["--total-pods", str(ready["sizes"]["pods"]["count"])]
                kctl = _run(["--role", "kubectl", *kc, *kt], timeout=args.kubectl_timeout + 60)
                _progress("kubectl", kctl)
            server.send("quit")
            stopped = server.read(timeout=30)
        finally:
            if server.proc.poll() is None:
                server.proc.stdin.close()
            server.close(15)

    pods_bytes = ready["sizes"]["pods"]["json_bytes"]
    total_bytes = sum(s["json_bytes"] for s in ready["sizes"].values())
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_before_sync": [round(x, 2) for x in load_sync],
            "loadavg_before_churn": [round(x, 2) for x in load_churn],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "server": {
            "nodes": ready["sizes"]["nodes"]["count"],
            "daemonsets": ready["sizes"]["daemonsets"]["count"],
            "pods": ready["sizes"]["pods"]["count"],
            "controllerrevisions": ready["sizes"]["controllerrevisions"]["count"],
            "pods_json_mb": round(pods_bytes / 1e6, 1),
            "all_objects_json_mb": round(total_bytes / 1e6, 1),
            "avg_pod_kb": round(pods_bytes / max(1, ready["sizes"]["pods"]["count"]) / 1024, 2),
            "build_seconds": ready["build_seconds"],
            "peak_rss_mb": ready["server_peak_rss_mb"],
            "non_get_requests": stopped["non_get_requests"],
        },
        "initial_sync": {
            **synced,
            "list_json_mb": round(synced["list_json_bytes"] / 1e6, 1),
            "goal": "<= 10 s, <= 500 MB peak RSS",
            "met": synced["seconds"] <= 10 and synced["peak_rss_mb"] <= 500,
        },
        "churn": {
            "target_rate": args.rate,
            "achieved_rate": churned["rate"],
            "events_sent": churned["events"],
            "seconds": churned["seconds"],
            "server_driver_cpu_s": churned["driver_cpu_s"],
            "server_gc_mode": args.server_gc,
            "server_gc": churned["server_gc"],
            "dashboard_gc": done["gc"],
            "lag_sent_to_reflector": lag["received"],
            "lag_sent_to_matrix_applied": lag["applied"],
            "events_not_applied": lag["missing_events"],
            "collector_coalesce_s": args.coalesce,
            "watch_json_mb": round(done["watch_json_bytes"] / 1e6, 1),
            "dashboard_cpu_s": done["churn_cpu_seconds"],
            "dashboard_cpu_share": round(done["churn_cpu_seconds"] / churned["seconds"], 2),
            "tick_p99_s": done["churn_tick_p99_s"],
            "dashboard_peak_rss_mb_end": done["peak_rss_mb_end"],
            "status_end": done["status_end"],
            "goal": "<= 1 s lag",
            "met": lag["missing_events"] == 0 and lag["applied"]["max_ms"] <= 1000,
        },
        "peers": {
            "typed_models_sample": typed,
            "raw_sample": raw,
            "typed_vs_raw_ratio": round(typed["seconds"] / max(raw["seconds"], 1e-9), 1),
            "our_full_pod_list": podlist,
            "kubectl_get_pods_json": kctl,
            "kubectl_vs_ours_ratio": round(kctl["seconds"] / podlist["seconds"], 1)
            if kctl and kctl["seconds"]
            else None,
            "kubectl_extrapolated_vs_ours_ratio": round(
                kctl["extrapolated_seconds"] / podlist["seconds"], 1
            )
            if kctl and kctl.get("extrapolated_seconds")
            else None,
        },
        "bench_seconds": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
