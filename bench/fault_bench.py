"""Fault classes (issue 13): how long a collector takes to converge after each fault of the
reliability suite, and the peak RSS of the process meanwhile.

Each fault runs in its own subprocess, so the peak RSS (VmHWM) is that fault's alone: the
process holds the fake API server and the collector together, as the test does, so the
figure is an upper bound for the collector. "converge" is wall time from injecting the
fault to a synced collector whose matrix equals a fresh client's; it includes the fault's
own course (a server that is down until the collector notices, the 1 s Retry-After, the
0.3 s too-large wait of a restore), and the retry backoff is shortened as in the tests
(`Run.start` in tests/helpers/fault_classes.py, where the faults are).

    python bench/fault_bench.py            # every fault, one JSON document
    python bench/fault_bench.py --one NAME # one fault, in this process
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import setup_django

ROOT = Path(__file__).resolve().parents[1]


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def one(name: str) -> dict:
    setup_django()
    from tests.helpers.fault_classes import run_fault

    with tempfile.TemporaryDirectory() as tmp:
        run = run_fault(name, Path(tmp))
        try:
            converged = run.converge(60)
            elapsed = time.monotonic() - run.fault_started
            return {
                "fault": name,
                "converged": converged,
                "converge_s": round(elapsed, 3),
                "peak_rss_mb": round(vm_hwm_mb(), 1),
            }
        finally:
            run.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help="run one fault class in this process")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    setup_django()
    from tests.helpers.fault_classes import FAULTS

    results = []
    for name in FAULTS:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        json.dumps(
            {"load_average": os.getloadavg(), "python": sys.version.split()[0], "faults": results},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
