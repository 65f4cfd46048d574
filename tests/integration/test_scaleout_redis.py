"""The scale-out pieces against a real Redis, in-process: the collector lock (exclusive,
renewed, taken over after its TTL, fenced), snapshots written by the supervisor and read
by web workers (cached per revision, epoch kept, stale after a silent heartbeat)."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib

import msgspec
import pytest
import redis

from dashboard import pipeline
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.collect.locks import ClusterLock, key
from dashboard.collect.remote import CollectorReport, SnapshotMeta, SnapshotReader
from dashboard.collect.snapshots import decode_matrix, encode_matrix
from dashboard.collect.supervisor import CollectorSupervisor
from tests.helpers import collectors
from tests.helpers.wait import async_poll, async_wait_until, wait_until


def test_lock_is_exclusive_renewable_and_fenced(redis_client):
    a = ClusterLock(redis_client, "c1", "a", ttl=0.5)
    b = ClusterLock(redis_client, "c1", "b", ttl=0.5)
    assert a.acquire() and a.token == 1
    assert not b.acquire()
    assert a.renew()
    assert 0 < redis_client.pttl(key("lock", "c1")) <= 500  # renewed for the TTL, no longer
    assert a.fenced_set({key("status", "c1"): b"from-a"})
    # The holder stops renewing (dies, pauses): after the TTL another takes over with a
    # higher fencing token, and the old holder's writes are refused.
    wait_until(
        lambda: redis_client.get(key("lock", "c1")) is None, 10, "a's lock to expire (TTL 0.5 s)"
    )
    assert b.acquire() and b.token == 2
    assert not a.fenced_set({key("status", "c1"): b"late-a"})
    assert not a.held and not a.renew()
    assert redis_client.get(key("status", "c1")) == b"from-a"
    assert b.fenced_set({key("status", "c1"): b"from-b"})
    a.release()  # not ours any more: must not delete b's lock
    assert redis_client.get(key("lock", "c1")) == f"b/{b.token}".encode()
    b.release()
    assert redis_client.get(key("lock", "c1")) is None


def test_lock_knows_when_it_may_have_expired(redis_client):
    lock = ClusterLock(redis_client, "c2", "a", ttl=0.2)
    assert lock.acquire() and not lock.expired_locally()
    # A fixed sleep on purpose: the claim is that once the TTL has passed on our own clock
    # (no renewal confirmed) the lock says so; waiting for it would accept any delay.
    time.sleep(0.25)
    assert lock.expired_locally()


def _collector(slug="demo") -> ClusterCollector:
    c = collectors.make(ClusterConfig(slug=slug, name="Demo cluster", group_by_label="zone"))
    c.start_source(run_clock=False)
    c.tick()
    return c


def _write(client, collector, lock, heartbeat=None):
    meta = SnapshotMeta(collector.matrix.epoch, collector.matrix.revision, lock.token, 0)
    report = CollectorReport(
        holder="test", token=lock.token, heartbeat=heartbeat or time.time(), state="synced",
        name=collector.cluster.name, group_by_label="zone",
    )  # fmt: skip
    slug = collector.cluster.slug
    assert lock.fenced_set(
        {
            key("snap", slug): encode_matrix(collector.matrix),
            key("meta", slug): msgspec.json.encode(meta),
            key("status", slug): msgspec.json.encode(report),
        }
    )


def test_reader_serves_the_snapshot_cached_per_revision(redis_client):
    collector = _collector()
    lock = ClusterLock(redis_client, "demo", "test", ttl=30)
    assert lock.acquire()
    # Read at once, whatever the machine's load (the background path is tested below).
    reader = SnapshotReader(redis_client, stale_after=5, background_after=float("inf"))
    assert reader.get("demo") is None  # nothing written yet
    _write(redis_client, collector, lock)
    remote = reader.get("demo")
    assert remote.matrix.state() == collector.matrix.state()
    assert remote.matrix.revision == collector.matrix.revision
    assert remote.cluster.name == "Demo cluster" and remote.cluster.group_by_label == "zone"
    assert remote.status.state == "synced" and remote.fresh
    # Pages render with the collector's epoch, so its pushes do not force a re-sync.
    assert remote.matrix.epoch == collector.matrix.epoch
    assert reader.get("demo") is remote  # same revision: no reload
    collector.matrix.revision += 1  # a new revision is what matters to the cache
    _write(redis_client, collector, lock)
    assert reader.get("demo") is not remote
    collector.stop_source()


def test_a_big_snapshot_is_reread_in_the_background_and_no_more_often_than_paced(redis_client):
    """Decoding a 5,000-node snapshot takes seconds: a new revision of one must not make
    every page, socket and wall tick of a web worker wait for it (the scale-out bench saw
    500 sockets unable to connect), nor be decoded again before `spacing` x its decode time
    has passed. Readers get the previous matrix, with the fresh report, meanwhile."""
    collector = _collector()
    lock = ClusterLock(redis_client, "demo", "test", ttl=30)
    assert lock.acquire()
    # Every decode counts as big here; spacing 0 first: reread as soon as it is seen.
    reader = SnapshotReader(redis_client, stale_after=5, background_after=0.0, spacing=0.0)
    _write(redis_client, collector, lock)
    first = reader.get("demo")  # nothing cached yet: read at once
    assert first is not None and first.meta.revision == collector.matrix.revision
    collector.matrix.revision += 1
    _write(redis_client, collector, lock, heartbeat=time.time() + 1)
    served = reader.get("demo")
    # The new revision is read on a thread of its own; whoever asked got an answer: the
    # previous matrix with the new report, or the new one if the thread was quicker.
    assert served is first or served.meta.revision == collector.matrix.revision
    assert served.report.heartbeat == pytest.approx(time.time() + 1, abs=5)
    wait_until(
        lambda: reader.get("demo").meta.revision == collector.matrix.revision,
        10,
        "the background read of the new revision",
    )
    # Paced: with a long spacing, a newer revision is not read again for now.
    reader.spacing = 1e6
    reader._next_reload["demo"] = time.monotonic() + 1e6  # as after a slow decode
    seen = reader.get("demo")
    collector.matrix.revision += 1
    marker = time.time() + 2
    _write(redis_client, collector, lock, heartbeat=marker)
    # A fixed window on purpose: the claim is that no reread happens in it.
    time.sleep(0.3)
    assert reader.get("demo") is seen and seen.meta.revision == collector.matrix.revision - 1
    assert seen.report.heartbeat == marker  # the report is the fresh one
    collector.stop_source()


async def test_a_web_worker_rereads_a_big_snapshot_on_its_loop_between_frames(
    redis_client, monkeypatch
):
    # A thread beside the loop held the interpreter lock for the seconds of a 5,000-node
    # decode and the worker's sockets fell behind; the re-read now runs on the loop, in
    # steps, with the loop's other work in between.
    from dashboard.collect import remote
    from dashboard.collect.registry import registry

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(registry, "loop", loop)
    monkeypatch.setattr(remote, "LOOP_SLICE_SECONDS", 0.0)  # give the loop back at every step
    stepped_on: set[str] = set()
    steps = remote.decode_steps

    def recorded(raw):
        inner = steps(raw)
        while True:
            try:
                step = next(inner)
            except StopIteration as done:
                return done.value
            stepped_on.add(threading.current_thread().name)
            yield step

    monkeypatch.setattr(remote, "decode_steps", recorded)

    collector = _collector()
    lock = ClusterLock(redis_client, "demo", "test", ttl=30)
    assert lock.acquire()
    reader = SnapshotReader(redis_client, stale_after=5, background_after=0.0, spacing=0.0)
    _write(redis_client, collector, lock)
    first = await asyncio.to_thread(reader.get, "demo")  # from a thread, as the views ask
    collector.matrix.revision += 1
    _write(redis_client, collector, lock)
    interleaved = 0

    async def other_work() -> None:
        nonlocal interleaved
        while True:
            interleaved += "demo" in reader._reloading
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_work())
    served = await asyncio.to_thread(reader.get, "demo")
    assert served is first  # answered at once, from the previous revision
    await async_wait_until(
        lambda: reader._cache["demo"].meta.revision == collector.matrix.revision,
        what="the re-read of the new revision",
    )
    ticker.cancel()
    assert interleaved > 10
    assert stepped_on == {threading.current_thread().name}  # the loop's, no other thread
    assert reader._cache["demo"].matrix.state() == collector.matrix.state()
    collector.stop_source()


def test_a_silent_collector_turns_stale_and_the_matrix_stays(redis_client):
    collector = _collector()
    lock = ClusterLock(redis_client, "demo", "test", ttl=30)
    assert lock.acquire()
    _write(redis_client, collector, lock, heartbeat=time.time() - 60)
    remote = SnapshotReader(redis_client, stale_after=5).get("demo")
    assert remote.status.state == "stale"
    assert "stopped reporting" in remote.status.message
    assert remote.runtime_status().state == "stale"
    assert remote.matrix.state() == collector.matrix.state()
    collector.stop_source()


@pytest.mark.django_db(transaction=True)
async def test_supervisor_takes_locks_writes_snapshots_and_hands_over(redis_client, settings):
    from channels.layers import InMemoryChannelLayer

    settings.DAEMONVIZ_SIM_CHURN = 0.0
    from asgiref.sync import sync_to_async

    from dashboard.models import Cluster

    await sync_to_async(Cluster.objects.create)(name="Demo", slug="demo")
    layer = InMemoryChannelLayer()
    factory = pipeline.collector_factory(channel_layer=layer, history=False)
    one = CollectorSupervisor(redis_client, owner="one", ttl=2.0, snapshot_seconds=0.1,
                              reconcile_seconds=0.2, factory=factory)  # fmt: skip
    two = CollectorSupervisor(redis_client, owner="two", ttl=2.0, snapshot_seconds=0.1,
                              reconcile_seconds=0.2, factory=factory)  # fmt: skip
    stop_one, stop_two = asyncio.Event(), asyncio.Event()
    reader = SnapshotReader(redis_client, stale_after=2)

    async def until(pred, seconds=10.0):  # the reader's Redis calls block: in a thread
        return await async_poll(pred, seconds, in_thread=True)

    def synced_by(owner):
        r = reader.get("demo")
        return (
            r is not None
            and r.report is not None
            and r.report.holder == owner
            and (r.matrix.nodes and r.status.state == "synced")
        )

    t1 = asyncio.create_task(one.run(stop_one))
    tasks = [t1]
    try:
        # One holds the lock before two starts: two is the standby.
        await async_wait_until(lambda: "demo" in one.held, 10, "supervisor one to take the lock")
        tasks.append(asyncio.create_task(two.run(stop_two)))
        assert await until(lambda: synced_by("one"))
        assert "demo" in one.held and "demo" not in two.held
        first = reader.get("demo")
        # A clean stop releases the lock: the standby takes over at its next reconcile.
        stop_one.set()
        await t1
        assert await until(lambda: synced_by("two"))
        second = reader.get("demo")
        assert second.report.token > first.report.token
        assert second.matrix.state().keys() == first.matrix.state().keys()
        # Disabling the cluster stops its collector and removes its snapshot.
        await sync_to_async(Cluster.objects.filter(slug="demo").update)(enabled=False)
        assert await until(lambda: reader.get("demo") is None and not two.held)
    finally:
        stop_one.set()
        stop_two.set()
        await asyncio.gather(*tasks)


def test_snapshot_codec_round_trips_a_large_matrix():
    c = collectors.make(ClusterConfig(slug="big", name="big", scenario="large", nodes=300,
                                       daemonsets=12))  # fmt: skip
    c.start_source(run_clock=False)
    c.tick()
    m = decode_matrix(encode_matrix(c.matrix))
    assert m.state() == c.matrix.state() and len(m.cells) == 3600
    for attr in ("nodes", "health", "daemonsets", "pods", "revisions", "ds_counts", "node_counts"):
        assert getattr(m, attr) == getattr(c.matrix, attr), attr
    assert m._eligibility == c.matrix._eligibility
    ds_key = sorted(m.daemonsets)[0]
    node = sorted(m.nodes)[0]
    assert m.pods_in_cell(node, ds_key) == c.matrix.pods_in_cell(node, ds_key)
    assert m.current_hash(ds_key) == c.matrix.current_hash(ds_key)
    c.stop_source()


def test_the_big_lists_travel_in_chunks_each_decoded_on_its_own():
    # msgspec holds the interpreter lock for a whole call: one call per chunk lets a web
    # worker's event loop run between them while it re-reads a big snapshot.
    from dashboard.collect import snapshots

    c = collectors.make(ClusterConfig(slug="big", name="big", scenario="large", nodes=300,
                                       daemonsets=12))  # fmt: skip
    c.start_source(run_clock=False)
    c.tick()
    state = snapshots._decoder.decode(zlib.decompress(encode_matrix(c.matrix)))
    assert len(state.cells) == -(-3600 // snapshots.CHUNK) > 1
    assert all(len(snapshots._cells.decode(chunk)) <= snapshots.CHUNK for chunk in state.cells)
    assert sum(len(snapshots._pods.decode(chunk)) for chunk in state.pods) == len(c.matrix.pods)
    c.stop_source()


def test_a_snapshot_of_another_format_is_refused_by_name():
    # What a collector of the previous version wrote during a rolling upgrade: records as
    # maps with their field names, format 3.
    older = zlib.compress(msgspec.msgpack.encode([3, 7, [{"name": "n1"}], [], [], [], [], []]))
    with pytest.raises(ValueError, match=r"unknown snapshot format 3 \(this version reads 4\)"):
        decode_matrix(older)


@pytest.mark.slow
async def test_a_quiet_channel_layer_does_not_time_out_its_receivers(redis_server):
    """A web worker's channel layer waits in a 5 s blocking pop (BZPOPMIN); redis-py 8 reads
    with a 5 s socket timeout by default, so with no delta for 5 s (quiet clusters, a
    collector failing over) `receive()` raised TimeoutError inside a consumer, which dropped
    its websocket. The scale-out bench found it as sockets stuck on a dead collector's
    revision (django/channels_redis#422)."""
    from channels_redis.core import RedisChannelLayer

    from daemonviz.settings import redis_channel_layer

    layer = RedisChannelLayer(**redis_channel_layer(redis_server.url)["CONFIG"])
    channel = await layer.new_channel()
    busy = redis.Redis.from_url(redis_server.url)
    try:
        # Fixed windows on purpose: the claim is that nothing happens in them (no error
        # while nothing arrives for longer than the blocking pop), so there is nothing to
        # wait for. Redis is kept busy for a second across the pop's 5 s timeout — as a
        # big snapshot write or a fan-out to many channels does under load — so the pop's
        # empty answer comes late: the read timeout must not fire first.
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(layer.brpop_timeout - 0.5)
        await asyncio.to_thread(busy.eval, BUSY_LUA, 0, 1000)
        done, _ = await asyncio.wait({receiving}, timeout=2.0)
        assert not done, f"receive() ended while idle: {receiving.exception()!r}"
        await layer.send(channel, {"type": "grid.delta", "n": 1})
        assert (await asyncio.wait_for(receiving, 10))["n"] == 1
    finally:
        busy.close()
        await layer.flush()
        await layer.close_pools()


# Keeps Redis busy for ARGV[1] milliseconds (a script blocks every other client meanwhile).
BUSY_LUA = """
local t = redis.call('TIME')
local until_us = (t[1] * 1000000 + t[2]) + tonumber(ARGV[1]) * 1000
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us
return 1
"""


@pytest.mark.django_db(transaction=True)
async def test_collectors_sharded_by_cluster_take_only_their_own(redis_client, settings):
    """`collect --clusters`: each process takes the locks of its slugs only, and neither
    forgets the snapshots the other writes."""
    from asgiref.sync import sync_to_async
    from channels.layers import InMemoryChannelLayer

    from dashboard.models import Cluster

    settings.DAEMONVIZ_SIM_CHURN = 0.0
    for slug in ("big-1", "small-1", "small-2"):
        await sync_to_async(Cluster.objects.create)(name=slug, slug=slug)
    factory = pipeline.collector_factory(channel_layer=InMemoryChannelLayer(), history=False)
    big = CollectorSupervisor(redis_client, owner="big", ttl=2.0, snapshot_seconds=0.1,
                              reconcile_seconds=0.2, factory=factory, clusters=("big-*",))  # fmt: skip
    small = CollectorSupervisor(redis_client, owner="small", ttl=2.0, snapshot_seconds=0.1,
                                reconcile_seconds=0.2, factory=factory,
                                clusters=("small-1", "small-?"))  # fmt: skip
    reader = SnapshotReader(redis_client, stale_after=2)
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(s.run(e)) for s, e in zip((big, small), stops, strict=True)]

    def synced(slug, owner):
        r = reader.get(slug)
        return r is not None and r.report is not None and r.report.holder == owner

    try:
        for slug, owner in (("big-1", "big"), ("small-1", "small"), ("small-2", "small")):
            assert await async_poll(lambda s=slug, o=owner: synced(s, o), 10, in_thread=True)
        await asyncio.sleep(1.0)  # several reconciles of each: nothing moves, nothing is lost
        assert set(big.held) == {"big-1"} and set(small.held) == {"small-1", "small-2"}
        assert all(reader.get(s) is not None for s in ("big-1", "small-1", "small-2"))
        # Stopping one shard leaves its clusters to a standby of that shard, not to the other.
        stops[0].set()
        await tasks[0]
        await asyncio.sleep(1.0)
        assert "big-1" not in small.held
    finally:
        for e in stops:
            e.set()
        await asyncio.gather(*tasks)
