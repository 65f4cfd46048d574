"""Browser benchmark of the live grid (issue 4, section 6), in headless Chromium.

Usage: python bench/browser_bench.py [--churn 300] [--clients 50] [--latency-seconds 45]
                                      [--reps 3] [--skip-5k]

One run starts its own daphne (temporary SQLite database, two simulated `large` clusters:
`k1` = 1,000 nodes x 20 DaemonSets and `k5` = 5,000 x 30), signs in with Playwright and
prints one JSON report (numbers, machine load, and a markdown section for bench/RESULTS.md)
on stdout; progress goes to stderr.

  1. time to a fully rendered 1,000 x 20 grid (?group=-&expand=*: every row, 20,000 cells);
  2. time to the default view of 5,000 x 30 (healthy groups collapsed);
  3. time to apply a 1,000-cell delta: a frame built by `frames.client_frame` (JSON: cell
     skeletons + ids, column heads, summary) handed to the page's real WebSocket object as
     a MessageEvent, so it runs the ws extension's listener and daemonviz.js's gap check,
     cell rebuild and flash hooks, and htmx's swap of the heads and summary;
  4. change-in-the-simulator -> DOM latency with N other websocket clients (aiohttp)
     connected to the same cluster with the same filters.

How (4) is measured without changing the app: the server runs in a child of this script
(`--serve`), which wraps a few functions before handing over to daphne's own CLI:
`ObjectStore._append` stamps each store write with the wall clock (that is "the change in
the simulator": what an API server would emit), the collector's drain/compute/send record
when those writes were picked up, rendered and published (per matrix revision), and the
consumer records each per-client send. The page stamps each frame's arrival, the end of
the htmx swap and the next animation frame (Date.now(): the same machine clock). Joining
on the revision gives write -> painted per frame, and the stages in between.
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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchkit import loadavg, log, ms, pct, read_trace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project (dashboard, tests.helpers), as in the other benches
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER, PASSWORD = "bench", "bench-browser-pw-1"
CLUSTERS = {"k1": (1000, 20), "k5": (5000, 30)}
GOALS = {"full_1k_s": 2.0, "default_5k_s": 2.0, "delta_1000_ms": 200.0, "latency_p95_s": 1.0}


def r3(x):
    return None if x is None else round(x, 3)


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# =========================================================================== server child


def serve(port: int) -> None:
    """Child mode: install the timing hooks, then run daphne's CLI in this process."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daemonviz.settings")
    django.setup()
    _install_hooks(os.environ["BENCH_TRACE"], os.environ.get("BENCH_TRACE_SLUG", "k1"))
    _rollouts_on_request(
        Path(os.environ["BENCH_TRACE"]).parent, os.environ.get("BENCH_TRACE_SLUG", "k1")
    )
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["-b", "127.0.0.1", "-p", str(port), "daemonviz.asgi:application"])


def _rollouts_on_request(folder: Path, slug: str) -> None:
    """A `rollout-N` file in `folder` starts a rollout (`kubectl rollout restart`) of one of
    the cluster's DaemonSets: every cell of that column turns outdated in one delta, the
    largest frame live churn produces. A `set-N-coalescing-MODE` file switches every
    collector's coalescing (fixed / adaptive) while it runs, and `set-N-churn-RATE` the
    cluster's churn (events per minute): how one run compares them side by side."""
    from dashboard.collect.registry import registry

    def control(name: str) -> None:
        _, _, what, value = name.split("-", 3)
        if what == "coalescing":
            for c in registry.all():
                c.coalescing = value
        elif what == "churn":
            registry.get(slug).simulator.churn.rate = float(value)

    def watch() -> None:
        seen: set[str] = set()
        rollouts = 0
        while True:
            time.sleep(0.05)
            for f in sorted(folder.glob("rollout-*")) + sorted(folder.glob("set-*")):
                if f.name in seen:
                    continue
                seen.add(f.name)
                if f.name.startswith("set-"):
                    control(f.name)
                    (folder / f"done-{f.name}").touch()
                    continue
                rollouts += 1
                collector = registry.get(slug)
                keys = sorted(collector.matrix.daemonsets)
                collector.simulator.rollout(keys[rollouts % len(keys)])

    threading.Thread(target=watch, name="bench-rollouts", daemon=True).start()


