"""What the benches share: Django set up for a bench process, this process's CPU time and
memory, progress lines, percentiles, rounding, the machine's load, the JSON-lines traces
their child processes write.

A sibling module, imported as `benchkit`: a bench runs as `python bench/x.py`, which puts
this folder first on sys.path (and its child processes are the same script again)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    """Django for an in-process bench: the project importable, a throw-away SQLite database
    unless one is named."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daemonviz.settings")
    os.environ.setdefault("DAEMONVIZ_SQLITE_PATH", str(Path(tempfile.mkdtemp()) / "db.sqlite3"))
    import django

    django.setup()


def cpu_seconds() -> float:
    """CPU time of this process: steadier than wall time when other work shares the cores."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """The most this process has been resident, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    """Resident now (not the peak): what a built structure keeps once its input is gone."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def log(*a) -> None:
    """A progress line on stderr (stdout carries the bench's JSON)."""
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def pct(values, q: float):
    """Linear-interpolated percentile (q in 0..100); None for no data."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ms(x):
    """Seconds as milliseconds to 0.1; None stays None."""
    return None if x is None else round(x * 1000.0, 1)


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages, as bench/RESULTS.md records them beside a figure."""
    return [round(x, 2) for x in os.getloadavg()]


def read_trace(path: Path) -> list[dict]:
    """The records of a JSON-lines trace; a line cut short (a child killed mid-write) is
    passed over, a missing file is no records."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out
