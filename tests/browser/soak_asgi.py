"""The ASGI app for the wall display's soak test: the real application, whose simulated
clusters named `soak-*` are stepped by their collector instead of by the wall clock.

A simulated cluster advances on a background thread every 0.5 s, so it publishes at most
about two deltas a second: 10,000 updates would take hours. Here each collector tick
(`DAEMONVIZ_COALESCE_SECONDS`, a few ms in the soak server) steps its simulator by
`STEP_SECONDS` of simulated time and drains what happened. Everything downstream is the
production path: matrix → `pipeline.delta_payload` (the wall's aggregation) → channel
layer → `WallConsumer` → websocket → static/js/wall.js. Test code only: `daphne
tests.browser.soak_asgi:application`.
"""

from __future__ import annotations

from daemonviz.asgi import application  # noqa: F401  (sets Django up first)
from dashboard.clusters.config import ClusterConfig
from dashboard.collect import collector, sources

STEP_SECONDS = 1.0


class SteppedSource(sources.SimulatedSource):
    # Nothing happens here between two drains (drain() is the clock), so a doorbell would
    # never ring: without one the collector drains on its fixed tick, which is what steps
    # the simulator (adaptive coalescing waited for a change forever after the first).
    set_doorbell = None

    def start(self, run_clock: bool = True) -> None:
        pass  # no real-time clock thread: drain() steps the simulator

    def drain(self):
        self.simulator.step(STEP_SECONDS)
        return super().drain()


_make_source = collector.make_source


def _make(config: ClusterConfig):
    if config.source == "simulated" and config.slug.startswith("soak"):
        return SteppedSource(config)
    return _make_source(config)


collector.make_source = _make
