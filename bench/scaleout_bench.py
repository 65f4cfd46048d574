"""Scale-out benchmark (issue 20, section 1): the README's "Running in a cluster", on one machine.

Usage: python bench/scaleout_bench.py [--workers 3] [--clients 500] [--seconds 60]
                                      [--clusters 10] [--churn 60] [--lock-ttl 15]
                                      [--progress FILE] [--budget-minutes 75]

What runs, every process on 127.0.0.1 and free ports, stopped by PID at the end:

* Redis and PostgreSQL from Debian's packages (tests/helpers/services.py), in temporary
  directories;
* two cluster hosts (this script with `--serve-clusters`): `--clusters` simulated clusters,
  each served over HTTP by its own fake Kubernetes API server (dashboard/simulator), so that
  a second collector sees the same clusters as the first. One is `large` (5,000 nodes x 30
  DaemonSets, `--large-nodes/--large-daemonsets`) with a host process of its own, the others
  demo-sized and sharing one; each churns at `--churn` events per minute (crashes, flaps,
  nodes leaving and joining...) and the bench starts rollouts on top (the large cluster's at
  the start of the window, a demo cluster's every 15 s), queued into the simulator's own
  clock thread so that a command never waits for a long step;
* one `manage.py collect` (this script with `--collect`: the same command with timing hooks),
  and later a second one, the standby;
* `--workers` daphne web workers (`DAEMONVIZ_EMBEDDED_COLLECTOR=false`, this script with
  `--worker`: daphne's CLI with a timing hook around the snapshot reader);
* `--clients` websocket clients (this script with `--run-clients`, aiohttp), spread
  round-robin over the workers: grid sockets of every cluster with several filter sets, and
  wall-display sockets of walls showing several clusters.

Measured in one run, in phases (setup, sync, clients, window, failover). The JSON report is
printed on stdout at the end, also when a phase fails or times out or the run is stopped
(SIGTERM, Ctrl-C): each phase says "done", "timed out", "failed" or "not reached" and why.
Meanwhile `--progress` (JSON lines) gets each phase's figures as soon as it ends:

1. change -> websocket frame at the client: the cluster hosts stamp every object write with
   the wall clock (by resourceVersion), the collector records which resourceVersions each
   published revision carried, and each client stamps each frame's arrival; joining them
   gives, per frame and client, the age of the oldest change it carries;
2. grid page of the large cluster, from each worker: server time by phase from the page's
   `Server-Timing` header (snapshot, view, render, total), the snapshot decodes that
   overlapped it (the worker's hook), response time at the client;
3. RSS and CPU of every process (workers, collector, hosts, clients, Redis), Redis memory,
   history rows/s written to PostgreSQL;
4. failover under load: a rollout of the large cluster starts, the collector is killed
   (SIGKILL); the standby must take the locks within the TTL; then probes pause the
   simulators, wait for the pipeline to drain, compare every cluster's snapshot with a fresh
   build of the fake API server's objects and every client's last revision with the
   snapshot's, and resume: time to exact. Bounded by `--failover-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import os
import queue as queue_lib
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
    writes = Trace(str(folder / f"writes-{spec['name']}.jsonl"))
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
    # Commands for a simulator run on its own clock thread, between two steps, instead of
    # waiting for its lock here: a step of the large simulator under load (a rollout of
    # 5,000 nodes) holds it for minutes, and this loop would stall every other command.
    queues: dict[str, queue_lib.SimpleQueue] = {}
    rollouts: list[dict] = []

    def queued_steps(sim: Simulator, q: queue_lib.SimpleQueue) -> None:
        step = sim.step

        def drain_then_step(seconds: float) -> None:
            while True:
                try:
                    fn = q.get_nowait()
                except queue_lib.Empty:
                    break
                fn()
            step(seconds)

        sim.step = drain_then_step  # type: ignore[method-assign]

    for c in spec["clusters"]:
        t0 = time.monotonic()
        sim = Simulator.from_scenario(c["scenario"], seed=c["seed"], nodes=c.get("nodes"),
                                      daemonsets=c.get("daemonsets"), churn=c["churn"])  # fmt: skip
        sim.store._bench_slug = c["slug"]
        sims[c["slug"]] = sim
        queues[c["slug"]] = queue_lib.SimpleQueue()
        queued_steps(sim, queues[c["slug"]])
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

    def start_rollout(slug: str, record: dict) -> None:
        """On the clock thread: roll the widest-budget RollingUpdate DaemonSet not rolling."""
        sim = sims[slug]
        keys = sorted(k for k, ds in sim.controller.daemonsets.items()
                      if ds.rec.strategy == "RollingUpdate" and not ds.rollout)  # fmt: skip
        # The widest budget first: a rollout that moves many cells per second.
        keys.sort(key=lambda k: str(sim.controller.daemonsets[k].rec.max_unavailable) != "20%")
        record["ds"] = keys[0] if keys else None
        if keys:
            sim.rollout(keys[0])
        record["t_started"] = time.time()

    def rolling(slug: str) -> list[str]:
        for _ in range(10):  # read from this thread while the clock thread writes
            with contextlib.suppress(RuntimeError):
                return sorted(k for k, ds in sims[slug].controller.daemonsets.items()
                              if ds.rollout)  # fmt: skip
        return []

    # A long read timeout: Redis under load (the failover) answered after redis-py's 5 s.
    rds = redis_lib.Redis.from_url(spec["redis"], socket_timeout=60)

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
        if cmd == "rollout":  # queued: the reply does not wait for the simulator
            record = {"slug": rest[0], "t_queued": time.time(), "ds": None, "t_started": None}
            rollouts.append(record)
            queues[rest[0]].put(lambda r=record: start_rollout(r["slug"], r))
            reply = {"queued": rest[0], "index": len(rollouts) - 1}
        elif cmd == "rolling":
            reply = {"rolling": rolling(rest[0]), "rollouts": rollouts}
        elif cmd == "rollouts":
            reply = {"rollouts": rollouts}
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


def run_collect(trace_path: str, clusters: str = "") -> None:
    """Child mode: `manage.py collect` with hooks recording what each revision carried."""
    _setup_django()
    from dashboard.collect import collector as col
    from dashboard.collect import supervisor as sup
    from dashboard.coverage.events import Change

    trace = Trace(trace_path)
    # SIGUSR2: every thread's stack into the log (the conductor asks before the kill: the
    # mid-size runs saw the large cluster's publications stop while the demos' went on).
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True)
    orig_apply = col.ClusterCollector._apply

    def _apply(self, events):
        rvs = []
        kinds: dict[str, int] = {}
        for e in events:
            if isinstance(e, Change):
                rv = getattr(e.record, "resource_version", "")
                if rv.isdigit():
                    rvs.append(int(rv))
            name = f"{type(e).__name__}:{type(getattr(e, 'record', None)).__name__}"
            kinds[name] = kinds.get(name, 0) + 1
        self._bench_rvs = rvs
        self._bench_kinds = kinds  # what a slow or wide tick was made of
        t0 = time.time()
        try:
            return orig_apply(self, events)
        finally:
            self._bench_apply_s = time.time() - t0

    col.ClusterCollector._apply = _apply
    pending: dict[tuple[str, int], dict] = {}
    orig_compute = col.ClusterCollector._compute

    def _compute(self):
        t0 = time.time()
        self._bench_rvs = []
        self._bench_kinds = {}
        self._bench_apply_s = 0.0
        delta, payload = orig_compute(self)
        if payload is not None:
            t1 = time.time()
            cells = len(payload.get("cells", ()))
            extra = {}
            if t1 - t0 > 1.0 or cells >= 1000:
                extra = {"kinds": self._bench_kinds, "apply_s": round(self._bench_apply_s, 3)}
            pending[(self.cluster.slug, payload["revision"])] = {
                "rvs": self._bench_rvs, "t_compute": t0, "t_payload": t1, "cells": cells, **extra,
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
    orig_pack = sup.pack_matrix

    def pack_matrix(matrix):
        # Packing happens under the cluster's lock, compressing after it: time the first.
        t0 = time.perf_counter()
        packed = orig_pack(matrix)
        trace.emit({"k": "snap", "s": time.perf_counter() - t0, "bytes": len(packed),
                    "cells": len(matrix.cells), "t": time.time()})  # fmt: skip
        return packed

    sup.pack_matrix = pack_matrix
    from django.core.management import call_command

    call_command("collect", clusters=clusters)


# =========================================================================== web worker child


def run_worker(port: int, trace_path: str) -> None:
    """Child mode: daphne's CLI with a hook timing snapshot loads."""
    _setup_django()
    from dashboard.collect import remote

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
    # The grid page's own time comes from its Server-Timing header (dashboard/grid/views.py).
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

    def results(connected: int) -> dict:
        return {
            "connected": connected, "closed": state["closed"],
            "errors": state["errors"], "n_errors": state["n_errors"],
            "reconnects": state["reconnects"], "failed_handshakes": state["failed_handshakes"],
            "resync_frames": state["resync"], "recs": recs,
            "loop_lag": dist(state["lag"]),
        }  # fmt: skip

    def dump(path: str, connected: int) -> None:
        tmp = Path(path + ".tmp")
        tmp.write_text(json.dumps(results(connected)))
        tmp.replace(path)

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        # SIGUSR1: the results so far (the conductor reads the window's before the failover).
        loop.add_signal_handler(signal.SIGUSR1, lambda: dump(spec["partial"], state["connected"]))
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
        dump(spec["out"], connected_at_stop)

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