def _install_hooks(trace_path: str, slug: str) -> None:
    from dashboard.collect import collector as col
    from dashboard.grid import consumers, fragments, views
    from dashboard.simulator import store as store_mod

    out = open(trace_path, "a", buffering=1)  # noqa: SIM115 (lives as long as the server)
    lock = threading.Lock()

    def emit(rec: dict) -> None:
        line = json.dumps(rec)
        with lock:
            out.write(line + "\n")

    # 1. Every store write, stamped (rv -> wall time); pruned when the collector drains.
    orig_append = store_mod.ObjectStore._append

    def _append(self, event):
        self.__dict__.setdefault("_bench_t", {})[event.rv] = time.time()
        orig_append(self, event)

    store_mod.ObjectStore._append = _append

    # 2. What a drain picked up: the write times of the events since the previous drain.
    orig_drain = col.SimulatedSource.drain
    bench_store: list = [None]  # the traced cluster's store (set by its first compute)

    def drain(self):
        before = self._rv
        items = orig_drain(self)
        t = time.time()
        store = self.simulator.store
        with store._lock:  # the simulator thread appends under this lock
            times = store.__dict__.setdefault("_bench_t", {})
            after = self._rv
            writes = (
                [times[rv] for rv in range(before + 1, after + 1) if rv in times]
                if (before is not None and after is not None and after - before < 100_000)
                else []
            )
            for rv in [rv for rv in times if after is None or rv <= after]:
                del times[rv]
        self._bench = (writes, t) if before is not None else None
        if self.simulator.store is bench_store[0]:
            emit({"kind": "drain", "writes": len(writes), "t": t})
        return items

    col.SimulatedSource.drain = drain

    # 3. Apply + render (worker thread) and publish (event loop), per revision.
    meta: dict[tuple[str, int], dict] = {}
    orig_compute = col.ClusterCollector._compute

    def _compute(self):
        t0 = time.time()
        delta, payload = orig_compute(self)
        if self.cluster.slug == slug and self.simulator is not None:
            bench_store[0] = self.simulator.store
        if payload is not None and self.cluster.slug == slug:
            b = getattr(self._source, "_bench", None)
            meta[(slug, payload["revision"])] = {
                "writes": b[0] if b else [],
                "t_drain": b[1] if b else None,
                "t_compute_start": t0,
                "t_payload": time.time(),
                "cells": len(payload["cells"]),
                "rows_added": len(payload["rows_added"]),
                "rows_removed": len(payload["rows_removed"]),
            }
        return delta, payload

    col.ClusterCollector._compute = _compute
    orig_send = col.ClusterCollector._send

    async def _send(self, payload):
        t0 = time.time()
        await orig_send(self, payload)
        m = meta.pop((payload["slug"], payload["revision"]), None)
        if m is not None:
            emit({"kind": "publish", "rev": payload["revision"], **m, "t_send_start": t0,
                  "t_sent": time.time()})  # fmt: skip

    col.ClusterCollector._send = _send

    # 4. Each per-client frame leaving the consumer.
    orig_gd = consumers.GridConsumer.grid_delta

    async def grid_delta(self, event):
        await orig_gd(self, event)
        if event.get("slug") == slug:
            emit({"kind": "send", "rev": event["revision"], "t": time.time()})

    consumers.GridConsumer.grid_delta = grid_delta

    # 0. Per-cluster churn (BENCH_CHURN_<slug>), e.g. a static 5k cluster beside a churning 1k.
    import dataclasses

    from dashboard.collect import embedded

    orig_enabled = embedded.enabled_clusters

    def _enabled_clusters():
        out = {}
        for slug, c in orig_enabled().items():
            churn = os.environ.get(f"BENCH_CHURN_{slug}")
            out[slug] = dataclasses.replace(c, churn=float(churn)) if churn else c
        return out

    embedded.enabled_clusters = _enabled_clusters

    # 5. Page render breakdown (views call these through module attributes).
    def timed(module, name, kind, **tags):
        orig = getattr(module, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                emit({"kind": kind, **tags, "s": time.perf_counter() - t0, "t": time.time()})

        setattr(module, name, wrapper)

    timed(col.ClusterCollector, "_apply", "matrix_apply")  # all clusters
    timed(fragments, "delta_payload", "delta_render")
    for module, name, part in (
        (views, "build_grid", "build_grid"),
        (fragments, "attach_html", "render_rows"),
        (views, "render_to_string", "grid_template"),
        (views, "_grid_body", "grid_body_total"),
        (views, "render", "page_template"),  # the outer page (incl. the grid html string)
    ):
        timed(module, name, "view", part=part)


# =========================================================================== ws clients child


def ws_clients(url: str, origin: str, cookie: str, n: int, seconds: float, out: str) -> None:
    """Child mode: N websocket clients with the session cookie; frame receipt times."""
    import aiohttp

    rx = re.compile(r'^\{"rev":(\d+)')  # deltas start with it; the hello frame does not

    async def client(i: int, session, recs: list, ready: asyncio.Event, state: dict):
        try:
            async with session.ws_connect(
                url, headers={"Origin": origin, "Cookie": cookie}, max_msg_size=0
            ) as ws:
                state["connected"] += 1
                if state["connected"] == n:
                    ready.set()
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        m = rx.search(msg.data)
                        recs.append((int(m[1]) if m else -1, time.time(), len(msg.data)))
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        except Exception as exc:  # noqa: BLE001 (reported, not fatal)
            state["errors"].append(f"{i}: {type(exc).__name__}: {exc}")

    async def main():
        recs = [[] for _ in range(n)]
        state = {"connected": 0, "errors": []}
        ready = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            tasks = [
                asyncio.create_task(client(i, session, recs[i], ready, state)) for i in range(n)
            ]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 30)
            print(json.dumps({"ready": state["connected"]}), flush=True)
            await asyncio.sleep(seconds)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        Path(out).write_text(json.dumps({"connected": state["connected"],
                                         "errors": state["errors"][:5], "recs": recs}))  # fmt: skip

    asyncio.run(main())


# =========================================================================== browser side

INIT_SCRIPT = r"""
(() => {
  window.__bench = {};
  window.__sockets = [];
  // The page's WebSocket (real, or Playwright's mock): the target of the open event.
  document.addEventListener('htmx:wsOpen', (e) => window.__sockets.push(e.detail.event.target), true);
  addEventListener('load', () => {
    window.__bench.load = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__bench.painted = performance.now(); }, 0));
  });
  try {
    new PerformanceObserver(l => { for (const e of l.getEntries()) window.__bench.lcp = e.startTime; })
      .observe({type: 'largest-contentful-paint', buffered: true});
    window.__bench.longtasks = [];
    new PerformanceObserver(l => { for (const e of l.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]); })
      .observe({type: 'longtask', buffered: true});
  } catch (e) {}
  // Live frames: arrival (before the swap), end of the swap, next frame (Date.now = wall clock).
  window.__lat = [];
  document.addEventListener('htmx:wsBeforeMessage', (e) => {
    const m = e.detail.message, f = JSON.parse(m);
    window.__cur = {rev: f.hello ? -1 : f.rev, arrive: Date.now(), cells: (f.cells || []).length, bytes: m.length};
  }, true);
  document.addEventListener('daemonviz:applied', () => {
    const r = window.__cur; window.__cur = null;
    if (!r) return;
    r.swapped = Date.now();
    window.__lat.push(r);
    requestAnimationFrame(() => setTimeout(() => { r.painted = Date.now(); }, 0));
  }, true);
})();
"""

