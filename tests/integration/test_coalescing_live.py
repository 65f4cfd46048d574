"""Adaptive coalescing on the live path: a running collector (its own loop, as in daphne)
publishes a sparse change as soon as its source rings, not at the next tick of a fixed
cadence, and the last change of a burst always reaches the socket.

The sparse-change collector has a `coalesce` interval of ten minutes: a fixed tick would
not publish anything (not even the initial sync) within the test's waits (a minute each,
generous for a loaded machine), so it fails on a fixed-tick collector without timing
anything against the wall clock. Its token bucket holds far more drains than the test can
cause: with ten minutes per token, a bucket of 2 ran dry whenever the simulator's clock
wrote between the initial sync and its stop (more likely the slower the machine), and the
test's change then waited for a token for minutes — the test's old flake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from channels.layers import get_channel_layer

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.collect.registry import registry
from dashboard.grid.model import dom_id
from tests.helpers import collectors
from tests.helpers.daphne import ROOT
from tests.helpers.wait import async_wait_until
from tests.integration.test_live_updates import (
    ORIGIN,
    _connect,
    comparable,
    fresh_matrix_of,
    session_cookie,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.usefixtures("no_embedded_collectors")

TEN_MINUTES = 600.0
# Tokens for every drain the sparse test may cause (the initial sync, whatever the clock
# wrote before it stopped, the crash's writes), so the bucket never decides its outcome.
PLENTY = 10_000


async def _running(slug: str, **options) -> ClusterCollector:
    """A started collector of a quiet simulated cluster (no churn: only the test changes
    it), registered for the sockets, with its initial sync published."""
    c = collectors.make(
        ClusterConfig(slug=slug, name=slug, scenario="demo", seed=3, churn=0.0),
        get_channel_layer(),
        **options,
    )
    registry.register(c)
    c.start()
    await async_wait_until(lambda: c.matrix.cells, what="the initial sync", timeout=60)
    c.simulator.stop()  # its clock: from here on only the test writes to the cluster
    return c


async def _frames_until(comm, done, limit: int = 200) -> list[dict]:
    frames = []
    for _ in range(limit):
        frame = json.loads(await comm.receive_from(timeout=60))
        frames.append(frame)
        if done(frame):
            return frames
    raise AssertionError(f"no matching frame among {len(frames)}")


def _crash(c: ClusterCollector, node: str, ds_key: str) -> None:
    """Make a daemon pod crash, stepping the simulated clock until the kubelet wrote the
    pod's new status: one sparse change."""
    sim = c.simulator
    sim.crash_pod(ds_key, node)
    rv = sim.store.resource_version
    for _ in range(12):
        sim.step(5)
        if sim.store.resource_version != rv:
            return
    raise AssertionError("the simulator wrote nothing")


def _healthy_cells(c: ClusterCollector, n: int) -> list[tuple[str, str]]:
    with c.lock:
        return [k for k, cell in sorted(c.matrix.cells.items()) if cell.state.value == "healthy"][
            :n
        ]


@pytest.mark.django_db(transaction=True)
async def test_a_sparse_change_is_published_without_waiting_for_a_tick(session_cookie):  # noqa: F811
    c = await _running("sparse", coalesce=TEN_MINUTES, burst=PLENTY)
    try:
        comm, connected = await _connect("/ws/clusters/sparse/grid/", ORIGIN, session_cookie)
        assert connected
        hello = json.loads(await comm.receive_from(timeout=60))
        [(node, ds_key)] = _healthy_cells(c, 1)
        # One change in a quiet cluster, written the way an API server's watch sees it.
        _crash(c, node, ds_key)
        cell_id = f"c-{dom_id(node)}-{dom_id(ds_key)}"
        frames = await _frames_until(comm, lambda f: cell_id in dict(f.get("cells", ())))
        frame = frames[-1]
        assert frame["rev"] > hello["rev"]
        skeleton = frame["skel"][dict(frame["cells"])[cell_id]]
        assert "s-healthy" not in skeleton
        await comm.disconnect()
    finally:
        await c.stop()
        registry.unregister("sparse")


