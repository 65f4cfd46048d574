"""Big deltas by reference over a real Redis (dashboard/collect/deltarefs.py): the collector
stores a big payload once and publishes a reference; web workers fetch it once per
process; a reference whose payload is gone makes the page re-sync, never shows a guess.

Each RedisChannelLayer instance stands for one web worker process: channels-redis keeps
one queue per process (its client prefix), and writes one copy of a group message per
queue."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.contrib.auth import get_user_model
from django.test import Client

from daemonviz.settings import redis_channel_layer
from dashboard import pipeline
from dashboard.clusters.config import ClusterConfig
from dashboard.collect import deltarefs
from dashboard.collect.registry import registry
from dashboard.grid import frames
from dashboard.grid.model import GridFilters, dom_id
from tests.helpers import collectors

pytestmark = pytest.mark.usefixtures("no_embedded_collectors")

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")
WORKERS = 8


@pytest.fixture
def scaleout(settings, redis_server, redis_client):
    """This process set up like a scale-out one: REDIS_URL and the channels-redis layer."""
    settings.REDIS_URL = redis_server.url
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    return redis_server.url


def _layer(url: str) -> RedisChannelLayer:
    return RedisChannelLayer(**redis_channel_layer(url)["CONFIG"])


def _big_payload(slug: str, epoch: str, revision: int, size: int = 1_000_000) -> dict:
    """A rollout-sized payload: ~`size` bytes of rendered row heads (incompressible
    enough that msgpack keeps them at full size)."""
    heads = [os.urandom(500).hex() for _ in range(size // 1000)]
    return {
        "slug": slug,
        "epoch": epoch,
        "revision": revision,
        "base": revision - 1,
        "rows_changed": [{"node": f"node-{i}", "head": h} for i, h in enumerate(heads)],
    }


def _net_input(client) -> int:
    return int(client.info("stats")["total_net_input_bytes"])


def _get_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


async def test_a_big_delta_crosses_redis_once_not_once_per_worker(scaleout, redis_client):
    workers = [_layer(scaleout) for _ in range(WORKERS)]
    channels = []
    for layer in workers:
        channel = await layer.new_channel()
        await layer.group_add(frames.group_name("big"), channel)
        channels.append(channel)
    collector_layer = _layer(scaleout)
    publish = pipeline.channel_publisher(collector_layer)
    payload = _big_payload("big", "e-once", 7)
    size = len(frames.pack(payload))

    before = _net_input(redis_client)
    await publish(payload)
    received = _net_input(redis_client) - before
    # Inline, channels-redis wrote the payload into each worker's queue: 8 copies, 8 MB.
    assert received < 1.5 * size, f"{received / size:.1f} payload sizes went into Redis"

    for layer, channel in zip(workers, channels, strict=True):
        message = await layer.receive(channel)
        assert len(json.dumps(message, default=str)) < 1_000  # a reference, not the bytes
        frames._unpacked.clear()  # each worker is its own process with its own cache
        entry = await frames.unpacked(message)
        assert entry is not None and entry.payload == payload
    for layer in [*workers, collector_layer]:
        await layer.flush()


async def test_one_process_fetches_a_reference_once_for_all_its_sockets(scaleout, redis_client):
    store = deltarefs.DeltaStore(scaleout)
    payload = _big_payload("shared", "e-shared", 3, size=200_000)
    ref = await store.put("shared", "e-shared", 3, frames.pack(payload))
    message = frames.reference_message(payload, ref)
    calls = _get_calls(redis_client)
    entries = await asyncio.gather(*(frames.unpacked(dict(message)) for _ in range(50)))
    assert _get_calls(redis_client) - calls == 1
    assert all(e is entries[0] for e in entries) and entries[0].payload == payload
    filters = GridFilters.from_query({})
    assert entries[0].frame(filters) == frames.client_frame(payload, filters)


async def test_references_are_kept_within_the_byte_budget_oldest_dropped(scaleout, redis_client):
    store = deltarefs.DeltaStore(scaleout, budget=250_000)
    refs = [await store.put("budget", "e", rev, os.urandom(100_000)) for rev in range(1, 4)]
    assert [bool(redis_client.exists(r)) for r in refs] == [False, True, True]
    assert 0 < redis_client.ttl(refs[-1]) <= deltarefs.TTL_SECONDS
    # One budget for the process: another cluster's reference drops the oldest of all.
    other = await store.put("other", "e", 1, os.urandom(100_000))
    assert [bool(redis_client.exists(r)) for r in [*refs, other]] == [False, False, True, True]


# --------------------------------------------------------------------- the grid socket


@pytest.fixture
def collector(scaleout, monkeypatch):
    # Every delta by reference, however small: the demo cluster's are a few KB.
    monkeypatch.setattr(deltarefs, "INLINE_BYTES", 0)
    c = collectors.make(
        ClusterConfig(slug="demo", name="Demo", scenario="demo", seed=3), get_channel_layer()
    )
    c.start_source(run_clock=False)
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


async def _grid_socket(cookie, query: str = "") -> WebsocketCommunicator:
    from daemonviz.asgi import application

    comm = WebsocketCommunicator(
        application, f"/ws/clusters/demo/grid/{query}", headers=[HOST, ORIGIN, cookie]
    )
    connected, _ = await comm.connect()
    assert connected
    assert json.loads(await comm.receive_from(timeout=5))["hello"] == 1
    return comm


@pytest.mark.django_db(transaction=True)
async def test_grid_sockets_get_their_frames_from_a_reference(
    collector, session_cookie, redis_client
):
    wide = await _grid_socket(session_cookie)
    narrow = await _grid_socket(session_cookie, "?namespace=monitoring")
    sim = collector.simulator
    node, ds_key = next(
        (n, d)
        for (n, d), cell in sorted(collector.matrix.cells.items())
        if cell.state.value == "healthy" and d.startswith("kube-system/")
    )
    sim.crash_pod(ds_key, node)
    for _ in range(12):
        sim.step(5)
        await asyncio.sleep(0)
        collector.tick()
        if collector.matrix.cells[(node, ds_key)].state.value == "crash-looping":
            break
    assert collector.matrix.cells[(node, ds_key)].state.value == "crash-looping"
    assert redis_client.keys("daemonviz:delta:demo:*"), "nothing went by reference"

    cell_id = f"c-{dom_id(node)}-{dom_id(ds_key)}"
    pushed = None
    for _ in range(20):
        frame = json.loads(await wide.receive_from(timeout=5))
        assert "resync" not in frame
        cells = dict(frame.get("cells", ()))
        if cell_id in cells and "s-crash-looping" in frame["skel"][cells[cell_id]]:
            pushed = frame
            break
    assert pushed is not None
    # The filtered socket got the same revisions, without the hidden column's cells.
    seen = []
    while not await narrow.receive_nothing(timeout=0.3):
        seen.append(json.loads(await narrow.receive_from(timeout=1)))
    assert pushed["rev"] in [f["rev"] for f in seen]
    assert not any(cid == cell_id for f in seen for cid, _ in f.get("cells", ()))
    await wide.disconnect()
    await narrow.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reference_whose_payload_is_gone_makes_the_page_resync(
    collector, session_cookie, redis_client
):
    comm = await _grid_socket(session_cookie)
    matrix = collector.matrix
    revision = matrix.revision + 1
    gone = {"slug": "demo", "epoch": matrix.epoch, "revision": revision}
    message = frames.reference_message(gone, deltarefs.ref_key("demo", matrix.epoch, revision))
    assert not redis_client.exists(message["ref"])
    await get_channel_layer().group_send(frames.group_name("demo"), message)
    frame = json.loads(await comm.receive_from(timeout=5))
    assert frame == {"rev": revision, "base": revision, "epoch": matrix.epoch, "resync": 1}
    await comm.disconnect()


async def test_a_reference_redis_cannot_answer_is_gone_not_an_error(settings):
    from tests.helpers.ports import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    payload = {"slug": "down", "epoch": "e-down", "revision": 1}
    message = frames.reference_message(payload, deltarefs.ref_key("down", "e-down", 1))
    assert await frames.unpacked(message) is None
