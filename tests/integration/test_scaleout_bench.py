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


def test_scaleout_bench_runs_and_reports_its_fields():
    if not Path(services.REDIS_SERVER).exists() or services._pg_bin() is None:
        services._missing("redis-server and postgresql")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scaleout_bench.py"), "--workers", "1",
         "--clients", "6", "--seconds", "8", "--clusters", "2", "--large-nodes", "30",
         "--large-daemonsets", "6", "--lock-ttl", "3", "--page-loads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout)
    assert report["clients"]["connected"] == 6
    lat = report["latency"]["all"]["oldest_change_to_frame"]
    assert set(lat) == {"p50_ms", "p95_ms", "max_ms", "n"} and lat["n"] > 0
    assert {"grid", "wall", "collector_stages"} <= set(report["latency"])
    assert report["grid_page"]["loads"] and report["grid_page"]["loads"][0]["status"] == 200
    assert report["grid_page"]["loads"][0]["server_s"] is not None
    procs = report["processes"]
    assert {"collect1", "worker0", "redis"} <= set(procs)
    assert all("rss_mb_max" in procs[p] and "cpu_percent" in procs[p] for p in procs)
    assert report["redis_memory_mb"]["used"] > 0
    assert report["history_rows_per_s"] >= 0
    failover = report["failover"]
    # Both clusters were taken over by the standby, and a probe found them exact.
    assert set(failover["lock_taken_after_s"]) == {"large", "demo1"}
    assert failover["time_to_exact_s"] is not None
    assert failover["clients_behind_at_exact"] == 0
    assert set(report["verdict"]) == {
        "latency_p95_le_1s", "grid_page_le_1s", "takeover_within_ttl", "exact_after_failover",
    }  # fmt: skip
    assert report["load_start"] and report["load_end"]
