"""Scale-out benchmark (issue 20, section 1): the README's "Running in a cluster", on one machine.

Usage: python bench/scaleout_bench.py [--workers 3] [--clients 500] [--seconds 60]
                                      [--clusters 10] [--churn 60] [--lock-ttl 15]

What runs, every process on 127.0.0.1 and free ports, stopped by PID at the end:

* Redis and PostgreSQL from Debian's packages (tests/helpers/services.py), in temporary
  directories;
* a cluster host (this script with `--serve-clusters`): `--clusters` simulated clusters,
  each served over HTTP by its own fake Kubernetes API server (dashboard/simulator), so that
  a second collector sees the same clusters as the first. One is `large` (5,000 nodes x 30
  DaemonSets, `--large-nodes/--large-daemonsets`), the others demo-sized; each churns at
  `--churn` events per minute (crashes, flaps, nodes leaving and joining...) and the bench
  starts rollouts on top (the large cluster's at the start of the window, a demo cluster's
  every 15 s);
* one `manage.py collect` (this script with `--collect`: the same command with timing hooks),
  and later a second one, the standby;
* `--workers` daphne web workers (`DAEMONVIZ_EMBEDDED_COLLECTOR=false`, this script with
  `--worker`: daphne's CLI with timing hooks around the snapshot reader and the grid view);
* `--clients` websocket clients (this script with `--run-clients`, aiohttp), spread
  round-robin over the workers: grid sockets of every cluster with several filter sets, and
  wall-display sockets of walls showing several clusters.

Measured in one run (JSON on stdout, progress on stderr):

1. change -> websocket frame at the client: the cluster host stamps every object write with
   the wall clock (by resourceVersion), the collector records which resourceVersions each
   published revision carried, and each client stamps each frame's arrival; joining them
   gives, per frame and client, the age of the oldest change it carries;
2. grid page of the large cluster, from each worker (server time of the view, and of the
   snapshot reads it needed, from the worker's hooks; response time at the client);
3. RSS and CPU of each worker and of the collector, Redis memory, history rows/s;
4. failover under load: a rollout of the large cluster starts, the collector is killed
   (SIGKILL); the standby must take the locks within the TTL; then probes pause the
   simulators, wait for the pipeline to drain, compare every cluster's snapshot with a fresh
   build of the fake API server's objects and every client's last revision with the
   snapshot's, and resume: time to exact.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchkit import loadavg, log, ms, pct, read_trace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = str(ROOT / ".venv" / "bin" / "python")
SELF = str(Path(__file__).resolve())
GOALS = {"latency_p95_s": 1.0, "grid_page_server_s": 1.0}
LARGE = "large"


def r2(x):
    return None if x is None else round(x, 2)


def dist(v) -> dict:
    return {"p50_ms": ms(pct(v, 50)), "p95_ms": ms(pct(v, 95)), "max_ms": ms(max(v, default=None)),
            "n": len(v)}  # fmt: skip


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daemonviz.settings")
    django.setup()


class Trace:
    """Append-only JSON lines, written by a background flusher (cheap on hot paths)."""

    def __init__(self, path: str):
        self._out = open(path, "a", buffering=1 << 16)  # noqa: SIM115 (process lifetime)
        self._buf: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._flush_loop, daemon=True, name="bench-trace").start()

    def emit(self, rec: dict) -> None:
        line = json.dumps(rec)
        with self._lock:
            self._buf.append(line)

    def flush(self) -> None:
        with self._lock:
            buf, self._buf = self._buf, []
        if buf:
            self._out.write("\n".join(buf) + "\n")
            self._out.flush()

    def _flush_loop(self) -> None:
        while True:
            time.sleep(0.5)
            self.flush()


# =========================================================================== cluster host


def serve_clusters(spec_path: str) -> None:
    """Child mode: the simulated clusters behind fake API servers; commands on stdin."""
    _setup_django()
    import redis as redis_lib

    from dashboard.collect import gcfreeze
    from dashboard.collect.locks import key
    from dashboard.collect.snapshots import decode_matrix
    from dashboard.collect.sources import KIND_OF_RESOURCE
    from dashboard.coverage.matrix import Matrix
    from dashboard.coverage.records import DecodeError, decode
    from dashboard.simulator import Simulator
    from dashboard.simulator import store as store_mod
    from dashboard.simulator.apiserver import FakeApiServer

    spec = json.loads(Path(spec_path).read_text())
    folder = Path(spec["dir"])
    writes = Trace(str(folder / "writes.jsonl"))
    stamps: list[tuple[str, int, float]] = []
    stamps_lock = threading.Lock()
    orig_append = store_mod.ObjectStore._append

    def _append(self, event):
        slug = self.__dict__.get("_bench_slug")
        if slug is not None:
            with stamps_lock:
                stamps.append((slug, event.rv, time.time()))
        orig_append(self, event)

    store_mod.ObjectStore._append = _append

    def flush_stamps() -> None:
        while True:
            time.sleep(0.5)
            with stamps_lock:
                batch, stamps[:] = list(stamps), []
            for slug, rv, t in batch:
                writes.emit({"s": slug, "rv": rv, "t": t})

    sims: dict[str, Simulator] = {}
    servers: dict[str, FakeApiServer] = {}
    kubeconfigs: dict[str, str] = {}
    for c in spec["clusters"]:
        t0 = time.monotonic()
        sim = Simulator.from_scenario(c["scenario"], seed=c["seed"], nodes=c.get("nodes"),
                                      daemonsets=c.get("daemonsets"), churn=c["churn"])  # fmt: skip
        sim.store._bench_slug = c["slug"]
        sims[c["slug"]] = sim
        log(f"host: built {c['slug']} ({len(sim.nodes)} nodes) in {time.monotonic() - t0:.1f} s")
    gcfreeze.freeze_long_lived("building the simulated clusters")
    threading.Thread(target=flush_stamps, daemon=True, name="bench-stamps").start()
    for slug, sim in sims.items():
        server = FakeApiServer(sim.store, port=0, token=None, bookmark_interval=5.0).start()
        servers[slug] = server
        path = folder / f"{slug}.kubeconfig"
        server.write_kubeconfig(path, context="fake")
        kubeconfigs[slug] = str(path)
        sim.start()
    rds = redis_lib.Redis.from_url(spec["redis"])

    def fresh_cells(sim: Simulator) -> tuple[dict, set]:
        records: dict[str, list] = {}
        for resource, kind in KIND_OF_RESOURCE.items():
            objs, _ = sim.store.list(resource)
            out = []
            for _, data in objs:
                with contextlib.suppress(DecodeError):
                    out.append(decode(kind, data))
            records[kind] = out
        m = Matrix()
        m.replace_all(records)
        return _cells(m), set(m.nodes)

    def probe(settle: float, timeout: float) -> dict:
        """Pause every simulator, wait until each cluster's snapshot caught up with what
        the collector applied, compare with a fresh build, resume."""
        t_pause = time.time()
        for sim in sims.values():
            sim.stop()
        out: dict = {"t_pause": t_pause, "clusters": {}}
        try:
            deadline = time.time() + timeout
            pending = set(sims)
            last: dict[str, tuple] = {}
            while pending and time.time() < deadline:
                for slug in sorted(pending):
                    meta_raw, status_raw = rds.mget(key("meta", slug), key("status", slug))
                    if not meta_raw or not status_raw:
                        continue
                    meta, status = json.loads(meta_raw), json.loads(status_raw)
                    now = (meta["epoch"], meta["revision"], status["revision"], status["holder"])
                    # Drained: two reports made `settle` s after the pause (heartbeats
                    # differ) with the same revision, the snapshot's.
                    prev = last.get(slug)
                    caught_up = (
                        status["state"] == "synced"
                        and meta["revision"] == status["revision"]
                        and status["heartbeat"] > t_pause + settle
                        and prev is not None
                        and prev[0] == now
                        and prev[1] != status["heartbeat"]
                    )
                    if prev is None or prev[0] != now:
                        last[slug] = (now, status["heartbeat"])
                    if caught_up:
                        pending.discard(slug)
                        out["clusters"][slug] = {"epoch": meta["epoch"],
                                                 "revision": meta["revision"],
                                                 "holder": status["holder"]}  # fmt: skip
                time.sleep(0.3)
            out["drained_s"] = round(time.time() - t_pause, 2)
            out["not_drained"] = sorted(pending)
            for slug, info in out["clusters"].items():
                blob = rds.get(key("snap", slug))
                snap = decode_matrix(blob)
                cells, nodes = fresh_cells(sims[slug])
                got = _cells(snap)
                diff = {k for k in cells.keys() | got.keys() if cells.get(k) != got.get(k)}
                info["exact"] = not diff and nodes == set(snap.nodes)
                info["cells"] = len(cells)
                info["differing_cells"] = len(diff)
                info["snapshot_revision"] = snap.revision
            out["compared_s"] = round(time.time() - t_pause, 2)
        finally:
            for sim in sims.values():
                sim.start()
        out["exact"] = not out["not_drained"] and all(
            c.get("exact") for c in out["clusters"].values()
        )
        return out

    print(json.dumps({"ready": kubeconfigs}), flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "rollout":
            slug = rest[0]
            sim = sims[slug]
            keys = sorted(k for k, ds in sim.controller.daemonsets.items()
                          if ds.rec.strategy == "RollingUpdate" and not ds.rollout)  # fmt: skip
            # The widest budget first: a rollout that moves many cells per second.
            keys.sort(key=lambda k: str(sim.controller.daemonsets[k].rec.max_unavailable) != "20%")
            ds_key = keys[0] if keys else None
            if ds_key:
                sim.rollout(ds_key)
            reply = {"rollout": ds_key, "t": time.time()}
        elif cmd == "rolling":
            sim = sims[rest[0]]
            reply = {"rolling": sorted(k for k, ds in sim.controller.daemonsets.items()
                                       if ds.rollout)}  # fmt: skip
        elif cmd == "probe":
            reply = probe(float(rest[0]), float(rest[1]))
        elif cmd == "quit":
            break
        else:
            reply = {"error": f"unknown command {cmd}"}
        print(json.dumps(reply), flush=True)
    for slug in sims:
        sims[slug].stop()
        servers[slug].stop()
    writes.flush()


def _cells(matrix) -> dict:
    return {k: (c.state.value, c.pod, c.restarts) for k, c in matrix.cells.items()}


# =========================================================================== collector child


def run_collect(trace_path: str) -> None:
    """Child mode: `manage.py collect` with hooks recording what each revision carried."""
    _setup_django()
    from dashboard.collect import collector as col
    from dashboard.collect import supervisor as sup
    from dashboard.coverage.events import Change

    trace = Trace(trace_path)
    orig_apply = col.ClusterCollector._apply

    def _apply(self, events):
        rvs = []
        for e in events:
            if isinstance(e, Change):
                rv = getattr(e.record, "resource_version", "")
                if rv.isdigit():
                    rvs.append(int(rv))
        self._bench_rvs = rvs
        return orig_apply(self, events)

    col.ClusterCollector._apply = _apply
    pending: dict[tuple[str, int], dict] = {}
    orig_compute = col.ClusterCollector._compute

    def _compute(self):
        t0 = time.time()
        self._bench_rvs = []
        delta, payload = orig_compute(self)
        if payload is not None:
            pending[(self.cluster.slug, payload["revision"])] = {
                "rvs": self._bench_rvs, "t_compute": t0, "t_payload": time.time(),
                "cells": len(payload.get("cells", ())),
            }  # fmt: skip
        return delta, payload

    col.ClusterCollector._compute = _compute
    orig_send = col.ClusterCollector._send

    async def _send(self, payload):
        t0 = time.time()
        await orig_send(self, payload)
        m = pending.pop((payload["slug"], payload["revision"]), None)
        if m is not None:
            trace.emit({"k": "pub", "s": payload["slug"], "e": payload.get("epoch", ""),
                        "rev": payload["revision"], "t_send": t0, "t_sent": time.time(), **m})  # fmt: skip

    col.ClusterCollector._send = _send
    orig_encode = sup.encode_matrix

    def encode_matrix(matrix):
        t0 = time.perf_counter()
        blob = orig_encode(matrix)
        trace.emit({"k": "snap", "s": time.perf_counter() - t0, "bytes": len(blob),
                    "cells": len(matrix.cells), "t": time.time()})  # fmt: skip
        return blob

    sup.encode_matrix = encode_matrix
    from django.core.management import call_command

    call_command("collect")


# =========================================================================== web worker child


def run_worker(port: int, trace_path: str) -> None:
    """Child mode: daphne's CLI with hooks timing snapshot loads and the grid view."""
    _setup_django()
    from dashboard.collect import remote
    from dashboard.grid import views

    trace = Trace(trace_path)
    orig_load = remote.SnapshotReader._load

    def _load(self, slug, report):
        t0 = time.perf_counter()
        try:
            return orig_load(self, slug, report)
        finally:
            trace.emit({"k": "load", "slug": slug, "s": time.perf_counter() - t0,
                        "t": time.time(), "thread": threading.current_thread().name})  # fmt: skip

    remote.SnapshotReader._load = _load
    orig_body = views._grid_body

    def _grid_body(*a, **kw):
        t0 = time.perf_counter()
        try:
            return orig_body(*a, **kw)
        finally:
            trace.emit({"k": "grid_body", "s": time.perf_counter() - t0, "t": time.time()})

    views._grid_body = _grid_body
    orig_grid = views.grid

    def grid(request, slug):
        t0 = time.perf_counter()
        try:
            return orig_grid(request, slug)
        finally:
            trace.emit({"k": "grid_view", "slug": slug, "s": time.perf_counter() - t0,
                        "t": time.time(), "path": request.get_full_path()})  # fmt: skip

    views.grid = grid  # the URLconf is imported below, after this
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(
        ["--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port),
         "daemonviz.asgi:application"]
    )  # fmt: skip


