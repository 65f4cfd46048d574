"""What the benches measure and report with: progress lines, percentiles, rounding, the
machine's load, the JSON-lines traces their child processes write.

A sibling module, imported as `measure`: a bench runs as `python bench/x.py`, which puts
this folder first on sys.path (and its child processes are the same script again)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path


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