@pytest.mark.django_db(transaction=True)
async def test_the_last_change_of_a_burst_reaches_the_socket(session_cookie):  # noqa: F811
    # burst=1: after the first frame of the burst the bucket is empty, so the rest of the
    # burst waits for the trailing frame — which must come, and carry the final state.
    c = await _running("burst", coalesce=0.5, burst=1)
    try:
        comm, connected = await _connect("/ws/clusters/burst/grid/", ORIGIN, session_cookie)
        assert connected
        json.loads(await comm.receive_from(timeout=60))
        sim = c.simulator
        for node, ds_key in _healthy_cells(c, 8):
            sim.crash_pod(ds_key, node)
            sim.step(0.3)
        final_rv = sim.store.resource_version

        def caught_up() -> bool:
            with c.lock:
                return comparable(c.matrix.cells) == comparable(fresh_matrix_of(sim.store).cells)

        await async_wait_until(caught_up, what="the matrix to hold the burst's last write")
        assert sim.store.resource_version == final_rv  # nothing else wrote meanwhile
        target = c.matrix.revision
        frames = await _frames_until(comm, lambda f: f.get("rev") == target)
        assert frames[-1]["rev"] == target
        await comm.disconnect()
    finally:
        await c.stop()
        registry.unregister("burst")


@pytest.mark.django_db(transaction=True)
async def test_fixed_coalescing_still_publishes_on_its_tick(session_cookie):  # noqa: F811
    c = await _running("fixed", coalesce=0.05)
    try:
        comm, connected = await _connect("/ws/clusters/fixed/grid/", ORIGIN, session_cookie)
        assert connected
        json.loads(await comm.receive_from(timeout=60))
        [(node, ds_key)] = _healthy_cells(c, 1)
        _crash(c, node, ds_key)
        cell_id = f"c-{dom_id(node)}-{dom_id(ds_key)}"
        await _frames_until(comm, lambda f: cell_id in dict(f.get("cells", ())))
        await comm.disconnect()
    finally:
        await c.stop()
        registry.unregister("fixed")


def test_an_unknown_coalescing_mode_is_refused():
    with pytest.raises(ValueError, match="coalescing must be one of adaptive, fixed"):
        ClusterCollector(ClusterConfig(slug="x", name="x"), coalescing="sometimes")


def _settings_error(env: dict[str, str]) -> str:
    """What importing the settings under `env` says on stderr ('' when it succeeds)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DAEMONVIZ_")}
    out = subprocess.run(
        [sys.executable, "-c", "import daemonviz.settings as s; print(s.DAEMONVIZ_COALESCE)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )
    return out.stderr if out.returncode else out.stdout.strip()


def test_coalescing_settings_default_to_adaptive_and_refuse_nonsense():
    assert _settings_error({}) == "adaptive"
    assert _settings_error({"DAEMONVIZ_COALESCE": "Fixed"}) == "fixed"
    assert "DAEMONVIZ_COALESCE='sometimes' is not one of adaptive, fixed" in _settings_error(
        {"DAEMONVIZ_COALESCE": "sometimes"}
    )
    assert "DAEMONVIZ_COALESCE_BURST=0 must be at least 1" in _settings_error(
        {"DAEMONVIZ_COALESCE_BURST": "0"}
    )
    assert "must not be negative" in _settings_error({"DAEMONVIZ_COALESCE_QUIET_SECONDS": "-1"})


@pytest.mark.django_db(transaction=True)
async def test_an_idle_collector_does_not_drain_and_stops_listening_when_stopped():
    """No news, no drain: the loop only wakes for its heartbeat, which marks the source
    as synced (`last_sync`); the fixed tick drained, in a worker thread, every time. And a stopped collector leaves nothing subscribed to
    the store: a write after the stop rings nobody."""
    c = await _running("idle", coalesce=0.05, burst=PLENTY)
    source = c.source
    assert source is not None
    drains = 0
    real_drain = source.drain

    def counting_drain():
        nonlocal drains
        drains += 1
        return real_drain()

    source.drain = counting_drain  # type: ignore[method-assign]
    store = c.simulator.store
    assert len(store._listeners) == 1  # the collector's doorbell

    heartbeats: list[object] = []

    def more_heartbeats() -> bool:
        if not heartbeats or heartbeats[-1] != c.last_sync:
            heartbeats.append(c.last_sync)
        return len(heartbeats) > 8

    await async_wait_until(more_heartbeats, what="heartbeats", timeout=60, interval=0.01)
    # At most the batch still pending when the counting began (the clock's last writes);
    # nothing writes after that. A fixed tick drains on every one of those turns.
    assert drains <= 1
    await c.stop()
    assert store._listeners == []
    store.put("nodes", {"metadata": {"name": "after-the-stop"}})  # rings nobody, raises nothing
