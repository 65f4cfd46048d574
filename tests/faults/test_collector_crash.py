"""A collector whose tick fails is restarted with back-off and says so (`crashed`, with
the cause in words) wherever states are shown; stopping it never raises into the loop
that reconciles the collectors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard import pipeline
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.collect.registry import registry
from dashboard.kube.connection import ConnectionState
from dashboard.models import Cluster
from tests.helpers.wait import async_wait_until, wait_until

CONFIG = ClusterConfig(slug="boom", name="Boom", nodes=4, daemonsets=2, churn=0.0)


class FailingPayload:
    """The grid's payload builder, failing its first `times` calls (times=-1: always), the
    way a page-code bug on one odd object would."""

    def __init__(self, times: int):
        self.left = times
        self.calls = 0

    def __call__(self, cluster, matrix, delta):
        self.calls += 1
        if self.left != 0:
            self.left -= 1
            raise OverflowError("date value out of range")
        return pipeline.delta_payload(cluster, matrix, delta)


def _collector(times: int, config: ClusterConfig = CONFIG) -> ClusterCollector:
    collector = ClusterCollector(config, coalesce=0.02, payload=FailingPayload(times))
    collector.crash_backoff = (0.05, 0.2)
    return collector


async def test_a_crashing_collector_restarts_with_backoff_and_recovers():
    collector = _collector(times=2)
    seen: list[str] = []

    def crashed() -> bool:
        status = collector.status
        if status.state == ConnectionState.CRASHED:
            seen.append(status.message)
        return status.state == ConnectionState.CRASHED

    collector.start()
    try:
        await async_wait_until(crashed, what="the collector to report its crash", interval=0.005)
        first_epoch = collector.matrix.epoch
        assert "collector crashed: OverflowError: date value out of range" in seen[0]
        assert collector.runtime_status().last_error.startswith("collector crashed: Overflow")
        await async_wait_until(
            lambda: collector.status.state == ConnectionState.SYNCED and collector.matrix.cells,
            what="the collector to recover on a fresh matrix",
        )
        assert collector.crash is None
        assert collector.matrix.epoch != first_epoch  # pages re-sync against the new matrix
        assert collector.build_payload.calls >= 3
    finally:
        await collector.stop()


async def test_stop_never_raises_even_while_crashed():
    collector = _collector(times=-1)
    collector.crash_backoff = (5.0, 5.0)  # it sits in its back-off when stopped
    collector.closers.append(lambda: 1 / 0)  # a closer failing too
    collector.start()
    await async_wait_until(lambda: collector.status.state == ConnectionState.CRASHED)
    await collector.stop()  # must not raise


class SlowToStop(ClusterCollector):
    """A collector whose source takes a while to stop (a kube source joins its reflector
    threads), counting how many stops run at once."""

    def __init__(self) -> None:
        super().__init__(CONFIG, coalesce=0.02, payload=FailingPayload(-1))
        self.crash_backoff = (5.0, 5.0)
        self.stopping = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self.guard = threading.Lock()

    def stop_source(self) -> None:
        with self.guard:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.stopping.set()
        time.sleep(0.3)
        super().stop_source()
        with self.guard:
            self.running -= 1


async def test_stop_while_a_crashed_tick_stops_its_source_ends_the_collector():
    # The tick crashes and run() is stopping its source when stop() cancels the task:
    # the cancel must neither start a second, racing stop nor be lost (the loop would
    # restart the collector and stop() would wait on it forever).
    collector = SlowToStop()
    task = collector.start()
    await asyncio.to_thread(collector.stopping.wait, 10)
    await asyncio.wait_for(collector.stop(), 5)
    assert task.done() and task.cancelled()
    assert collector.most_at_once == 1
    assert collector.running == 0  # stop() returned after the source had stopped


class FailsToStop(ClusterCollector):
    def stop_source(self) -> None:
        super().stop_source()
        raise ValueError("the source tripped while stopping")


async def test_a_source_failing_to_stop_does_not_turn_stop_into_a_restart():
    collector = FailsToStop(CONFIG, coalesce=0.02)
    collector.crash_backoff = (0.01, 0.01)
    task = collector.start()
    await async_wait_until(lambda: collector.status.state == ConnectionState.SYNCED)
    await asyncio.wait_for(collector.stop(), 5)
    assert task.done() and task.cancelled()
    assert collector.crash is None  # stopped, not "crashed, restarting"


async def test_the_embedded_reconcile_goes_on_past_a_crashed_collector(settings, monkeypatch):
    from dashboard.collect import embedded as embedded_mod

    clusters = {"boom": CONFIG, "ok": ClusterConfig(slug="ok", name="Ok", nodes=3, daemonsets=1)}
    monkeypatch.setattr(embedded_mod, "enabled_clusters", lambda: dict(clusters))
    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = True
    made: dict[str, ClusterCollector] = {}

    def factory(config: ClusterConfig) -> ClusterCollector:
        made[config.slug] = c = _collector(-1 if config.slug == "boom" else 0, config)
        return c

    group = embedded_mod.EmbeddedCollectors(factory)
    await group.ensure_started()
    try:
        await async_wait_until(lambda: made["boom"].status.state == ConnectionState.CRASHED)
        del clusters["boom"]  # deleting the crashed cluster
        clusters["new"] = ClusterConfig(slug="new", name="New", nodes=2, daemonsets=1)
        await group.reconcile()
        assert registry.get("boom") is None
        assert registry.get("new") is made["new"]
    finally:
        await group.stop()


@pytest.mark.django_db
def test_crashed_is_shown_on_the_grid_the_admin_and_metrics(
    client, admin_client, django_user_model
):
    Cluster.objects.create(name="Boom", slug="boom", source="simulated")
    collector = _collector(times=-1)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(_start(collector), loop).result(5)
        registry.register(collector)
        wait_until(lambda: collector.status.state == ConnectionState.CRASHED)

        metrics = client.get("/metrics").content.decode()
        states = {
            s.labels["state"]: s.value
            for f in text_string_to_metric_families(metrics)
            if f.name == "daemonviz_collector_state"
            for s in f.samples
            if s.labels["cluster"] == "boom"
        }
        assert states["crashed"] == 1.0 and states["synced"] == 0.0

        badge = admin_client.get("/admin/dashboard/cluster/").content.decode()
        assert "st-crashed" in badge and "OverflowError" in badge

        client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123"))
        page = client.get("/clusters/boom/").content.decode()
        assert "conn-crashed" in page
        assert "collector crashed: OverflowError: date value out of range" in page
        overview = client.get("/").content.decode()
        assert "conn-crashed" in overview

        from dashboard.wall.views import cluster_status

        assert cluster_status("boom")["state"] == "crashed"
    finally:
        registry.unregister("boom")
        asyncio.run_coroutine_threadsafe(collector.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


async def _start(collector: ClusterCollector) -> None:
    collector.start()
