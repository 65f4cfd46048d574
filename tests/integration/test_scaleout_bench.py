"""bench/scaleout_bench.py runs end to end at toy sizes and reports every figure it promises.
Only the shape of its JSON is checked, never a number (speed lives in bench/RESULTS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import services

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BENCH = str(ROOT / "bench" / "scaleout_bench.py")
TOY = ["--workers", "1", "--clients", "6", "--seconds", "8", "--clusters", "2",
       "--large-nodes", "30", "--large-daemonsets", "6", "--lock-ttl", "3", "--page-loads", "1"]  # fmt: skip


def _needs_services() -> None:
    if not Path(services.REDIS_SERVER).exists() or services._pg_bin() is None:
        services._missing("redis-server and postgresql")


def _progress(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scaleout_bench_runs_and_reports_its_fields(tmp_path):
    _needs_services()
    progress = tmp_path / "progress.jsonl"
    out = subprocess.run([sys.executable, BENCH, *TOY, "--progress", str(progress)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout)
    assert {name: p["state"] for name, p in report["phases"].items()} == dict.fromkeys(
        ("setup", "sync", "clients", "window", "failover"), "done"
    )
    assert report["clients"]["connected"] == 6
    assert report["clients_in_window"]["connected"] == 6
    lat = report["latency"]["all"]["oldest_change_to_frame"]
    assert set(lat) == {"p50_ms", "p95_ms", "max_ms", "n"} and lat["n"] > 0
    assert {"grid", "wall", "collector_stages"} <= set(report["latency"])
    # The grid page's server time, by phase, from the worker's Server-Timing header.
    load = report["grid_page"]["loads"][0]
    assert load["status"] == 200 and load["server_s"] is not None
    assert set(load["server_phases_s"]) == {"snapshot", "view", "render"}
    assert report["grid_page"]["server_s_max"] is not None
    # Rollouts were queued into the simulators' clocks and started.
    assert report["rollouts"] and all(r["ds"] and r["t_started"] for r in report["rollouts"])
    procs = report["processes"]
    assert {"collect1", "worker0", "redis", "host-large", "host-demos", "clients"} <= set(procs)
    assert all("rss_mb_max" in procs[p] and "cpu_percent" in procs[p] for p in procs)
    assert "collect2" in report["processes_whole_run"]
    assert report["redis_memory_mb"]["used"] > 0
    assert report["history_rows_per_s"] > 0 and report["history_rows_in_window"] > 0
    failover = report["failover"]
    # Both clusters were taken over by the standby, and a probe found them exact.
    assert set(failover["lock_taken_after_s"]) == {"large", "demo1"}
    assert failover["rollout"] and failover["rolling_at_kill"]
    assert failover["time_to_exact_s"] is not None
    assert failover["clients_behind_at_exact"] == 0
    assert failover["history_rows_per_s_after_kill"] >= 0
    assert "rss_mb_max" in failover["processes"]["collect2"]
    # The dying collector's thread stacks, and how long since it last published the large one.
    assert "most recent call first" in failover["collector_threads_before_kill"]
    assert failover["large_last_published_before_kill_s"] is not None
    assert report["redis_watch"]["used_mb_max"] > 0 and report["redis_watch"]["large_status"]
    assert report["latency"]["slowest_ticks"] is not None
    assert set(report["verdict"]) == {
        "latency_p95_le_1s", "grid_page_le_1s", "takeover_within_ttl", "exact_after_failover",
    }  # fmt: skip
    assert all(v is not None for v in report["verdict"].values())
    assert report["load_start"] and report["load_end"]
    # The progress file streamed each phase's figures as it ended, then the whole report.
    events = _progress(progress)
    done = {e["event"]: e for e in events if e["event"].endswith(" done")}
    assert set(done) == {f"{p} done" for p in report["phases"]}
    assert done["window done"]["history_rows_per_s"] == report["history_rows_per_s"]
    assert done["window done"]["latency"] == report["latency"]
    assert events[-1]["event"] == "end" and events[-1]["report"]["phases"] == report["phases"]


def test_a_phase_out_of_time_still_prints_the_report_and_says_what_was_not_reached(tmp_path):
    """A run that cannot finish (here: no time to build the clusters) still prints its JSON,
    the phase that ran out marked, the later ones not reached and why, and fails."""
    _needs_services()
    progress = tmp_path / "progress.jsonl"
    out = subprocess.run([sys.executable, BENCH, *TOY, "--budget-minutes", "0.01",
                          "--progress", str(progress)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 1, out.stderr[-4000:]
    report = json.loads(out.stdout)
    phases = report["phases"]
    assert phases["setup"]["state"] == "timed out"
    assert "budget" in phases["setup"]["why"]
    for name in ("sync", "clients", "window", "failover"):
        assert phases[name] == {"state": "not reached", "why": "the setup phase timed out"}
    assert set(report["verdict"].values()) == {None}
    assert [e["event"] for e in _progress(progress)] == ["setup started", "setup timed out", "end"]