# =========================================================================== websocket clients


GRID_RX = re.compile(r'^\{"rev":(\d+),"base":(-?\d+),"epoch":"([^"]*)"')
HELLO_RX = re.compile(r'^\{"hello":1,"rev":(\d+),"epoch":"([^"]*)"')


def run_clients(spec_path: str) -> None:
    """Child mode: the websocket clients; writes each frame's arrival, and every 0.5 s where
    each client stands (its last epoch and revision per cluster)."""
    import aiohttp

    spec = json.loads(Path(spec_path).read_text())
    clients = spec["clients"]
    n = len(clients)
    recs: list[list] = [[] for _ in range(n)]
    where: list[dict] = [{} for _ in range(n)]
    state = {"connected": 0, "errors": [], "n_errors": 0, "closed": 0, "resync": 0, "lag": [],
             "reconnects": 0, "failed_handshakes": 0}  # fmt: skip
    stop = asyncio.Event()

    async def client(i: int, c: dict, session):
        # Like a browser's socket (htmx's ws extension): reconnect after a failed handshake
        # or a close, with a growing delay; every attempt after the first is counted.
        r, w = recs[i], where[i]
        delay = 2.0
        while not stop.is_set():
            opened = False
            try:
                async with session.ws_connect(c["url"], headers=c["headers"], max_msg_size=0,
                                              heartbeat=None) as ws:  # fmt: skip
                    opened = True
                    state["connected"] += 1
                    delay = 2.0
                    try:
                        await receive(ws, c, r, w)
                    finally:
                        state["connected"] -= 1
                state["closed"] += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (reported, not fatal)
                state["n_errors"] += 1
                if len(state["errors"]) < 10:
                    state["errors"].append(f"{i}: {type(exc).__name__}: {exc}"[:200])
            if not opened:
                state["failed_handshakes"] += 1
            state["reconnects"] += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 16.0)

    async def receive(ws, c: dict, r: list, w: dict) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            t = time.time()
            data = msg.data
            if c["kind"] == "grid":
                m = GRID_RX.match(data)
                if m:
                    rev, epoch = int(m[1]), m[3]
                    r.append((c["slug"], epoch, rev, t, len(data)))
                    w[c["slug"]] = (epoch, rev)
                    if '"resync":1' in data:
                        state["resync"] += 1
                elif h := HELLO_RX.match(data):
                    w[c["slug"]] = (h[2], int(h[1]))
            elif data.startswith('{"t": "cluster"'):
                f = json.loads(data)
                rev = (f.get("data") or {}).get("revision")
                if rev is not None:
                    r.append((f["slug"], "", rev, t, len(data)))
                    w[f["slug"]] = ("", rev)

    async def lag_probe():
        # The clients' own event-loop lag: what this process adds to every measured latency.
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.1)
            state["lag"].append(time.perf_counter() - t0 - 0.1)

    async def status_writer():
        path = Path(spec["status"])
        while not stop.is_set():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"t": time.time(), "connected": state["connected"],
                                       "closed": state["closed"],
                                       "reconnects": state["reconnects"], "where": where}))  # fmt: skip
            tmp.replace(path)
            await asyncio.sleep(0.5)

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as session:
            tasks = []
            for i, c in enumerate(clients):
                tasks.append(asyncio.create_task(client(i, c, session)))
                if i % 10 == 9:
                    await asyncio.sleep(0.5)  # a ramp, not a thundering herd of handshakes
            side = [asyncio.create_task(lag_probe()), asyncio.create_task(status_writer())]
            await stop.wait()
            connected_at_stop = state["connected"]
            for t in tasks + side:
                t.cancel()
            await asyncio.gather(*tasks, *side, return_exceptions=True)
        Path(spec["out"]).write_text(json.dumps({
            "connected": connected_at_stop, "closed": state["closed"],
            "errors": state["errors"], "n_errors": state["n_errors"],
            "reconnects": state["reconnects"], "failed_handshakes": state["failed_handshakes"],
            "resync_frames": state["resync"], "recs": recs,
            "loop_lag": dist(state["lag"]),
        }))  # fmt: skip

    asyncio.run(main())