class PhaseTimeout(RuntimeError):
    """A phase's wait ran out: the report marks it, and the phases after it, not reached."""


class Host:
    """A cluster host child: commands on its stdin, one JSON reply a line on its stdout,
    read by a thread so that a wait for a reply has a timeout."""

    def __init__(self, name: str, proc: subprocess.Popen, stack: Stack):
        self.name, self.proc, self.stack = name, proc, stack
        self.lines: queue_lib.SimpleQueue = queue_lib.SimpleQueue()
        threading.Thread(target=self._read, daemon=True, name=f"host-{name}").start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def reply(self, timeout: float, what: str) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue_lib.Empty:
            raise PhaseTimeout(f"host {self.name}: no reply to {what} in {timeout:.0f} s") from None
        if not line:
            raise RuntimeError(f"cluster host {self.name} died:\n" + self.stack.tail(self.name))
        return json.loads(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def cmd(self, line: str, timeout: float = 60.0) -> dict:
        self.send(line)
        return self.reply(timeout, repr(line))


class Stack:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, object] = {}
        self.env: dict[str, str] = {}
        self.workers: list[str] = []
        self.hosts: dict[str, Host] = {}
        self.host_of: dict[str, Host] = {}  # cluster slug -> its host

    def spawn(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        log_file = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.logs[name] = log_file
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=kw.pop("stdout", log_file),
                                stderr=log_file, **kw)  # fmt: skip
        self.procs[name] = proc
        return proc

    def spawn_host(self, name: str, spec: dict) -> Host:
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps({**spec, "name": name}))
        proc = self.spawn(name, [PY, SELF, "--serve-clusters", str(path)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        host = self.hosts[name] = Host(name, proc, self)
        for c in spec["clusters"]:
            self.host_of[c["slug"]] = host
        return host

    def tail(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def host_cmd(self, line: str, timeout: float = 60.0) -> dict:
        """A command about one cluster (its slug second), sent to that cluster's host."""
        return self.host_of[line.split()[1]].cmd(line, timeout)

    def all_hosts(self, line: str, timeout: float) -> list[dict]:
        """The same command to every host at once, their replies together."""
        for host in self.hosts.values():
            host.send(line)
        deadline = time.monotonic() + timeout
        return [h.reply(max(1.0, deadline - time.monotonic()), repr(line))
                for h in self.hosts.values()]  # fmt: skip

    def manage(self, *argv: str) -> str:
        out = subprocess.run([PY, "manage.py", *argv], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stdout + out.stderr)
        return out.stdout

    def stop(self) -> None:
        for host in self.hosts.values():
            if host.proc.poll() is None:
                with contextlib.suppress(Exception):
                    host.send("quit")
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
    code, took, size, _ = http_get_headers(url, cookie, timeout)
    return code, took, size


def http_get_headers(url: str, cookie: str, timeout: float = 60) -> tuple[int, float, int, dict]:
    # Gzip accepted, as a browser does (the grid page is compressed by the view).
    req = urllib.request.Request(url, headers={"Cookie": cookie, "Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, time.perf_counter() - t0, len(body), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - t0, 0, dict(exc.headers)


def server_timing(header: str | None) -> dict[str, float]:
    """`Server-Timing: snapshot;dur=1.2, view;dur=30.5, ...` -> seconds by phase."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        with contextlib.suppress(ValueError):
            out[name] = float(dur) / 1000.0
    return out


def wait_for(pred, seconds: float, what: str, details=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if pred():
                return
        time.sleep(0.2)
    raise PhaseTimeout(f"timed out after {seconds:.0f} s waiting for {what}\n{details()}"[:2000])


class RedisWatch:
    """Every 2 s: Redis' memory, and the large cluster's status report (its state, revision
    and pod watch counters: a relist shows as `lists` going up). When memory reaches a new
    high above 200 MB, which keys hold it (the first run saw 900 MB during the failover)."""

    def __init__(self, client):
        self.client = client
        self.out: dict = {"used_mb_max": 0.0, "used_mb": [], "large_status": [], "big_keys": None}
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="redis-watch").start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        last_seen = None
        while not self._stop.wait(2.0):
            with contextlib.suppress(Exception):
                used = self.client.info("memory")["used_memory"] / 2**20
                self.out["used_mb"].append((round(time.time(), 1), round(used, 1)))
                if used > max(200.0, self.out["used_mb_max"] * 1.5):
                    self.out["big_keys"] = {"at_mb": round(used, 1), "keys": self._big_keys()}
                self.out["used_mb_max"] = round(max(used, self.out["used_mb_max"]), 1)
            with contextlib.suppress(Exception):
                st = json.loads(self.client.get(f"daemonviz:status:{LARGE}"))
                pods = st.get("watch", {}).get("pods", {})
                # Recorded when anything but the revision moved (or every 10 revisions).
                seen = (st["holder"], st["state"], pods.get("lists"), pods.get("history_resets"),
                        pods.get("errors"), st.get("last_error"), st["revision"] // 10)  # fmt: skip
                if seen != last_seen:
                    self.out["large_status"].append([round(time.time(), 1), *seen[:-1],
                                                     st["revision"]])  # fmt: skip
                last_seen = seen

    def _big_keys(self) -> list:
        sizes = []
        for k in self.client.scan_iter(count=500):
            with contextlib.suppress(Exception):
                sizes.append((self.client.memory_usage(k) or 0, k.decode(errors="replace"),
                              self.client.type(k).decode()))  # fmt: skip
        sizes.sort(reverse=True)
        return [[round(b / 2**20, 1), k, t] for b, k, t in sizes[:8]] + [["keys", len(sizes)]]


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


PHASES = ("setup", "sync", "clients", "window", "failover")


class Progress:
    """What the run found so far, one JSON line per event in `--progress` (kept after the
    run, outside the temporary directory), and each phase's state in the report: a run
    stopped or timed out half-way still says what it measured and where it stopped."""

    def __init__(self, path: Path, report: dict):
        self.path = path
        self.report = report
        report["phases"] = {name: {"state": "not reached"} for name in PHASES}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        self._t0 = time.monotonic()

    def emit(self, event: str, **data) -> None:
        rec = {"t": round(time.time(), 2), "elapsed_s": round(time.monotonic() - self._t0, 1),
               "load": loadavg(), "event": event, **data}  # fmt: skip
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    @contextlib.contextmanager
    def phase(self, name: str):
        t0 = time.monotonic()
        self.report["phases"][name] = {"state": "running"}
        self.emit(f"{name} started")
        try:
            yield
        except BaseException as exc:
            state = "timed out" if isinstance(exc, PhaseTimeout) else "failed"
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                state = "interrupted"
            why = f"{type(exc).__name__}: {exc}"[:1500]
            self.report["phases"][name] = {"state": state, "why": why,
                                           "s": round(time.monotonic() - t0, 1)}  # fmt: skip
            self.emit(f"{name} {state}", why=why)
            raise
        self.report["phases"][name] = {"state": "done", "s": round(time.monotonic() - t0, 1)}
        self.emit(
            f"{name} done", **{k: self.report[k] for k in PHASE_KEYS[name] if k in self.report}
        )

    def close(self) -> None:
        """Phases never started say why: the first one that did not finish."""
        first = next(((n, p) for n, p in self.report["phases"].items() if p["state"] != "done"),
                     None)  # fmt: skip
        for _name, ph in self.report["phases"].items():
            if ph["state"] == "not reached" and first is not None:
                ph["why"] = f"the {first[0]} phase {first[1]['state']}"
        self.emit("end", report=self.report)


# The report's keys each phase fills (also streamed into the progress file when it ends).
PHASE_KEYS = {
    "setup": ("host_build_s", "host_build_by_host_s"),
    "sync": ("initial_sync_s",),
    "clients": ("clients_connect_s", "clients_connected_before_window"),
    "window": ("window", "redis_memory_mb", "history_rows_per_s", "history_rows_in_window",
               "processes", "latency", "grid_page", "snapshots", "rollouts", "clients_in_window"),
    "failover": ("failover",),
}  # fmt: skip


class Budget:
    """The whole run's time limit (`--budget-minutes`): no wait outlasts it."""

    def __init__(self, minutes: float):
        self.end = time.monotonic() + minutes * 60

    def cap(self, seconds: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise PhaseTimeout("the run's --budget-minutes is used up")
        return min(seconds, left)


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
    ap.add_argument("--shard-large", action="store_true",
                    help="two `collect` processes: the large cluster in one, the demo clusters "
                         "in the other (`collect --clusters`); implies --no-failover")  # fmt: skip
    ap.add_argument("--failover-seconds", type=float, default=None,
                    help="time limit of the failover phase (default 3 x TTL + 420 s)")  # fmt: skip
    ap.add_argument("--budget-minutes", type=float, default=75.0,
                    help="time limit of the whole run: phases past it are reported not reached")  # fmt: skip
    ap.add_argument("--progress", type=Path, default=None,
                    help="JSON lines progress file (default: $TMPDIR/daemonviz-scaleout-<time>.jsonl)")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--serve-clusters", help=argparse.SUPPRESS)
    ap.add_argument("--collect", help=argparse.SUPPRESS)
    ap.add_argument("--collect-clusters", default="", help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--run-clients", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.shard_large:
        args.no_failover = True
    if args.serve_clusters:
        return serve_clusters(args.serve_clusters)
    if args.collect:
        return run_collect(args.collect, args.collect_clusters)
    if args.worker:
        return run_worker(int(args.worker[0]), args.worker[1])
    if args.run_clients:
        return run_clients(args.run_clients)
    if args.progress is None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        args.progress = Path(tempfile.gettempdir()) / f"daemonviz-scaleout-{stamp}.jsonl"
    report: dict = {"args": {k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()
                             if k not in ("serve_clusters", "collect", "worker", "run_clients")},
                    "load_start": loadavg(), "goals": GOALS}  # fmt: skip
    progress = Progress(args.progress, report)
    log(f"progress in {args.progress}")

    def on_term(signum, frame):  # the lead's Ctrl-C or kill: still the JSON so far
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        conduct(args, report, progress)
    except BaseException as exc:  # noqa: BLE001 (reported in the JSON, and the exit code)
        report["stopped"] = f"{type(exc).__name__}: {exc}"[:1500]
        log(f"stopped: {report['stopped']}")
    finally:
        report["load_end"] = loadavg()
        report["verdict"] = verdict(report)
        progress.close()
        print(json.dumps(report, indent=1), flush=True)
    sys.exit(0 if all(p["state"] == "done" for p in report["phases"].values()
                      if not (p["state"] == "not reached" and args.no_failover)) else 1)  # fmt: skip


def conduct(args, report: dict, progress: Progress) -> None:
    from tests.helpers import services
    from tests.helpers.ports import free_port
    from tests.helpers.processes import stop_process

    budget = Budget(args.budget_minutes)
    tmp = Path(tempfile.mkdtemp(prefix="daemonviz-scaleout-"))
    log(f"scale-out bench in {tmp}; load {loadavg()}")
    report["tmp"] = str(tmp)
    stack = Stack(args, tmp)
    sampler: Sampler | None = None
    redis_watch: RedisWatch | None = None
    clients: subprocess.Popen | None = None
    redis_srv = pg = None
    try:
        with progress.phase("setup"):
            redis_srv = services.start_redis(tmp)
            pg = services.start_postgres()
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
            # The large cluster has a host process of its own (its simulator and API server
            # would otherwise share one GIL with the nine others'); the demos share one.
            groups = {"host-large": clusters[:1], "host-demos": clusters[1:]}
            t0 = time.monotonic()
            for name, members in groups.items():
                if members:
                    stack.spawn_host(name, {"dir": str(tmp), "clusters": members,
                                            "redis": redis_srv.url})  # fmt: skip
            kubeconfigs: dict[str, str] = {}
            report["host_build_by_host_s"] = {}
            for name, host in stack.hosts.items():
                kubeconfigs |= host.reply(budget.cap(900), "the clusters being built")["ready"]
                report["host_build_by_host_s"][name] = round(time.monotonic() - t0, 1)
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

        import redis as redis_lib

        # A long read timeout, and every poll below survives a slow answer: during the
        # failover Redis once took over redis-py's default 5 s to answer (its memory at 900 MB).
        rds = redis_lib.Redis.from_url(redis_srv.url, socket_timeout=60)
        redis_watch = RedisWatch(redis_lib.Redis.from_url(redis_srv.url, socket_timeout=60))
        report["redis_watch"] = redis_watch.out

        # ---------------------------------------------------------------- collector, workers
        with progress.phase("sync"):
            t0 = time.monotonic()
            shard = ["--collect-clusters", "large"] if args.shard_large else []
            collector = stack.spawn(
                "collect1", [PY, SELF, "--collect", str(tmp / "collect1.jsonl"), *shard]
            )
            if args.shard_large:  # the demo clusters in a process of their own
                stack.spawn("collect-demos", [PY, SELF, "--collect",
                                              str(tmp / "collect-demos.jsonl"),
                                              "--collect-clusters", "demo*"])  # fmt: skip
            for i in range(args.workers):
                port = free_port()
                stack.spawn(
                    f"worker{i}", [PY, SELF, "--worker", str(port), str(tmp / f"worker{i}.jsonl")]
                )
                stack.workers.append(f"http://127.0.0.1:{port}")
            redis_watch.start()
            sampler = Sampler({"collect1": collector.pid, "redis": redis_srv.proc.pid,
                               **({"collect-demos": stack.procs["collect-demos"].pid}
                                  if args.shard_large else {}),
                               **{name: h.proc.pid for name, h in stack.hosts.items()},
                               **{f"worker{i}": stack.procs[f"worker{i}"].pid
                                  for i in range(args.workers)}}).start()  # fmt: skip
            for i, url in enumerate(stack.workers):
                wait_for(lambda u=url: http_get(u + "/healthz", "", 2)[0] == 200, budget.cap(120),
                         f"worker {i}", lambda i=i: stack.tail(f"worker{i}"))  # fmt: skip

            def status(slug: str) -> dict:
                raw = rds.get(f"daemonviz:status:{slug}")
                return json.loads(raw) if raw else {}

            wait_for(lambda: all(status(s).get("state") == "synced"
                                 and rds.exists(f"daemonviz:meta:{s}") for s in slugs),
                     budget.cap(900), "every cluster synced by the collector",
                     lambda: stack.tail("collect1"))  # fmt: skip
            report["initial_sync_s"] = round(time.monotonic() - t0, 1)
            log(f"collector synced all {len(slugs)} clusters in {report['initial_sync_s']} s")

        # ---------------------------------------------------------------- clients
        with progress.phase("clients"):
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
                                  "url": f"{ws}/ws/wall/{auth['tokens'][wall]}/",
                                  "headers": headers})  # fmt: skip
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
            client_partial = tmp / "clients-partial.json"
            client_spec.write_text(json.dumps({"clients": specs, "status": str(client_status),
                                               "out": str(client_out),
                                               "partial": str(client_partial)}))  # fmt: skip
            clients = stack.spawn("clients", [PY, SELF, "--run-clients", str(client_spec)])
            sampler.add("clients", clients.pid)

            def client_state() -> dict:
                return json.loads(client_status.read_text())

            t_clients = time.monotonic()
            with contextlib.suppress(PhaseTimeout):  # fewer than all is a result, not a crash
                wait_for(lambda: client_state()["connected"] >= args.clients, budget.cap(300),
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

        with progress.phase("window"):
            budget.cap(args.seconds)
            w0 = time.time()
            rows0 = history_rows()
            load_window_start = loadavg()
            stack.host_cmd(f"rollout {LARGE}")
            log(f"window of {args.seconds:.0f} s; a rollout on {LARGE} queued")
            page_loads: list[dict] = []
            n_loads = args.page_loads * len(stack.workers)

            def load_pages() -> None:
                # On a thread of its own: a slow page must not hold up the window's rollouts.
                time.sleep(args.seconds * 0.3)
                for n in range(n_loads):
                    if time.time() >= w0 + args.seconds:
                        break
                    wi = n % len(stack.workers)
                    t_req = time.time()
                    try:
                        code, took, size, hdrs = http_get_headers(
                            f"{stack.workers[wi]}/clusters/{LARGE}/", cookie, timeout=60
                        )
                    except OSError as exc:  # a timeout is a result
                        code, took, size, hdrs = None, time.time() - t_req, 0, {"error": str(exc)}
                    page_loads.append({"worker": wi, "status": code, "client_s": round(took, 3),
                                       "bytes": size, "t": t_req,
                                       "server_timing_s": server_timing(hdrs.get("Server-Timing")),
                                       "error": hdrs.get("error")})  # fmt: skip
                    time.sleep(2)

            pages = threading.Thread(target=load_pages, daemon=True, name="page-loads")
            pages.start()
            next_demo_rollout = time.time() + 5
            demo_i = 0
            while time.time() < w0 + args.seconds:
                if demos and time.time() >= next_demo_rollout:
                    stack.host_cmd(f"rollout {demos[demo_i % len(demos)]}")
                    demo_i += 1
                    next_demo_rollout += 15
                time.sleep(0.2)
            w1 = time.time()
            rows1 = history_rows()
            report["window"] = {"seconds": round(w1 - w0, 1), "load_start": load_window_start,
                                "load_end": loadavg()}  # fmt: skip
            report["redis_memory_mb"] = redis_memory(rds)
            report["history_rows_per_s"] = round((rows1 - rows0) / (w1 - w0), 1)
            report["history_rows_in_window"] = rows1 - rows0
            report["processes"] = {name: sampler.summary(name, w0, w1) for name in sampler.procs}
            report["rollouts"] = [r for h in stack.hosts.values()
                                  for r in h.cmd("rollouts", budget.cap(60))["rollouts"]]  # fmt: skip
            pages.join(timeout=budget.cap(65))  # the load under way, if any, ends or times out
            report["grid_page"] = grid_pages(tmp, list(page_loads), args.workers)
            report["snapshots"] = snapshot_stats(tmp, w0, w1)
            # The clients' frames so far, without stopping them (they see the failover).
            t_sig = time.time()
            clients.send_signal(signal.SIGUSR1)
            wait_for(lambda: client_partial.stat().st_mtime >= t_sig, budget.cap(120),
                     "the clients' results of the window")  # fmt: skip
            got = json.loads(client_partial.read_text())
            report["clients_in_window"] = client_summary(got)
            report["latency"] = latency(tmp, specs, got["recs"], w0, w1)
            lat = report["latency"]["all"]["oldest_change_to_frame"]
            log(f"window: change -> frame p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms "
                f"({lat['n']} frames); grid page server {report['grid_page']['server_s_max']} s; "
                f"history {report['history_rows_per_s']} rows/s")  # fmt: skip

        # ---------------------------------------------------------------- failover
        if not args.no_failover:
            with progress.phase("failover"):
                limit = args.failover_seconds or args.lock_ttl * 3 + 420
                report["failover"] = {"limit_s": limit}
                failover(stack, rds, slugs, client_state, args, sampler, report["failover"],
                         min(limit, budget.cap(limit)), history_rows)  # fmt: skip
        else:
            report["phases"]["failover"] = {"state": "not reached", "why": "--no-failover"}
    finally:
        if clients is not None and clients.poll() is None:
            clients.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                clients.wait(timeout=60)
                got = json.loads((tmp / "clients-out.json").read_text())
                report["clients"] = client_summary(got)
        if redis_watch is not None:
            redis_watch.stop()
        if sampler is not None:
            with contextlib.suppress(Exception):
                sampler.stop()
                report["processes_whole_run"] = {n: sampler.summary(n, 0, time.time())
                                                 for n in sampler.procs}  # fmt: skip
        stack.stop()
        if redis_srv is not None:
            stop_process(redis_srv.proc)
        if pg is not None:
            services.stop_postgres(pg)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def client_summary(got: dict) -> dict:
    return {k: got[k] for k in ("connected", "closed", "n_errors", "errors", "reconnects",
                                "failed_handshakes", "resync_frames", "loop_lag")}  # fmt: skip


def redis_memory(rds) -> dict:
    info = rds.info("memory")
    return {"used": round(info["used_memory"] / 2**20, 1),
            "rss": round(info["used_memory_rss"] / 2**20, 1),
            "peak": round(info["used_memory_peak"] / 2**20, 1)}  # fmt: skip


def failover(stack: Stack, rds, slugs: list[str], client_state, args, sampler: Sampler,
             out: dict, limit: float, history_rows) -> None:  # fmt: skip
    """Fills `out` as it goes: a phase stopped by its time limit keeps what it measured."""
    import redis as redis_lib

    deadline = time.time() + limit

    def left(cap: float) -> float:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise PhaseTimeout(f"the failover's {limit:.0f} s are up")
        return min(cap, remaining)

    def lock_holder(slug: str) -> str | None:
        raw = rds.get(f"daemonviz:lock:{slug}")
        return raw.decode().rsplit("/", 1)[0] if raw else None

    out["lock_ttl_s"] = args.lock_ttl
    old = {s: lock_holder(s) for s in slugs}
    standby = stack.spawn("collect2", [PY, SELF, "--collect", str(stack.tmp / "collect2.jsonl")])
    sampler.add("collect2", standby.pid)
    # The standby is up (Django loaded, first reconcile pass made: it found every lock held).
    wait_for(lambda: "running" in stack.tail("collect2"), left(90), "the standby collector")
    time.sleep(args.lock_ttl / 3 + 1)
    # A rollout of the large cluster, queued into its simulator's clock: kill once it runs.
    index = stack.host_cmd(f"rollout {LARGE}", left(60))["index"]

    def started() -> dict | None:
        rec = stack.host_cmd(f"rolling {LARGE}", left(60))["rollouts"][index]
        return rec if rec["t_started"] else None

    # The simulator takes the command between two steps; under load a step of the large
    # cluster in a rollout takes minutes. Past 120 s, a rollout already rolling will do.
    with contextlib.suppress(PhaseTimeout):
        wait_for(lambda: started() is not None, left(120), f"the rollout on {LARGE} to start")
    rollout = started()
    rolling = stack.host_cmd(f"rolling {LARGE}", left(60))["rolling"]
    if rollout is None and not rolling:
        raise PhaseTimeout(f"no rollout on {LARGE} started within 120 s")
    out["rollout"] = rollout["ds"] if rollout else None
    out["rollout_queued_to_started_s"] = (
        r2(rollout["t_started"] - rollout["t_queued"]) if rollout else "not started in 120 s"
    )
    if rollout is not None:
        time.sleep(3)
        rolling = stack.host_cmd(f"rolling {LARGE}", left(60))["rolling"]
    out["rolling_at_kill"] = rolling
    # Where the dying collector's threads stand, and when it last published the large one.
    size = (stack.tmp / "collect1.log").stat().st_size
    stack.procs["collect1"].send_signal(signal.SIGUSR2)
    time.sleep(1.0)
    with (stack.tmp / "collect1.log").open("rb") as f:
        f.seek(size)
        out["collector_threads_before_kill"] = f.read(30000).decode(errors="replace")
    pubs = [r for r in read_trace(stack.tmp / "collect1.jsonl")
            if r.get("k") == "pub" and r["s"] == LARGE]  # fmt: skip
    out["large_last_published_before_kill_s"] = (
        r2(time.time() - pubs[-1]["t_sent"]) if pubs else None
    )
    rows0, t_rows0 = history_rows(), time.time()
    t_kill = time.time()
    out["t_kill"] = t_kill
    stack.procs["collect1"].send_signal(signal.SIGKILL)
    stack.procs["collect1"].wait()
    log(f"collector killed mid-rollout (rolling on {LARGE}: {', '.join(rolling)})")
    took: dict[str, float] = {}
    synced: dict[str, float] = {}
    out["lock_taken_after_s"] = took
    out["synced_after_s"] = synced
    redis_errors = 0
    while time.time() < deadline and len(synced) < len(slugs):
        for s in slugs:
            try:
                h = lock_holder(s)
                raw = rds.get(f"daemonviz:status:{s}")
            except redis_lib.RedisError:  # slow to answer: poll again
                redis_errors += 1
                continue
            if s not in took and h is not None and h != old[s]:
                took[s] = round(time.time() - t_kill, 2)
            st = json.loads(raw) if raw else {}
            if s in took and s not in synced and st.get("state") == "synced" \
                    and st.get("holder") != old[s]:  # fmt: skip
                synced[s] = round(time.time() - t_kill, 2)
        out["lock_taken_max_s"] = r2(max(took.values(), default=None))
        out["synced_after_s_max"] = r2(max(synced.values(), default=None))
        time.sleep(0.1)
    out["redis_errors_while_polling"] = redis_errors
    log(f"standby took every lock within {out['lock_taken_max_s']} s, synced "
        f"{out['synced_after_s_max']} s after the kill")  # fmt: skip
    probes: list[dict] = []
    out["probes"] = probes
    out["time_to_exact_s"] = None
    out["clients_behind_at_exact"] = None
    client_specs = json.loads((stack.tmp / "clients.json").read_text())["clients"]
    while time.time() < deadline:
        # Every host pauses its simulators, waits for the pipeline to drain and compares.
        replies = stack.all_hosts("probe 1.5 60", left(400))
        p: dict = {"t_pause": min(r["t_pause"] for r in replies), "clusters": {},
                   "not_drained": [], "exact": all(r["exact"] for r in replies),
                   "drained_s": max(r.get("drained_s", 0) for r in replies),
                   "compared_s": max(r.get("compared_s", 0) for r in replies)}  # fmt: skip
        for r in replies:
            p["clusters"].update(r["clusters"])
            p["not_drained"] += r["not_drained"]
        # Clients' positions once the pipeline drained (the status file lags ≤ 0.5 s).
        time.sleep(1.2)
        st = client_state()
        behind = 0
        examples = []
        for c, w in zip(client_specs, st["where"], strict=True):
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
                        examples.append({"kind": c["kind"], "slug": s, "at": pos,
                                         "snapshot": [info["epoch"], info["revision"]]})  # fmt: skip
        p["clients_behind"] = behind
        p["behind_examples"] = examples
        p["t_pause_after_kill_s"] = round(p["t_pause"] - t_kill, 2)
        probes.append({k: v for k, v in p.items() if k != "t_pause"})
        log(f"probe at +{p['t_pause_after_kill_s']} s: exact={p['exact']}, clients behind={behind}")
        if p["exact"] and behind == 0:
            out["time_to_exact_s"] = r2(p["t_pause"] - t_kill)
            out["clients_behind_at_exact"] = 0
            break
        time.sleep(1.0)
    out["history_rows_per_s_after_kill"] = round(
        (history_rows() - rows0) / max(0.1, time.time() - t_rows0), 1
    )
    out["processes"] = {name: sampler.summary(name, t_kill, time.time()) for name in sampler.procs}
    with contextlib.suppress(redis_lib.RedisError):
        out["redis_memory_mb"] = redis_memory(rds)
    out.pop("t_kill", None)
    if out["time_to_exact_s"] is None:
        raise PhaseTimeout(f"not exact within the failover's {limit:.0f} s")


def latency(tmp: Path, specs: list[dict], recs: list[list], w0: float, w1: float) -> dict:
    writes: dict[tuple[str, int], float] = {}
    for path in sorted(tmp.glob("writes-*.jsonl")):
        for r in read_trace(path):
            writes[(r["s"], r["rv"])] = r["t"]
    pubs: dict[tuple[str, str, int], dict] = {}
    by_rev: dict[tuple[str, int], list[dict]] = {}
    for name in ("collect1.jsonl", "collect2.jsonl", "collect-demos.jsonl"):
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
                    cands = [x for x in by_rev.get((slug, rev), []) if x["t_send"] <= t]
                    p = max(cands, key=lambda x: x["t_send"]) if cands else None
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
    # The slowest ticks over the whole run: how many cells, and what events, they carried.
    slow = sorted((p for p in pubs.values() if "kinds" in p),
                  key=lambda p: p["t_payload"] - p["t_compute"], reverse=True)[:10]  # fmt: skip
    out["slowest_ticks"] = [{"slug": p["s"], "rev": p["rev"], "at": round(p["t_compute"], 1),
                             "compute_s": r2(p["t_payload"] - p["t_compute"]),
                             "apply_s": p.get("apply_s"), "cells": p["cells"],
                             "events": p["kinds"]} for p in slow]  # fmt: skip
    return out


def grid_pages(tmp: Path, loads: list[dict], n_workers: int) -> dict:
    """The large cluster's grid page from each worker: server time by phase from its
    Server-Timing header, response time at the client, and the snapshot decodes that
    overlapped it (from the worker's hook on the reader)."""
    per = []
    traces = {i: read_trace(tmp / f"worker{i}.jsonl") for i in range(n_workers)}
    for load in loads:
        t = load["t"]
        decodes = [r for r in traces.get(load["worker"], []) if r["k"] == "load"
                   and r["slug"] == LARGE and t <= r["t"] <= t + load["client_s"]]  # fmt: skip
        timing = load.get("server_timing_s") or {}
        per.append({**{k: v for k, v in load.items() if k not in ("t", "server_timing_s")},
                    "server_s": r2(timing.get("total")),
                    "server_phases_s": {k: round(v, 3) for k, v in timing.items() if k != "total"},
                    "snapshot_decodes_s": [r2(r["s"]) for r in decodes]})  # fmt: skip
    server = [p["server_s"] for p in per if p["server_s"] is not None]
    client = [p["client_s"] for p in per if p["status"] == 200]
    all_loads: dict[str, list[float]] = {}
    for recs in traces.values():
        for r in recs:
            if r["k"] == "load":
                all_loads.setdefault(r["slug"], []).append(r["s"])
    return {
        "loads": per,
        "server_s_median": r2(pct(server, 50)),
        "server_s_max": r2(max(server, default=None)),
        "client_s_median": r2(pct(client, 50)),
        "client_s_max": r2(max(client, default=None)),
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
            "large_packed_bytes": big[-1]["bytes"] if big else None}  # fmt: skip


def verdict(rep: dict) -> dict:
    """Each goal: true, false, or None when its phase was not reached."""
    p95 = (((rep.get("latency") or {}).get("all") or {}).get("oldest_change_to_frame")
           or {}).get("p95_ms")  # fmt: skip
    page = (rep.get("grid_page") or {}).get("server_s_max")
    fo = rep.get("failover") or {}
    taken = fo.get("lock_taken_max_s")
    return {
        "latency_p95_le_1s": None if p95 is None else p95 <= GOALS["latency_p95_s"] * 1000,
        "grid_page_le_1s": None if page is None else page <= GOALS["grid_page_server_s"],
        # The TTL, plus the standby's reconcile interval (TTL / 3) and a second of slack.
        "takeover_within_ttl": None if taken is None
        else taken <= fo["lock_ttl_s"] * 4 / 3 + 1,
        "exact_after_failover": None if not fo.get("probes") else fo.get("time_to_exact_s") is not None,
    }  # fmt: skip


if __name__ == "__main__":
    main()
