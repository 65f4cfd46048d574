"""The live path: source → collector → matrix → channel layer → GridConsumer → browser frame.

Consumers are driven through Channels' WebsocketCommunicator against the real ASGI
application (auth and origin checks included); the kube source through a real HTTP fake
API server.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import msgspec
import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import decode
from dashboard.grid.model import dom_id
from dashboard.simulator.apiserver import FakeApiServer
from tests.helpers import collectors

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # a real handshake always has one


_AGO = re.compile(r"\b(\d+[dhms])+ ago\b")


def comparable(cells: dict) -> dict:
    """Cells with their relative times ("last Error 12s ago") blanked: the simulated clock
    starts at the present, so two matrices built seconds apart word the same exit with a
    different age; everything else must be equal."""
    return {
        k: msgspec.structs.replace(c, reason=_AGO.sub("… ago", c.reason)) for k, c in cells.items()
    }


def fresh_matrix_of(store, skip: str = "") -> Matrix:
    """What a client that lists the store right now would build (less the `skip` object)."""
    lists = {
        kind: [
            decode(kind, data)
            for obj, data in store.list(res)[0]
            if f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}" != skip
        ]
        for res, kind in collectors.KINDS.items()
    }
    m = Matrix()
    m.replace_all(lists)
    return m


pytestmark = pytest.mark.usefixtures("no_embedded_collectors")


@pytest.fixture
def collector():
    c = collectors.make(
        ClusterConfig(slug="demo", name="Demo", scenario="demo", seed=3), get_channel_layer()
    )
    c.start_source(run_clock=False)  # the test steps the simulator itself
    c.tick()
    registry.register(c)
    yield c
    c.stop_source()


@pytest.fixture
def session_cookie(db):
    user = get_user_model().objects.create_user("viewer", password="pw-for-tests")
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def _app():
    from daemonviz.asgi import application

    return application


async def _connect(path: str, *headers) -> tuple[WebsocketCommunicator, bool]:
    comm = WebsocketCommunicator(_app(), path, headers=[HOST, *headers])
    connected, _ = await comm.connect()
    return comm, connected


# ---------------------------------------------------------------------------- collector


def test_simulated_collector_matrix_is_exact_after_churn(collector):
    sim = collector.simulator
    for _ in range(20):
        sim.step(5)
        collector.tick()
    assert comparable(collector.matrix.cells) == comparable(fresh_matrix_of(sim.store).cells)
    assert collector.matrix.revision > 1


def test_collector_survives_history_expiry(collector):
    sim = collector.simulator
    sim.step(10)
    sim.store.compact()  # the source's resourceVersion is now too old: it must relist
    sim.step(10)
    collector.tick()
    assert comparable(collector.matrix.cells) == comparable(fresh_matrix_of(sim.store).cells)


def test_kube_collector_through_fake_api_server_matches_the_store(tmp_path):
    from dashboard.simulator import Simulator

    sim = Simulator.from_scenario("demo", seed=5)
    server = FakeApiServer(sim.store, port=0, token="t0k3n", bookmark_interval=0.2).start()
    kubeconfig = server.write_kubeconfig(tmp_path / "kc")
    c = collectors.make(collectors.kubeconfig_cluster(kubeconfig, "live", name="Live"))
    try:
        c.start_source()
        assert collectors.synced(c), c.status
        sim.step(20)  # churn while watching
        expected = comparable(fresh_matrix_of(sim.store).cells)
        assert collectors.tick_until(c, lambda: comparable(c.matrix.cells) == expected)
        assert server.non_get_requests == []
    finally:
        c.stop_source()
        server.stop()


def test_kube_collector_reports_failure_cause_and_keeps_last_state(tmp_path):
    from dashboard.simulator import Simulator

    sim = Simulator.from_scenario("demo", seed=5)
    server = FakeApiServer(sim.store, port=0, token=None, bookmark_interval=0.2).start()
    kubeconfig = server.write_kubeconfig(tmp_path / "kc")
    with collectors.running(collectors.kubeconfig_cluster(kubeconfig, "s", name="S")) as c:
        collectors.synced(c)
        c.tick()  # apply what arrived with the sync
        cells_before = dict(c.matrix.cells)
        assert len(cells_before) > 100
        server.stop()  # the API server goes away
        assert collectors.tick_until(c, lambda: c.status.state == "stale")
        assert "refused" in c.status.message.lower()
        assert c.matrix.cells == cells_before  # last known state kept


def test_broken_kubeconfig_fails_with_a_clear_cause(tmp_path):
    bad = tmp_path / "kc"
    bad.write_text("apiVersion: v1\nclusters: [\n")
    c = collectors.make(collectors.kubeconfig_cluster(bad, "b", name="B"))
    c.start_source()
    assert c.status.state == "failed"
    assert "yaml" in c.status.message.lower()


# ---------------------------------------------------------------------------- consumer


@pytest.mark.django_db(transaction=True)
async def test_signed_out_socket_is_refused(collector):
    _, connected = await _connect("/ws/clusters/demo/grid/", ORIGIN)
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_foreign_origin_is_refused(collector, session_cookie):
    _, connected = await _connect(
        "/ws/clusters/demo/grid/", (b"origin", b"http://evil.example"), session_cookie
    )
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_unknown_cluster_socket_is_refused(collector, session_cookie):
    _, connected = await _connect("/ws/clusters/nope/grid/", ORIGIN, session_cookie)
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_group_message_reaches_the_browser_as_a_cell_fragment(collector, session_cookie):
    comm, connected = await _connect("/ws/clusters/demo/grid/", ORIGIN, session_cookie)
    assert connected
    hello = json.loads(await comm.receive_from(timeout=5))
    assert hello["hello"] == 1 and hello["rev"] == collector.matrix.revision

    # Make a healthy daemon pod crash-loop in the simulator, then let the collector tick.
    sim = collector.simulator
    node, ds_key = next(
        (n, d)
        for (n, d), cell in sorted(collector.matrix.cells.items())
        if cell.state.value == "healthy"
    )
    sim.crash_pod(ds_key, node)
    for _ in range(12):
        sim.step(5)
        await asyncio.sleep(0)
        collector.tick()
        if collector.matrix.cells[(node, ds_key)].state.value == "crash-looping":
            break
    assert collector.matrix.cells[(node, ds_key)].state.value == "crash-looping"

    cell_id = f"c-{dom_id(node)}-{dom_id(ds_key)}"
    pushed = None
    for _ in range(20):
        frame = json.loads(await comm.receive_from(timeout=5))
        cells = dict(frame.get("cells", ()))
        if cell_id in cells:
            pushed = frame["skel"][cells[cell_id]]
            if "s-crash-looping" in pushed:
                break
    assert pushed is not None and "s-crash-looping" in pushed and "CrashLoopBackOff" in pushed
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_filtered_client_gets_no_cells_of_hidden_columns(collector, session_cookie):
    hidden_ds = "kube-system/kube-proxy"
    assert hidden_ds in collector.matrix.daemonsets
    path = "/ws/clusters/demo/grid/?namespace=monitoring"
    comm, connected = await _connect(path, ORIGIN, session_cookie)
    assert connected
    await comm.receive_from(timeout=5)
    nodes = sorted(collector.matrix.nodes)
    for node in nodes[:5]:
        collector.simulator.crash_pod(hidden_ds, node)
    frames = []
    for _ in range(6):
        collector.simulator.step(5)
        collector.tick()
        while not await comm.receive_nothing(timeout=0.2):
            frames.append(json.loads(await comm.receive_from(timeout=1)))
    hidden = {f"c-{dom_id(n)}-{dom_id(hidden_ds)}" for n in nodes}
    assert frames, "the collector published nothing"
    assert not any(cid in hidden for f in frames for cid, _ in f.get("cells", ()))
    assert not any(hidden_ds in f.get("html", "") for f in frames)
    await comm.disconnect()


def test_a_malformed_object_is_skipped_and_counted_not_fatal(collector):
    sim = collector.simulator
    sim.store.put("pods", {"metadata": {"name": "broken", "namespace": "x"}, "spec": "not-a-spec"})
    sim.step(5)
    collector.tick()
    [item] = collector.source.skipped()
    assert (item.kind, item.key) == ("Pod", "x/broken")
    assert collector.skipped_summary().total == 1
    assert "x/broken" not in collector.matrix.pods
    # Everything else keeps flowing.
    sim.step(5)
    collector.tick()
    expected = fresh_matrix_of(sim.store, skip="x/broken").cells
    assert comparable(collector.matrix.cells) == comparable(expected)


def test_running_collector_freezes_what_its_first_sync_built():
    """After the first sync the matrix (and a simulator's cluster) moves out of the garbage
    collector's full passes (dashboard/collect/gcfreeze.py); later ticks do not freeze again."""
    import gc

    collector = collectors.make(ClusterConfig(slug="gc", name="gc", churn=0.0), coalesce=0.05)
    seen: dict = {}

    async def run() -> None:
        task = collector.start()
        try:
            deadline = time.monotonic() + 30
            while not gc.get_freeze_count() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            seen["frozen"] = gc.get_freeze_count()
            seen["matrix_in_a_generation"] = any(
                o is collector.matrix.cells for o in gc.get_objects()
            )
            # A fixed window on purpose: later ticks must NOT freeze again (nothing to wait for).
            await asyncio.sleep(0.3)
            seen["later"] = gc.get_freeze_count()
        finally:
            await collector.stop()
            seen["stopped"] = task.done()

    gc.unfreeze()
    # A loop of its own in a thread of its own, as daphne's is.
    runner = threading.Thread(target=asyncio.run, args=(run(),))
    runner.start()
    runner.join(60)
    gc.unfreeze()
    assert seen["frozen"] > 0 and collector._frozen and collector.matrix.nodes
    # The matrix's own objects are among the frozen ones: a full pass no longer sees them.
    assert not seen["matrix_in_a_generation"]
    # No second freeze (frozen objects may still die: <=).
    assert seen["later"] <= seen["frozen"] and seen["stopped"]


@pytest.mark.django_db(transaction=True)
async def test_deltas_reach_the_socket_without_a_database_hop_per_socket(
    collector, session_cookie, monkeypatch
):
    # Channels closes stale database connections (on a worker thread) before every
    # handler; deltas never touch the database, and that hop per socket per delta was a
    # quarter of a scale-out worker's event loop. Connecting still goes through it.
    import channels.consumer

    hops: list[str] = []
    original = channels.consumer.aclose_old_connections

    async def counted() -> None:
        hops.append("close_old_connections")
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    comm, connected = await _connect("/ws/clusters/demo/grid/", ORIGIN, session_cookie)
    assert connected and hops  # websocket.connect: channels' own dispatch
    await comm.receive_from(timeout=5)  # hello
    before = len(hops)
    sim = collector.simulator
    frames = 0
    for _ in range(6):
        sim.step(5)
        collector.tick()
        while not await comm.receive_nothing(timeout=0.2):
            await comm.receive_from(timeout=1)
            frames += 1
    assert frames >= 1, "the collector published nothing"
    assert len(hops) == before
    await comm.disconnect()