NAV_TIMING = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const b = window.__bench;
  return {
    requestStart: n.requestStart, responseStart: n.responseStart, responseEnd: n.responseEnd,
    domInteractive: n.domInteractive, dclEnd: n.domContentLoadedEventEnd, loadEnd: n.loadEventEnd,
    encodedBodySize: n.encodedBodySize, decodedBodySize: n.decodedBodySize,
    fcp: fcp ? fcp.startTime : null, lcp: b.lcp ?? null, painted: b.painted,
    longtasks: (b.longtasks || []).map(t => t[1]),
    cells: document.querySelectorAll('#grid .c[id]').length,
    rows: document.querySelectorAll('#grid [role=row][data-node]').length,
    collapsedGroups: document.querySelectorAll('#grid section.group.collapsed').length,
    hiddenRows: [...document.querySelectorAll('#grid section.group') ].filter(s => s.offsetParent === null).length,
    domNodes: document.getElementsByTagName('*').length,
    corner: (document.querySelector('#grid .corner span') || {}).textContent,
  };
}"""

DELTA_JS = """async ({frame, expect, forceLayout}) => {
  const g = document.getElementById('grid');
  const ws = window.__sockets.filter(s => s.readyState === 1).pop();
  if (!ws) return {error: 'no open websocket'};
  const rev = +g.dataset.revision;
  const msg = JSON.stringify({...frame, rev: rev + 1, base: rev, epoch: g.dataset.epoch});
  const t0 = performance.now();
  ws.dispatchEvent(new MessageEvent('message', {data: msg}));
  const t1 = performance.now();
  let t1b = t1;
  if (forceLayout) { document.body.getBoundingClientRect(); g.scrollHeight; t1b = performance.now(); }
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const t2 = performance.now();
  let applied = 0;
  for (const [id, cls] of expect) { const el = document.getElementById(id); if (el && el.classList.contains(cls)) applied++; }
  return {script_ms: t1 - t0, layout_ms: t1b - t1, next_frame_ms: t2 - t0, applied,
          revision_before: rev, revision_after: +document.getElementById('grid').dataset.revision,
          frame_bytes: msg.length};
}"""


def profile_top(profile: dict, top: int = 12) -> list[dict]:
    """Self time per function from a CDP CPU profile (Profiler.stop), heaviest first."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    self_us: dict[int, float] = {}
    for node_id, dt in zip(profile["samples"], profile["timeDeltas"], strict=False):
        self_us[node_id] = self_us.get(node_id, 0.0) + dt
    agg: dict[str, float] = {}
    for node_id, us in self_us.items():
        cf = nodes[node_id]["callFrame"]
        where = cf["url"].rsplit("/", 1)[-1]
        name = (
            f"{cf['functionName'] or '(anonymous)'} {where}:{cf['lineNumber'] + 1}"
            if where
            else (cf["functionName"] or "(anonymous)")
        )
        agg[name] = agg.get(name, 0.0) + us
    total = sum(agg.values()) or 1.0
    return [{"fn": k, "self_ms": round(v / 1000, 1), "pct": round(100 * v / total, 1)}
            for k, v in sorted(agg.items(), key=lambda kv: -kv[1])[:top]]  # fmt: skip


def cdp_metrics(cdp) -> dict:
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    keys = ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "TaskDuration", "Nodes")
    return {k: m.get(k) for k in keys}


def load_page(context, url: str, extra_css: str = "") -> dict:
    """Open a fresh tab, navigate, wait for load + next frame; timings from the Performance API."""
    page = context.new_page()
    if extra_css:  # a candidate CSS fix, appended to the app's stylesheet as it is served
        page.route(
            "**/daemonviz*.css",
            lambda route: route.fulfill(
                response=route.fetch(), body=route.fetch().text() + "\n" + extra_css
            ),
        )
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url, wait_until="load", timeout=120_000)
    # Functions, not bare expressions: Playwright evals those in the page, which the
    # app's Content-Security-Policy forbids.
    page.wait_for_function("() => window.__bench.painted !== undefined", timeout=60_000)
    t = page.evaluate(NAV_TIMING)
    metrics = cdp_metrics(cdp)
    page.close()
    server = (t["responseStart"] - t["requestStart"]) / 1000
    transfer = (t["responseEnd"] - t["responseStart"]) / 1000
    return {
        "total_s": r3(t["painted"] / 1000),  # navigation start -> first frame after load
        "server_response_s": r3(server),  # request sent -> first byte (Django render)
        "transfer_s": r3(transfer),  # first byte -> last byte
        "client_render_s": r3((t["painted"] - t["responseEnd"]) / 1000),  # parse..paint
        "dom_content_loaded_s": r3(t["dclEnd"] / 1000),
        "load_event_end_s": r3(t["loadEnd"] / 1000),
        "fcp_s": r3(t["fcp"] / 1000) if t["fcp"] else None,
        "lcp_s": r3(t["lcp"] / 1000) if t["lcp"] else None,
        "html_mb": round(t["decodedBodySize"] / 1e6, 2),
        "html_transfer_mb": round(t["encodedBodySize"] / 1e6, 2),
        "cells": t["cells"],
        "rows": t["rows"],
        "collapsed_groups": t["collapsedGroups"],
        "dom_elements": t["domNodes"],
        "corner": " ".join((t["corner"] or "").split()),
        "longest_task_ms": round(max(t["longtasks"], default=0), 1),
        "renderer_cpu_s": {
            "script": r3(metrics["ScriptDuration"]),
            "style": r3(metrics["RecalcStyleDuration"]),
            "layout": r3(metrics["LayoutDuration"]),
            "all_tasks": r3(metrics["TaskDuration"]),
        },
    }