# =========================================================================== the conductor


SETUP = """
import json
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from dashboard import access
from dashboard.models import Cluster, WallDisplay
spec = json.loads({spec!r})
for c in spec["clusters"]:
    Cluster.objects.create(name=c["name"], slug=c["slug"], source="kubeconfig",
                           kubeconfig_path=c["kubeconfig"], context="fake", group_by_label="zone")
user = get_user_model().objects.create_user("viewer", password="viewer-pw-123")
s = SessionStore()
s["_auth_user_id"] = str(user.pk)
s["_auth_user_backend"] = "dashboard.auth.local.LocalPasswordBackend"
s["_auth_user_hash"] = user.get_session_auth_hash()
s.create()
tokens = {{}}
for name, slugs in spec["walls"].items():
    wall = WallDisplay.objects.create(name=name)
    wall.clusters.set(Cluster.objects.filter(slug__in=slugs))
    tokens[name] = access.issue_token(wall)
print("BENCH=" + json.dumps({{"session": s.session_key, "tokens": tokens}}))
"""

GRID_FILTERS = ["", "state=problems", "namespace=kube-system", "q=node-1", "sort=problems",
                "daemonset=kube-proxy"]  # fmt: skip


class Stack:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, object] = {}
        self.env: dict[str, str] = {}
        self.workers: list[str] = []
        self.host: subprocess.Popen | None = None

    def spawn(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        log_file = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.logs[name] = log_file
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=kw.pop("stdout", log_file),
                                stderr=log_file, **kw)  # fmt: skip
        self.procs[name] = proc
        return proc

    def tail(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def host_cmd(self, line: str) -> dict:
        assert self.host is not None and self.host.stdin and self.host.stdout
        self.host.stdin.write(line + "\n")
        self.host.stdin.flush()
        reply = self.host.stdout.readline()
        if not reply:
            raise RuntimeError("cluster host died:\n" + self.tail("host"))
        return json.loads(reply)

    def manage(self, *argv: str) -> str:
        out = subprocess.run([PY, "manage.py", *argv], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stdout + out.stderr)
        return out.stdout

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self.logs.values():
            f.close()


def http_get(url: str, cookie: str, timeout: float = 60) -> tuple[int, float, int]:
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, time.perf_counter() - t0, len(body)
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - t0, 0


def wait_for(pred, seconds: float, what: str, details=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if pred():
                return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}\n{details()}")


class Sampler:
    """RSS and CPU of the processes we started, every second (psutil)."""

    def __init__(self, pids: dict[str, int]):
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str, pid: int) -> None:
        import psutil

        self.procs[name] = psutil.Process(pid)
        self.samples[name] = []

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for name, p in list(self.procs.items()):
                with contextlib.suppress(Exception):
                    cpu = p.cpu_times()
                    self.samples[name].append(
                        (time.time(), p.memory_info().rss / 2**20, cpu.user + cpu.system)
                    )

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, name: str, t0: float, t1: float) -> dict:
        s = [x for x in self.samples.get(name, []) if t0 <= x[0] <= t1]
        if len(s) < 2:
            return {}
        return {"rss_mb_max": round(max(x[1] for x in s), 1),
                "rss_mb_end": round(s[-1][1], 1),
                "cpu_percent": round(100 * (s[-1][2] - s[0][2]) / (s[-1][0] - s[0][0]), 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60.0, help="the steady-state window")
    ap.add_argument("--clusters", type=int, default=10, help="one large, the others demo-sized")
    ap.add_argument("--churn", type=float, default=60.0, help="events per minute per cluster")
    ap.add_argument("--large-nodes", type=int, default=5000)
    ap.add_argument("--large-daemonsets", type=int, default=30)
    ap.add_argument("--lock-ttl", type=float, default=15.0)
    ap.add_argument("--wall-share", type=float, default=0.25, help="share of wall sockets")
    ap.add_argument("--page-loads", type=int, default=3, help="grid page loads per worker")
    ap.add_argument("--no-failover", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--serve-clusters", help=argparse.SUPPRESS)
    ap.add_argument("--collect", help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--run-clients", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_clusters:
        return serve_clusters(args.serve_clusters)
    if args.collect:
        return run_collect(args.collect)
    if args.worker:
        return run_worker(int(args.worker[0]), args.worker[1])
    if args.run_clients:
        return run_clients(args.run_clients)
    report = conduct(args)
    print(json.dumps(report, indent=1))


def conduct(args) -> dict:
    from tests.helpers import services
    from tests.helpers.ports import free_port
    from tests.helpers.processes import stop_process

    tmp = Path(tempfile.mkdtemp(prefix="daemonviz-scaleout-"))
    log(f"scale-out bench in {tmp}; load {loadavg()}")
    report: dict = {"args": vars(args) | {"serve_clusters": None}, "load_start": loadavg(),
                    "goals": GOALS}  # fmt: skip
    for k in ("serve_clusters", "collect", "worker", "run_clients"):
        report["args"].pop(k, None)
    redis_srv = services.start_redis(tmp)
    pg = services.start_postgres()
    stack = Stack(args, tmp)
    sampler = None
    try:
        database_url = pg.create_database("scaleout_bench")
        stack.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_srv.url,
            "DAEMONVIZ_EMBEDDED_COLLECTOR": "false",
            "DAEMONVIZ_LOCK_TTL_SECONDS": str(args.lock_ttl),
            "DAEMONVIZ_DEMO_CLUSTER": "false",
            "DAEMONVIZ_DEMO_FLEET": "false",
            "DAEMONVIZ_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DAEMONVIZ_DEBUG": "false",
            "DAEMONVIZ_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        stack.env.pop("DJANGO_SETTINGS_MODULE", None)
        stack.manage("migrate", "--noinput")
        clusters = [{"slug": LARGE, "name": "Large", "scenario": "large", "seed": 1,
                     "nodes": args.large_nodes, "daemonsets": args.large_daemonsets,
                     "churn": args.churn}]  # fmt: skip
        for i in range(1, args.clusters):
            clusters.append({"slug": f"demo{i}", "name": f"Demo {i}", "scenario": "demo",
                             "seed": i + 1, "churn": args.churn})  # fmt: skip
        host_spec = tmp / "host.json"
        host_spec.write_text(json.dumps({"dir": str(tmp), "clusters": clusters,
                                         "redis": redis_srv.url}))  # fmt: skip
        t0 = time.monotonic()
        stack.host = stack.spawn("host", [PY, SELF, "--serve-clusters", str(host_spec)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        ready = stack.host.stdout.readline()
        if not ready:
            raise RuntimeError("cluster host failed:\n" + stack.tail("host"))
        kubeconfigs = json.loads(ready)["ready"]
        report["host_build_s"] = round(time.monotonic() - t0, 1)
        log(f"clusters served ({report['host_build_s']} s)")
        slugs = [c["slug"] for c in clusters]
        demos = slugs[1:]
        walls = {"all": slugs, "large+2": [LARGE, *demos[:2]], "demos": demos[2:5] or demos[:1]}
        walls = {k: v for k, v in walls.items() if v}
        for c in clusters:
            c["kubeconfig"] = kubeconfigs[c["slug"]]
        out = stack.manage("shell", "-c", SETUP.format(spec=json.dumps(
            {"clusters": clusters, "walls": walls})))  # fmt: skip
        auth = json.loads(re.search(r"BENCH=(.*)", out).group(1))
        cookie = f"sessionid={auth['session']}"

        # ---------------------------------------------------------------- collector, workers
        t0 = time.monotonic()
        collector = stack.spawn("collect1", [PY, SELF, "--collect", str(tmp / "collect1.jsonl")])
        for i in range(args.workers):
            port = free_port()
            stack.spawn(
                f"worker{i}", [PY, SELF, "--worker", str(port), str(tmp / f"worker{i}.jsonl")]
            )
            stack.workers.append(f"http://127.0.0.1:{port}")
        for i, url in enumerate(stack.workers):
            wait_for(lambda u=url: http_get(u + "/healthz", "", 2)[0] == 200, 120,
                     f"worker {i}", lambda i=i: stack.tail(f"worker{i}"))  # fmt: skip
        import redis as redis_lib

        rds = redis_lib.Redis.from_url(redis_srv.url)

        def status(slug: str) -> dict:
            raw = rds.get(f"daemonviz:status:{slug}")
            return json.loads(raw) if raw else {}

        wait_for(lambda: all(status(s).get("state") == "synced" and rds.exists(f"daemonviz:meta:{s}")
                             for s in slugs), 600, "every cluster synced by the collector",
                 lambda: stack.tail("collect1"))  # fmt: skip
        report["initial_sync_s"] = round(time.monotonic() - t0, 1)
        log(f"collector synced all {len(slugs)} clusters in {report['initial_sync_s']} s")
        sampler = Sampler({"collect1": collector.pid, "host": stack.host.pid,
                           "redis": redis_srv.proc.pid,
                           **{f"worker{i}": stack.procs[f"worker{i}"].pid
                              for i in range(args.workers)}}).start()  # fmt: skip

        # ---------------------------------------------------------------- clients
        rng = random.Random(7)
        specs = []
        n_wall = round(args.clients * args.wall_share)
        wall_names = list(walls)
        for i in range(args.clients):
            base = stack.workers[i % len(stack.workers)]
            ws = base.replace("http://", "ws://")
            headers = {"Origin": base}
            if i < n_wall:
                wall = wall_names[i % len(wall_names)]
                specs.append({"kind": "wall", "wall": wall, "slugs": walls[wall],
                              "url": f"{ws}/ws/wall/{auth['tokens'][wall]}/", "headers": headers})  # fmt: skip
            else:
                # 40 % on the large cluster, the rest over the demo clusters.
                slug = LARGE if rng.random() < 0.4 or not demos else rng.choice(demos)
                q = GRID_FILTERS[i % len(GRID_FILTERS)]
                specs.append({"kind": "grid", "slug": slug, "filters": q,
                              "url": f"{ws}/ws/clusters/{slug}/grid/" + (f"?{q}" if q else ""),
                              "headers": {**headers, "Cookie": cookie}})  # fmt: skip
        client_spec = tmp / "clients.json"
        client_status = tmp / "clients-status.json"
        client_out = tmp / "clients-out.json"
        client_spec.write_text(json.dumps({"clients": specs, "status": str(client_status),
                                           "out": str(client_out)}))  # fmt: skip
        clients = stack.spawn("clients", [PY, SELF, "--run-clients", str(client_spec)])
        sampler.add("clients", clients.pid)

        def client_state() -> dict:
            return json.loads(client_status.read_text())

        t_clients = time.monotonic()
        with contextlib.suppress(RuntimeError):  # fewer than all is a result, not a crash
            wait_for(lambda: client_state()["connected"] >= args.clients, 300,
                     f"{args.clients} websocket clients", lambda: stack.tail("clients"))  # fmt: skip
        report["clients_connect_s"] = round(time.monotonic() - t_clients, 1)
        report["clients_connected_before_window"] = client_state()["connected"]
        log(f"{report['clients_connected_before_window']} of {args.clients} clients connected "
            f"in {report['clients_connect_s']} s ({n_wall} wall, {args.clients - n_wall} grid)")  # fmt: skip
        time.sleep(3)  # the first frames of every wall socket (whole clusters) go by

        # ---------------------------------------------------------------- steady window
        def history_rows() -> int:
            import psycopg

            with psycopg.connect(database_url) as conn:
                return conn.execute("SELECT count(*) FROM dashboard_coverageevent").fetchone()[0]

        w0 = time.time()
        rows0 = history_rows()
        load_window_start = loadavg()
        rollouts = [stack.host_cmd(f"rollout {LARGE}")]
        log(f"window of {args.seconds:.0f} s; rollout of {rollouts[0]['rollout']} on {LARGE}")
        page_loads = []
        next_demo_rollout = time.time() + 5
        next_page = time.time() + args.seconds * 0.3
        demo_i = 0
        loads_done = 0
        while time.time() < w0 + args.seconds:
            if demos and time.time() >= next_demo_rollout:
                rollouts.append(stack.host_cmd(f"rollout {demos[demo_i % len(demos)]}"))
                demo_i += 1
                next_demo_rollout += 15
            if loads_done < args.page_loads * len(stack.workers) and time.time() >= next_page:
                wi = loads_done % len(stack.workers)
                t_req = time.time()
                code, s, size = http_get(f"{stack.workers[wi]}/clusters/{LARGE}/", cookie)
                page_loads.append({"worker": wi, "status": code, "client_s": round(s, 3),
                                   "bytes": size, "t": t_req})  # fmt: skip
                loads_done += 1
                next_page = time.time() + 2
            time.sleep(0.2)
        w1 = time.time()
        rows1 = history_rows()
        report["window"] = {"seconds": round(w1 - w0, 1), "load_start": load_window_start,
                            "load_end": loadavg()}  # fmt: skip
        info = rds.info("memory")
        report["redis_memory_mb"] = {"used": round(info["used_memory"] / 2**20, 1),
                                     "rss": round(info["used_memory_rss"] / 2**20, 1),
                                     "peak": round(info["used_memory_peak"] / 2**20, 1)}  # fmt: skip
        report["history_rows_per_s"] = round((rows1 - rows0) / (w1 - w0), 1)
        report["history_rows_in_window"] = rows1 - rows0
        report["processes"] = {name: sampler.summary(name, w0, w1) for name in sampler.procs}
        report["page_loads_raw"] = page_loads

        # ---------------------------------------------------------------- failover
        if not args.no_failover:
            report["failover"] = failover(stack, rds, slugs, client_state, args)

        # ---------------------------------------------------------------- collect results
        clients.send_signal(signal.SIGTERM)
        clients.wait(timeout=60)
        sampler.stop()
        got = json.loads(client_out.read_text())
        report["clients"] = {k: got[k] for k in ("connected", "closed", "n_errors", "errors",
                                                   "reconnects", "failed_handshakes",
                                                   "resync_frames", "loop_lag")}  # fmt: skip
        report["latency"] = latency(tmp, specs, got["recs"], w0, w1)
        report["grid_page"] = grid_pages(tmp, page_loads, args.workers)
        report["snapshots"] = snapshot_stats(tmp, w0, w1)
        report["load_end"] = loadavg()
        report["verdict"] = verdict(report)
        if stack.host.poll() is None and stack.host.stdin:
            stack.host.stdin.write("quit\n")
            stack.host.stdin.flush()
        return report
    finally:
        if sampler is not None:
            with contextlib.suppress(Exception):
                sampler.stop()
        stack.stop()
        stop_process(redis_srv.proc)
        services.stop_postgres(pg)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def failover(stack: Stack, rds, slugs: list[str], client_state, args) -> dict:
    def lock_holder(slug: str) -> str | None:
        raw = rds.get(f"daemonviz:lock:{slug}")
        return raw.decode().rsplit("/", 1)[0] if raw else None

    old = {s: lock_holder(s) for s in slugs}
    stack.spawn("collect2", [PY, SELF, "--collect", str(stack.tmp / "collect2.jsonl")])
    # The standby is up (Django loaded, first reconcile pass made: it found every lock held).
    wait_for(lambda: b"running" in (stack.tmp / "collect2.log").read_bytes() or
             "running" in stack.tail("collect2"), 60, "the standby collector")  # fmt: skip
    time.sleep(args.lock_ttl / 3 + 1)
    rollout = stack.host_cmd(f"rollout {LARGE}")
    time.sleep(3)
    rolling = stack.host_cmd(f"rolling {LARGE}")["rolling"]
    t_kill = time.time()
    stack.procs["collect1"].send_signal(signal.SIGKILL)
    stack.procs["collect1"].wait()
    log(f"collector killed mid-rollout of {rollout['rollout']} (rolling: {len(rolling)})")
    took: dict[str, float] = {}
    synced: dict[str, float] = {}
    deadline = time.time() + args.lock_ttl * 3 + 240
    while time.time() < deadline and len(synced) < len(slugs):
        for s in slugs:
            h = lock_holder(s)
            if s not in took and h is not None and h != old[s]:
                took[s] = time.time() - t_kill
            raw = rds.get(f"daemonviz:status:{s}")
            st = json.loads(raw) if raw else {}
            if s in took and s not in synced and st.get("state") == "synced" \
                    and st.get("holder") != old[s]:  # fmt: skip
                synced[s] = time.time() - t_kill
        time.sleep(0.1)
    log(
        f"standby took every lock within {max(took.values(), default=None)} s, synced "
        f"{max(synced.values(), default=None)} s after the kill"
    )
    probes = []
    t_exact = None
    stale_clients = None
    while time.time() < deadline:
        p = stack.host_cmd("probe 1.5 60")
        # Clients' positions once the pipeline drained (the status file lags ≤ 0.5 s).
        time.sleep(1.2)
        st = client_state()
        behind = 0
        examples = []
        for c, w in zip(json.loads((stack.tmp / "clients.json").read_text())["clients"],
                        st["where"], strict=True):  # fmt: skip
            for s in c.get("slugs") or [c["slug"]]:
                info = p["clusters"].get(s)
                if info is None:
                    continue
                pos = w.get(s)
                # Grid frames carry epoch and revision; wall frames the revision.
                # Stale: an older epoch, or a revision before the snapshot's.
                if pos is None or pos[1] < info["revision"] or (pos[0] and pos[0] != info["epoch"]):
                    behind += 1
                    if len(examples) < 5:
                        examples.append(
                            {
                                "kind": c["kind"],
                                "slug": s,
                                "at": pos,
                                "snapshot": [info["epoch"], info["revision"]],
                            }
                        )
        p["clients_behind"] = behind
        p["behind_examples"] = examples
        p["t_pause_after_kill_s"] = round(p["t_pause"] - t_kill, 2)
        probes.append({k: v for k, v in p.items() if k != "t_pause"})
        log(f"probe at +{p['t_pause_after_kill_s']} s: exact={p['exact']}, clients behind={behind}")
        if p["exact"] and behind == 0:
            t_exact = p["t_pause"] - t_kill
            stale_clients = 0
            break
        time.sleep(1.0)
    return {
        "lock_ttl_s": args.lock_ttl,
        "rollout": rollout["rollout"],
        "rolling_at_kill": rolling,
        "lock_taken_after_s": {s: round(v, 2) for s, v in took.items()},
        "lock_taken_max_s": r2(max(took.values(), default=None)),
        "synced_after_s_max": r2(max(synced.values(), default=None)),
        "synced_after_s": {s: round(v, 2) for s, v in synced.items()},
        "time_to_exact_s": r2(t_exact),
        "clients_behind_at_exact": stale_clients,
        "probes": probes,
    }


def latency(tmp: Path, specs: list[dict], recs: list[list], w0: float, w1: float) -> dict:
    writes: dict[tuple[str, int], float] = {}
    for r in read_trace(tmp / "writes.jsonl"):
        writes[(r["s"], r["rv"])] = r["t"]
    pubs: dict[tuple[str, str, int], dict] = {}
    by_rev: dict[tuple[str, int], list[dict]] = {}
    for name in ("collect1.jsonl", "collect2.jsonl"):
        for r in read_trace(tmp / name):
            if r.get("k") != "pub":
                continue
            ts = [writes[(r["s"], rv)] for rv in r["rvs"] if (r["s"], rv) in writes]
            r["w0"] = min(ts) if ts else None
            pubs[(r["s"], r["e"], r["rev"])] = r
            by_rev.setdefault((r["s"], r["rev"]), []).append(r)
    out: dict = {}
    for kind in ("grid", "wall", "all"):
        lat, matched, unmatched, big = [], 0, 0, []
        per_cluster: dict[str, list[float]] = {}
        for c, rr in zip(specs, recs, strict=True):
            if kind != "all" and c["kind"] != kind:
                continue
            for slug, epoch, rev, t, _size in rr:
                if not (w0 <= t <= w1):
                    continue
                if epoch:
                    p = pubs.get((slug, epoch, rev))
                else:  # wall frames carry no epoch: the publication just before arrival
                    cands = [x for x in by_rev.get((slug, rev), []) if x["t_sent"] <= t]
                    p = max(cands, key=lambda x: x["t_sent"]) if cands else None
                if p is None or p["w0"] is None:
                    unmatched += 1
                    continue
                matched += 1
                v = t - p["w0"]
                lat.append(v)
                per_cluster.setdefault(slug, []).append(v)
                if p["cells"] >= 500:
                    big.append(v)
        out[kind] = {"oldest_change_to_frame": dist(lat), "frames_matched": matched,
                     "frames_unmatched": unmatched}  # fmt: skip
        if kind == "all":
            out[kind]["per_cluster_p95_ms"] = {
                s: ms(pct(v, 95)) for s, v in sorted(per_cluster.items())
            }
            out[kind]["frames_of_500_cells_or_more"] = dist(big)
    stages = {"write_to_compute": [], "compute": [], "publish": []}
    for p in pubs.values():
        if p["w0"] is None or not (w0 <= p["t_sent"] <= w1):
            continue
        stages["write_to_compute"].append(p["t_compute"] - p["w0"])
        stages["compute"].append(p["t_payload"] - p["t_compute"])
        stages["publish"].append(p["t_sent"] - p["t_send"])
    out["collector_stages"] = {k: dist(v) for k, v in stages.items()}
    return out


def grid_pages(tmp: Path, loads: list[dict], n_workers: int) -> dict:
    per = []
    for load in loads:
        recs = read_trace(tmp / f"worker{load['worker']}.jsonl")
        t = load["t"]
        views = [
            r for r in recs if r["k"] == "grid_view" and t <= r["t"] <= t + load["client_s"] + 1
        ]
        view = views[0] if views else None
        loads_in = [r for r in recs if r["k"] == "load" and r["slug"] == LARGE
                    and (view is None or view["t"] - view["s"] - 0.01 <= r["t"] <= view["t"])]  # fmt: skip
        per.append({**{k: v for k, v in load.items() if k != "t"},
                    "server_s": r2(view["s"]) if view else None,
                    "snapshot_loads_s": [r2(r["s"]) for r in loads_in]})  # fmt: skip
    server = [p["server_s"] for p in per if p["server_s"] is not None]
    all_loads: dict[str, list[float]] = {}
    for i in range(n_workers):
        for r in read_trace(tmp / f"worker{i}.jsonl"):
            if r["k"] == "load":
                all_loads.setdefault(r["slug"], []).append(r["s"])
    return {
        "loads": per,
        "server_s_median": r2(pct(server, 50)),
        "server_s_max": r2(max(server, default=None)),
        "snapshot_loads_by_cluster": {
            s: {"count": len(v), "median_s": r2(pct(v, 50)), "sum_s": r2(sum(v))}
            for s, v in sorted(all_loads.items())
        },
    }


def snapshot_stats(tmp: Path, w0: float, w1: float) -> dict:
    snaps = [r for r in read_trace(tmp / "collect1.jsonl") if r.get("k") == "snap"]
    big = [r for r in snaps if w0 <= r["t"] <= w1 and r["cells"] >= 10000]
    return {"large_encodes_in_window": len(big),
            "large_encode_s_median": r2(pct([r["s"] for r in big], 50)),
            "large_bytes": big[-1]["bytes"] if big else None}  # fmt: skip


def verdict(rep: dict) -> dict:
    p95 = rep["latency"]["all"]["oldest_change_to_frame"]["p95_ms"]
    page = rep["grid_page"]["server_s_max"]
    fo = rep.get("failover") or {}
    return {
        "latency_p95_le_1s": p95 is not None and p95 <= GOALS["latency_p95_s"] * 1000,
        "grid_page_le_1s": page is not None and page <= GOALS["grid_page_server_s"],
        "takeover_within_ttl": (
            fo.get("lock_taken_max_s") is not None
            and fo["lock_taken_max_s"] <= fo["lock_ttl_s"] + 5.5
        ),  # fmt: skip
        "exact_after_failover": fo.get("time_to_exact_s") is not None,
    }


if __name__ == "__main__":
    main()
