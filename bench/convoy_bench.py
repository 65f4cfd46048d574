"""The event loop beside a computing thread, at several interpreter switch intervals.

A web worker's event loop gives the interpreter lock up at every socket read and write and
must win it back each time; beside a thread that computes (a 5,000-node grid page being
rendered, a snapshot decoded, a collector's tick) it waits up to the switch interval for
it. This probe reproduces that in isolation: another process sends 500 messages a second
over a socket; for each, the loop thread writes ten small socket messages (a delta sent to
ten sockets) while a second thread computes without pause. Each interval runs in a fresh
process, side by side in one run; it prints message latency (send → handled).

    python bench/convoy_bench.py [--rate 500] [--seconds 4] [--writes 10]

Why daemonviz sets DAEMONVIZ_SWITCH_INTERVAL=0.001 (dashboard/apps.py); figures in
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import threading
import time

INTERVALS = (0.005, 0.002, 0.001, 0.0005)


def _writer(port: int, rate: float, seconds: float) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    end = time.time() + seconds
    while time.time() < end:
        s.sendall(f"{time.time():.6f}\n".encode())
        time.sleep(1 / rate)
    s.close()


def _compute() -> None:
    x = 0
    while True:
        for i in range(10_000):
            x += i * i


def probe(interval: float, rate: float, seconds: float, writes: int) -> dict:
    sys.setswitchinterval(interval)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    sender = mp.Process(target=_writer, args=(srv.getsockname()[1], rate, seconds), daemon=True)
    sender.start()
    conn, _ = srv.accept()
    lines = conn.makefile("rb")
    out, sink = socket.socketpair()
    threading.Thread(target=lambda: [sink.recv(1 << 20) for _ in iter(int, 1)], daemon=True).start()
    threading.Thread(target=_compute, daemon=True).start()
    latencies = []
    for line in lines:
        for _ in range(writes):
            out.send(b"y" * 300)
        latencies.append(time.time() - float(line))
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1)

    return {
        "switch_interval_ms": interval * 1000,
        "messages": len(latencies),
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "max_ms": round(1000 * latencies[-1], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500.0, help="messages per second")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--writes", type=int, default=10, help="socket writes per message")
    ap.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.interval is not None:  # child: one interval in a fresh interpreter
        print(json.dumps(probe(args.interval, args.rate, args.seconds, args.writes)))
        return
    results = []
    for interval in INTERVALS:
        out = subprocess.run(
            [sys.executable, __file__, "--interval", str(interval), "--rate", str(args.rate),
             "--seconds", str(args.seconds), "--writes", str(args.writes)],  # fmt: skip
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results.append(json.loads(out.stdout))
    print(json.dumps({"load": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