def summarize_loads(runs: list[dict]) -> dict:
    keys = ("total_s", "server_response_s", "transfer_s", "client_render_s")
    med = {k: r3(statistics.median(r[k] for r in runs)) for k in keys}
    return {"median": med, "runs": runs}


def view_breakdown(trace: Path, since: float, until: float) -> dict:
    """Server-side parts of the page renders in [since, until] (per request, median)."""
    parts: dict[str, list[float]] = {}
    for rec in read_trace(trace):
        if rec["kind"] == "view" and since <= rec["t"] <= until:
            parts.setdefault(rec["part"], []).append(rec["s"])
    return {k: {"median_s": r3(statistics.median(v)), "n": len(v)} for k, v in parts.items()}


# =========================================================================== the run


def setup_db(env: dict) -> None:
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    code = "from dashboard.models import Cluster\n" + "".join(
        f"Cluster.objects.create(name='Bench {n}x{d}', slug='{slug}', source='simulated',"
        f" scenario='large', sim_nodes={n}, sim_daemonsets={d}, sim_seed=7)\n"
        for slug, (n, d) in CLUSTERS.items()
    )
    subprocess.run([py, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([py, "manage.py", "bootstrap"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip


def wait_synced(request, base: str, slug: str, nodes: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            r = request.get(f"{base}/clusters/{slug}/grid/?q=%23none", timeout=30_000)
            m = re.search(r"\((\d+) in cluster\)", r.text()) if r.ok else None
            if m and int(m[1]) >= nodes - 5:
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 (server busy syncing: retry)
            pass
        time.sleep(1.0)
    raise SystemExit(f"cluster {slug} did not sync within {timeout}s")


def build_delta_frames(page, slug: str, n_cells: int, reps: int) -> list[tuple[dict, list]]:
    """Frames of n_cells changed cells, built by `frames.client_frame` from a payload shaped
    as `fragments.delta_payload` makes it (cell skeletons, column heads, summary)."""
    import json as json_mod

    from dashboard.coverage.cells import Cell
    from dashboard.coverage.states import State
    from dashboard.grid import fragments, frames
    from dashboard.grid.model import GridFilters

    info = page.evaluate("""() => ({
      nodes: [...document.querySelectorAll('#grid [role=row][data-node]')].map(r => r.dataset.node),
      cols: [...document.querySelectorAll('#grid .ch')].map(h => h.title.split(' — ')[0]),
      colheads: [...document.querySelectorAll('#grid .ch')].map(h => h.outerHTML),
      summary: document.getElementById('summary').outerHTML,
      cells: Object.fromEntries([...document.querySelectorAll('#grid .c[id]')].map(c => [c.id, [c.className, +(c.dataset.r || 0)]])),
    })""")
    pairs = [(n, k) for n in info["nodes"] for k in info["cols"]]
    random.Random(42).shuffle(pairs)
    oob = ' hx-swap-oob="true"'
    columns = [[k, h.replace(' role="columnheader"', ' role="columnheader"' + oob, 1)]
               for k, h in zip(info["cols"], info["colheads"], strict=True)]  # fmt: skip
    summary = info["summary"].replace(' role="status"', ' role="status"' + oob, 1)
    out = []
    it = iter(pairs)
    for _ in range(reps):
        cells, skeletons, expect = [], {}, []
        while len(cells) < n_cells:
            node, key = next(it)
            cid = fragments.cell_id(node, key)
            cur = info["cells"].get(cid)
            if cur is None:
                continue
            cls, restarts = cur
            if "s-healthy" in cls.split():
                if len(cells) % 2:
                    cell = Cell(State.CRASH_LOOPING, "CrashLoopBackOff: back-off 40s restarting"
                                " failed container (exit 1, Error)", True, restarts=restarts + 1)  # fmt: skip
                else:
                    cell = Cell(State.OUTDATED, "running an old revision (rollout pending)", True,
                                restarts=restarts)  # fmt: skip
            else:
                cell = Cell(State.HEALTHY, "Running and Ready", True, restarts=restarts)
            skel = fragments._cell_skeleton(cell.state, cell.reason, cell.restarts)
            index = skeletons.setdefault(skel, len(skeletons))
            cells.append([node, key, cid, index])
            expect.append([cid, "s-" + cell.state.value])
        payload = {"revision": 1, "base": 0, "cells": cells, "skeletons": list(skeletons),
                   "cell_url": fragments._cell_base(slug), "columns_changed": columns,
                   "summary": summary}  # fmt: skip
        out.append((json_mod.loads(frames.client_frame(payload, GridFilters())), expect))
    return out


def latency_report(trace: Path, page_frames: list[dict], clients: dict | None) -> dict:
    recs = read_trace(trace)
    pub = {r["rev"]: r for r in recs if r["kind"] == "publish"}
    sends: dict[int, list[float]] = {}
    for r in recs:
        if r["kind"] == "send":
            sends.setdefault(r["rev"], []).append(r["t"])
    e2e_oldest, e2e_newest, per_write, arrive_lat = [], [], [], []
    stages = {k: [] for k in ("store_to_drain", "apply_render", "publish", "fanout_first",
                              "fanout_last", "to_browser", "htmx_swap", "to_next_frame")}  # fmt: skip
    matched = unmatched = 0
    cells, sizes, big, big_stages = [], [], [], []
    for f in page_frames:
        p = pub.get(f["rev"])
        if p is None or not p["writes"] or f.get("painted") is None:
            unmatched += 1
            continue
        matched += 1
        cells.append(f["cells"])
        sizes.append(f["bytes"])
        w0, w1 = min(p["writes"]), max(p["writes"])
        painted, arrive, swapped = f["painted"] / 1000, f["arrive"] / 1000, f["swapped"] / 1000
        e2e_oldest.append(painted - w0)
        if f["cells"] >= 500:
            big.append(painted - w0)
            big_stages.append(
                {
                    "cells": f["cells"],
                    "writes": len(p["writes"]),
                    "store_to_drain": ms(p["t_drain"] - w0),
                    "apply_render": ms(p["t_payload"] - p["t_drain"]),
                    "publish": ms(p["t_sent"] - p["t_payload"]),
                    "to_browser": ms(arrive - p["t_sent"]),
                    "swap": ms(swapped - arrive),
                    "to_next_frame": ms(painted - swapped),
                }
            )
        e2e_newest.append(painted - w1)
        per_write.extend(painted - w for w in p["writes"])
        stages["store_to_drain"].append(p["t_drain"] - w0)
        stages["apply_render"].append(p["t_payload"] - p["t_drain"])
        stages["publish"].append(p["t_sent"] - p["t_payload"])
        s = sends.get(f["rev"], [])
        if s:
            stages["fanout_first"].append(min(s) - p["t_sent"])
            stages["fanout_last"].append(max(s) - p["t_sent"])
        stages["to_browser"].append(arrive - p["t_sent"])
        stages["htmx_swap"].append(swapped - arrive)
        stages["to_next_frame"].append(painted - swapped)
        arrive_lat.append(arrive - w0)

    def dist(v):
        return {
            "p50_ms": ms(pct(v, 50)),
            "p95_ms": ms(pct(v, 95)),
            "max_ms": ms(max(v, default=None)),
            "n": len(v),
        }

    t_lo = min((p["t_drain"] for p in pub.values() if p.get("t_drain")), default=0)
    parts = {k: [r["s"] for r in recs if r["kind"] == k and r["t"] >= t_lo]
             for k in ("matrix_apply", "delta_render")}  # fmt: skip
    out = {
        "server_compute_all_clusters_p50_p95_ms": {
            k: [ms(pct(v, 50)), ms(pct(v, 95)), len(v)] for k, v in parts.items()
        },
        "frames_matched": matched,
        "frames_without_server_record": unmatched,
        "cells_per_frame": {"median": pct(cells, 50), "max": max(cells, default=None)},
        "frame_bytes": {"median": pct(sizes, 50), "max": max(sizes, default=None)},
        "oldest_write_to_painted_frames_of_500_cells_or_more": dist(big),
        "frames_of_500_cells_or_more_stages_ms": big_stages,
        "oldest_write_to_painted": dist(e2e_oldest),
        "per_write_to_painted": dist(per_write),
        "newest_write_to_painted": dist(e2e_newest),
        "oldest_write_to_page_arrival": dist(arrive_lat),
        "stages_p50_p95_ms": {k: [ms(pct(v, 50)), ms(pct(v, 95))] for k, v in stages.items()},
    }
    if clients is not None:
        lat = []
        frames = 0
        for recs_i in clients["recs"]:
            for rev, t, _ in recs_i:
                frames += 1
                p = pub.get(rev)
                if p is not None and p["writes"]:
                    lat.append(t - min(p["writes"]))
        out["other_clients"] = {
            "connected": clients["connected"],
            "frames_received": frames,
            "errors": clients["errors"],
            "oldest_write_to_receipt": dist(lat),
        }
    return out


def _control(tmp: Path, name: str) -> None:
    """Ask the server child to change a knob (see _rollouts_on_request); wait until it did."""
    (tmp / name).touch()
    deadline = time.monotonic() + 10
    while not (tmp / f"done-{name}").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not apply {name}")
        time.sleep(0.05)


def latency_window(args, context, page, server, tmp: Path, trace: Path, port: int, base: str,
                   n: int, mode: str, churn: float) -> dict:  # fmt: skip
    """One latency measurement (section 4) with the given coalescing mode and churn."""
    if mode:
        _control(tmp, f"set-{n}a-coalescing-{mode}")
    _control(tmp, f"set-{n}b-churn-{churn:g}")
    page.wait_for_timeout(2000)  # the new churn's first gaps, the new mode's first drains
    ws_path = page.get_attribute("#live", "ws-connect")
    sid = next(c["value"] for c in context.cookies() if c["name"] == "sessionid")
    out = tmp / f"clients-{n}.json"
    clients = None
    child = None
    if args.clients:
        child = subprocess.Popen(
            [sys.executable, __file__, "--ws-clients", f"ws://127.0.0.1:{port}{ws_path}",
             base, f"sessionid={sid}", str(args.clients),
             str(args.latency_seconds + 3), str(out)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        ready = json.loads(child.stdout.readline() or "{}")
        log("other clients connected:", ready.get("ready"))
    page.wait_for_timeout(1000)
    page.evaluate("window.__lat = []; window.daemonviz.resyncs0 = window.daemonviz.resyncs")
    load0 = loadavg()
    cpu0, t0, w0 = proc_cpu_seconds(server.pid), time.monotonic(), time.time()
    # Live churn plus rollouts at 1/4, 2/4 and 3/4 of the window: each turns a
    # whole column (1,000 cells) outdated in one delta, the worst frame to fan out.
    if args.profile_latency:
        cdp = context.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 500})
        cdp.send("Profiler.start")
    for i in range(1, args.rollouts + 1):
        page.wait_for_timeout(args.latency_seconds * 1000 / (args.rollouts + 1))
        (tmp / f"rollout-{n:03d}-{i}").touch()
    page.wait_for_timeout(args.latency_seconds * 1000 / (args.rollouts + 1))
    profile = (
        profile_top(cdp.send("Profiler.stop")["profile"], 20) if args.profile_latency else None
    )
    cpu1, t1, w1 = proc_cpu_seconds(server.pid), time.monotonic(), time.time()
    page.wait_for_timeout(500)
    frames = page.evaluate("window.__lat")
    resyncs = page.evaluate("window.daemonviz.resyncs - window.daemonviz.resyncs0")
    reasons = page.evaluate("window.daemonviz.reasons")
    if child is not None:
        child.wait(timeout=60)
        clients = json.loads(out.read_text())
    lat = latency_report(trace, frames, clients)
    recs = [r for r in read_trace(trace) if w0 <= r.get("t", r.get("t_sent", 0)) <= w1]
    drains = [r for r in recs if r["kind"] == "drain"]
    writes = sum(r["writes"] for r in drains)
    published = sum(1 for r in recs if r["kind"] == "publish")
    seconds = t1 - t0
    return {
        "coalescing": mode or "default",
        "churn_events_per_min": churn,
        "method": "store write (wall clock, stamped in the server by a bench-only wrapper "
        "of ObjectStore._append) -> frame arrival/htmx swap/next animation frame in the "
        "page (Date.now, same machine clock), joined on the matrix revision; 'oldest_write' "
        "takes the earliest write folded into each frame (conservative), 'per_write' every "
        "write of the frame",
        "page": "/clusters/k1/?group=-&expand=* (every cell has a target)",
        "other_ws_clients": args.clients,
        "rollouts_in_window": args.rollouts,
        "page_cpu_profile_top_self_time": profile,
        "seconds": args.latency_seconds,
        "page_resyncs": resyncs,
        "resync_reasons": reasons,
        "server_cpu_percent": round(100 * (cpu1 - cpu0) / seconds, 1),
        "k1_store_writes": writes,
        "k1_drains_per_s": round(len(drains) / seconds, 2),
        "k1_frames_per_s": round(published / seconds, 2),
        "server_cpu_ms_per_store_write": round(1000 * (cpu1 - cpu0) / writes, 3)
        if writes
        else None,
        **lat,
        "goal_p95_s": GOALS["latency_p95_s"],
        "load_average_start": load0,
        "load_average": loadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--churn", type=float, default=300.0, help="simulated events per minute")
    ap.add_argument(
        "--k5-churn",
        type=float,
        default=0.0,
        help="churn of the 5,000-node cluster (default 0: it only serves the page-load test; "
        "at 300/min its collector saturates a 2-CPU server and every other number with it)",
    )
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--latency-seconds", type=float, default=45.0)
    ap.add_argument("--rollouts", type=int, default=3, help="DaemonSet rollouts in the window")
    ap.add_argument(
        "--coalescing",
        default="",
        help="comma list of collector coalescing modes (fixed, adaptive) to measure the "
        "latency with, side by side in this run (default: the server's setting)",
    )
    ap.add_argument(
        "--churns",
        default="",
        help="comma list of churn rates (events/min) for the latency part, each measured with "
        "every --coalescing mode (default: --churn)",
    )
    ap.add_argument("--profile-latency", action="store_true", help="CPU-profile the page")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--delta-reps", type=int, default=5)
    ap.add_argument("--skip-5k", action="store_true")
    ap.add_argument("--only", default="full,5k,delta,latency", help="comma list of parts")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (trace, server log)")
    ap.add_argument("--serve", type=int)
    ap.add_argument(
        "--ws-clients", nargs=6, metavar=("URL", "ORIGIN", "COOKIE", "N", "SECONDS", "OUT")
    )
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve)
    if args.ws_clients:
        u, o, c, n, s, out = args.ws_clients
        return ws_clients(u, o, c, int(n), float(s), out)

    from playwright.sync_api import sync_playwright

    from tests.helpers.ports import free_port

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="daemonviz-browser-bench-"))
    trace = tmp / "trace.jsonl"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAEMONVIZ_SQLITE_PATH": str(tmp / "db.sqlite3"),
           "DAEMONVIZ_ADMIN_USER": USER, "DAEMONVIZ_ADMIN_PASSWORD": PASSWORD,
           "DAEMONVIZ_SIM_CHURN": str(args.churn), "DAEMONVIZ_DEBUG": "0",
           "DAEMONVIZ_LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "daemonviz.settings",
           "BENCH_TRACE": str(trace), "BENCH_TRACE_SLUG": "k1", "BENCH_CHURN_k5": str(args.k5_churn)}  # fmt: skip
    only = set(args.only.split(","))
    if args.skip_5k or "5k" not in only:
        CLUSTERS.pop("k5")
    os.environ.update({k: env[k] for k in ("DAEMONVIZ_SQLITE_PATH", "DJANGO_SETTINGS_MODULE")})
    log("migrating a temporary database in", tmp)
    setup_db(env)
    server_log = open(tmp / "daphne.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT, env=env,
                              stdout=server_log, stderr=subprocess.STDOUT)  # fmt: skip
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average_start": loadavg(),
        },  # fmt: skip
        "setup": {
            "churn_events_per_min": args.churn,
            "k5_churn_events_per_min": args.k5_churn,
            "clusters": CLUSTERS,
            "server": "daphne (1 process), in-memory channel layer, DEBUG=0",
            "browser": "Debian chromium headless, --disable-gpu, 1500x950",
        },  # fmt: skip
    }
    try:
        import django

        django.setup()
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/accounts/login/", timeout=2)
                break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "daphne did not start:\n" + (tmp / "daphne.log").read_text()[-3000:]
                    ) from exc
                time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            report["machine"]["chromium"] = browser.version
            context = browser.new_context(viewport={"width": 1500, "height": 950})
            context.add_init_script(INIT_SCRIPT)
            page = context.new_page()
            page.goto(base + "/accounts/login/")
            page.fill("#id_username", USER)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            page.close()
            sync = {}
            for slug, (n, _) in CLUSTERS.items():
                log(f"waiting for {slug} ({n} nodes) to sync")
                sync[slug] = round(wait_synced(context.request, base, slug, n, 300), 1)
            report["setup"]["sync_wait_s"] = sync
            time.sleep(3)  # let the initial full-matrix deltas drain

            # ---------------------------------------------------------------- 1. 1k x 20
            full = f"{base}/clusters/k1/?group=-&expand=*"

            def page_loads(path: str, goal_s: float) -> dict:
                """A warm-up load (static assets cached, templates compiled), then the
                measured ones, with the server's render breakdown over those loads."""
                t0 = time.time()
                load_page(context, base + path)
                runs = [load_page(context, base + path) for _ in range(args.reps)]
                return {
                    "url": path,
                    **summarize_loads(runs),
                    "server_parts": view_breakdown(trace, t0, time.time()),
                    "goal_s": goal_s,
                    "load_average": loadavg(),
                }

            if "full" in only:
                log("1. full 1,000 x 20 grid x", args.reps + 1)
                report["full_grid_1000x20"] = page_loads(
                    "/clusters/k1/?group=-&expand=*", GOALS["full_1k_s"]
                )

            # ---------------------------------------------------------------- 2. 5k x 30
            if "k5" in CLUSTERS:
                log("2. default 5,000 x 30 view x", args.reps + 1)
                report["default_view_5000x30"] = page_loads("/clusters/k5/", GOALS["default_5k_s"])

            # ---------------------------------------------------------------- 3. delta
            if "delta" in only:
                log(
                    "3. 1,000-cell delta x", args.delta_reps, "(+3 with forced layout, +1 profiled)"
                )
                page = context.new_page()
                # The page's socket is served by Playwright, not daphne: no live frame or re-sync
                # can interleave with the measured swaps (the WebSocket object is still real).
                page.route_web_socket(re.compile(r".*/ws/.*"), lambda ws: None)
                page.goto(full, wait_until="load")
                page.wait_for_function(
                    "() => document.getElementById('ws-state').dataset.state === 'open'"
                )
                page.wait_for_timeout(500)
                n_delta = args.delta_reps + 3 + 1
                deltas = build_delta_frames(page, "k1", 1000, n_delta)
                cdp = context.new_cdp_session(page)
                runs = []
                for i, (frame, expect) in enumerate(deltas):
                    profiled = i == args.delta_reps + 3
                    if profiled:
                        cdp.send("Profiler.enable")
                        cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                        cdp.send("Profiler.start")
                    r = page.evaluate(DELTA_JS, {"frame": frame, "expect": expect,
                                                 "forceLayout": args.delta_reps <= i < args.delta_reps + 3})  # fmt: skip
                    if profiled:
                        profile = profile_top(cdp.send("Profiler.stop")["profile"])
                    if "error" in r:
                        raise SystemExit("delta: " + r["error"])
                    runs.append(
                        {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}
                    )
                    page.wait_for_timeout(400)
                runs, profiled_run = runs[: args.delta_reps + 3], runs[args.delta_reps + 3]
                plain, forced = runs[: args.delta_reps], runs[args.delta_reps :]
                page.close()
                report["delta_1000_cells"] = {
                    "method": "frame built by frames.client_frame (1,000 cell skeletons + ids, "
                    "20 column heads, summary) dispatched as a MessageEvent on the page's open "
                    "WebSocket -> ws extension -> daemonviz.js accept() -> cells rebuilt and "
                    "replaced, heads and summary through htmx.swap; timed from before dispatch "
                    "to the first task after the next animation frame",
                    "page": "/clusters/k1/?group=-&expand=* (20,000 cells), socket mocked by "
                    "Playwright (route_web_socket) so no live frame interleaves",
                    "median_ms": {
                        "to_next_frame": round(
                            statistics.median(r["next_frame_ms"] for r in plain), 1
                        ),
                        "swap_script": round(statistics.median(r["script_ms"] for r in plain), 1),
                    },
                    "breakdown_forced_layout_median_ms": {
                        "swap_script": round(statistics.median(r["script_ms"] for r in forced), 1),
                        "style_layout": round(statistics.median(r["layout_ms"] for r in forced), 1),
                        "to_next_frame": round(
                            statistics.median(r["next_frame_ms"] for r in forced), 1
                        ),
                    },
                    "runs": runs,
                    "cpu_profile_top_self_time": {"run": profiled_run, "functions": profile},
                    "goal_ms": GOALS["delta_1000_ms"],
                    "load_average": loadavg(),
                }

            # ---------------------------------------------------------------- 4. latency
            if "latency" in only:
                modes = [m for m in args.coalescing.split(",") if m] or [""]
                churns = [float(c) for c in args.churns.split(",")] if args.churns else [args.churn]
                # Modes alternate A B, B A, ... across churn levels, so a drift of the
                # machine during the run does not favour one of them.
                plan = [
                    (mode, churn)
                    for i, churn in enumerate(churns)
                    for mode in (modes if i % 2 == 0 else modes[::-1])
                ]
                page = context.new_page()
                page.goto(full, wait_until="load", timeout=180_000)
                page.wait_for_function(
                    "() => document.getElementById('ws-state').dataset.state === 'open'"
                )
                runs = []
                for n, (mode, churn) in enumerate(plan):
                    log(
                        f"4.{n + 1} latency, coalescing {mode or 'default'}, churn {churn:g}/min, "
                        f"{args.clients} other websocket clients, {args.latency_seconds}s"
                    )
                    runs.append(
                        latency_window(
                            args, context, page, server, tmp, trace, port, base, n, mode, churn
                        )  # fmt: skip
                    )
                page.close()
                report["latency_runs"] = runs
                report["latency_change_to_dom"] = runs[0]
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("kept", tmp)
    report["machine"]["load_average_end"] = loadavg()
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    report["verdict"] = verdict(report)
    report["results_md"] = results_md(report)
    print(json.dumps(report, indent=2))


def verdict(rep: dict) -> dict:
    v = {}
    if "full_grid_1000x20" in rep:
        x = rep["full_grid_1000x20"]["median"]["total_s"]
        v["full_1000x20"] = f"{x} s vs goal {GOALS['full_1k_s']} s: " + (
            "met" if x <= GOALS["full_1k_s"] else "MISSED"
        )
    if "default_view_5000x30" in rep:
        x = rep["default_view_5000x30"]["median"]["total_s"]
        v["default_5000x30"] = f"{x} s vs goal {GOALS['default_5k_s']} s: " + (
            "met" if x <= GOALS["default_5k_s"] else "MISSED"
        )
    if "delta_1000_cells" in rep:
        x = rep["delta_1000_cells"]["median_ms"]["to_next_frame"]
        v["delta_1000"] = f"{x} ms vs goal {GOALS['delta_1000_ms']} ms: " + (
            "met" if x <= GOALS["delta_1000_ms"] else "MISSED"
        )
    for x in rep.get("latency_runs", []):
        p95 = x["oldest_write_to_painted"]["p95_ms"]
        ok = p95 is not None and p95 <= GOALS["latency_p95_s"] * 1000
        v[f"latency_p95 ({x['coalescing']}, {x['churn_events_per_min']:g}/min)"] = (
            f"{p95} ms vs goal {GOALS['latency_p95_s'] * 1000:.0f} ms: "
            + ("met" if ok else "MISSED")
        )
    return v


def results_md(rep: dict) -> str:
    m = rep["machine"]
    lines = [
        "## Browser (issue 4): `python bench/browser_bench.py`",
        "",
        f"Headless Chromium {m.get('chromium', '')} (`--disable-gpu`), one daphne process, "
        f"{m['cpus']} CPUs, load average {m['load_average_start']} at start, "
        f"{m.get('load_average_end')} at end; simulated churn "
        f"{rep['setup']['churn_events_per_min']:.0f} events/min on the 1,000-node cluster, "
        f"{rep['setup'].get('k5_churn_events_per_min', 0):.0f} on the 5,000-node one. "
        "Medians of the repetitions.",
        "",
        "| Measurement | Result | Goal | Breakdown |",
        "|---|---|---|---|",
    ]
    if "full_grid_1000x20" in rep:
        x = rep["full_grid_1000x20"]
        md, r0 = x["median"], x["runs"][0]
        lines.append(
            f"| Full grid 1,000 × 20 (`?group=-&expand=*`, {r0['cells']:,} cells) | "
            f"**{md['total_s']} s** | ≤ 2 s | server {md['server_response_s']} s, transfer "
            f"{md['transfer_s']} s ({r0['html_mb']} MB HTML), client parse→paint "
            f"{md['client_render_s']} s |"
        )
    if "default_view_5000x30" in rep:
        x = rep["default_view_5000x30"]
        md, r0 = x["median"], x["runs"][0]
        lines.append(
            f"| Default view 5,000 × 30 ({r0['rows']} rows, {r0['cells']:,} cells, "
            f"{r0['collapsed_groups']} collapsed groups) | **{md['total_s']} s** | ≤ 2 s | server "
            f"{md['server_response_s']} s, transfer {md['transfer_s']} s ({r0['html_mb']} MB), "
            f"client {md['client_render_s']} s |"
        )
    if "delta_1000_cells" in rep:
        x = rep["delta_1000_cells"]
        b = x["breakdown_forced_layout_median_ms"]
        lines.append(
            f"| 1,000-cell delta on the 20,000-cell page | **{x['median_ms']['to_next_frame']} ms** "
            f"| ≤ 200 ms | swap script {b['swap_script']} ms, style+layout {b['style_layout']} ms, "
            f"rest to next frame {round(b['to_next_frame'] - b['swap_script'] - b['style_layout'], 1)} ms |"
        )
    for x in rep.get("latency_runs", []):
        o, s = x["oldest_write_to_painted"], x["stages_p50_p95_ms"]
        b = x["oldest_write_to_painted_frames_of_500_cells_or_more"]
        oc = x.get("other_clients", {})
        lines.append(
            f"| Simulator change → DOM, coalescing **{x['coalescing']}**, churn "
            f"{x['churn_events_per_min']:g}/min, {oc.get('connected', 0)} other sockets "
            f"({o['n']} frames) | **p50 {o['p50_ms']} ms, p95 {o['p95_ms']} ms** | p95 ≤ 1 s | "
            f"p50/p95 ms: store→collector drain {s['store_to_drain']}, apply+render "
            f"{s['apply_render']}, publish {s['publish']}, fan-out to last socket "
            f"{s['fanout_last']}, →browser {s['to_browser']}, swap {s['htmx_swap']}, →next frame "
            f"{s['to_next_frame']}; server CPU {x['server_cpu_percent']} %, "
            f"{x['server_cpu_ms_per_store_write']} ms per store write "
            f"({x['k1_store_writes']} writes), {x['k1_drains_per_s']} drains/s, "
            f"{x['k1_frames_per_s']} frames/s; frames of ≥ 500 cells (rollouts): {b['n']}, p95 "
            f"{b['p95_ms']} ms, max {b['max_ms']} ms; frame bytes median "
            f"{x['frame_bytes']['median']}, max {x['frame_bytes']['max']}; load "
            f"{x['load_average_start']} → {x['load_average']} |"
        )
    lines += [
        "",
        "Method: navigation timings from the Performance API (server = requestStart→"
        "responseStart, transfer = →responseEnd, client = →first task after the frame following "
        "`load`); the delta is a `frames.client_frame` frame dispatched on the page's WebSocket; "
        "latency joins store-write wall-clock stamps (bench-only wrapper in the server process) "
        "with the page's frame timestamps by matrix revision.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
