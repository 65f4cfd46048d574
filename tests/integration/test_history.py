"""Coverage history: recording (baseline, coalescing, batching), timelines, gap-minutes,
retention, and the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from dashboard.clusters.config import ClusterConfig
from dashboard.coverage.cells import Cell
from dashboard.coverage.matrix import Delta
from dashboard.coverage.states import State
from dashboard.coverage.timefmt import utcnow
from dashboard.history import recorder as history
from dashboard.history import timeline
from dashboard.models import Cluster, CoverageEvent
from tests.helpers import collectors

DS = "logging/shipper"


def _cell(state: State, reason="r") -> Cell:
    return Cell(state, reason, state is not State.NOT_TARGETED)


def _delta(**cells) -> Delta:
    return Delta(1, cells={(n, DS): _cell(s) for n, s in cells.items()})


class _FakeMatrix:
    def __init__(self, cells):
        self.cells = cells


def test_flapping_within_a_batch_is_coalesced():
    rec = history.HistoryRecorder("c", batch=10_000)
    t0 = utcnow()
    rec._baseline(
        _FakeMatrix({("n1", DS): _cell(State.HEALTHY), ("n2", DS): _cell(State.HEALTHY)}), t0
    )
    rows = rec.take()
    assert [r.kind for r in rows] == ["sync"]  # fine cells have no baseline row
    # n1 flaps ten times and ends healthy: nothing to write. n2 flaps and ends crash-looping.
    for i in range(10):
        s = State.CRASH_LOOPING if i % 2 == 0 else State.HEALTHY
        rec.record(_delta(n1=s, n2=s), t0 + timedelta(seconds=i))
    rec.record(_delta(n2=State.CRASH_LOOPING), t0 + timedelta(seconds=11))
    rows = rec.take()
    assert [(r.node, r.state, r.previous, r.changes) for r in rows] == [
        ("n2", "crash-looping", "healthy", 11)
    ]
    assert rec.dropped_flaps == 10
    # Reason-only changes are not history.
    rec.record(Delta(2, cells={("n2", DS): _cell(State.CRASH_LOOPING, "other reason")}))
    assert rec.take() == []


def test_waits_for_a_synced_source_before_the_baseline():
    c = collectors.make(ClusterConfig(slug="demo", name="demo"))
    rec = history.HistoryRecorder("demo", batch=10_000)
    c.listeners.append(rec)
    c.start_source(run_clock=False)
    c.tick()
    rows = rec.take()
    assert rows[0].kind == "sync" and rec.baselined
    not_fine = [(r.node, r.daemonset) for r in rows[1:]]
    expected = [k for k, cell in c.matrix.cells.items() if cell.state.value not in history.FINE]
    assert sorted(not_fine) == sorted(expected)
    c.stop_source()


@pytest.fixture
def cluster(db):
    return Cluster.objects.create(name="Prod", slug="prod")


def _rows(cluster, *rows):
    CoverageEvent.objects.bulk_create([CoverageEvent(cluster=cluster, **r) for r in rows])


def test_timeline_and_gap_minutes(cluster):
    now = utcnow()
    t = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    _rows(
        cluster,
        {"at": t(300), "kind": "sync"},
        {"at": t(300), "kind": "cell", "node": "n1", "daemonset": DS, "state": "missing"},
        {"at": t(200), "kind": "cell", "node": "n1", "daemonset": DS, "state": "healthy"},
        {"at": t(50), "kind": "cell", "node": "n2", "daemonset": DS, "state": "crash-looping"},
        {"at": t(40), "kind": "cell", "node": "n2", "daemonset": DS, "state": "starting"},
        {"at": t(30), "kind": "cell", "node": "n2", "daemonset": DS, "state": "healthy"},
        {"at": t(20), "kind": "cell", "node": "n3", "daemonset": DS, "state": "missing"},
        {"at": t(10), "kind": "node-", "node": "n3"},
        {"at": t(5), "kind": "cell", "node": "n4", "daemonset": DS, "state": "image-error"},
        {"at": t(5), "kind": "cell", "node": "n4", "daemonset": "other/ds", "state": "missing"},
    )
    tl = timeline.timeline(cluster, daemonset=DS, hours=24, now=now)
    got = [(e.node, e.state, e.end is None) for e in tl.episodes]
    assert got == [
        ("n4", "image-error", True),
        ("n3", "missing", False),
        ("n2", "starting", False),
        ("n2", "crash-looping", False),
        ("n1", "missing", False),
    ]
    # n1 missing 100 min, n2 crash-looping 10 (starting is no gap), n3 10 (until it left),
    # n4 5 and still going.
    assert tl.gap_minutes == {"n1": 100.0, "n2": 10.0, "n3": 10.0, "n4": 5.0}
    # A window of 1 h clips n1's episode away and keeps the others.
    tl1 = timeline.timeline(cluster, daemonset=DS, hours=1, now=now)
    assert sorted(tl1.gap_minutes) == ["n2", "n3", "n4"]
    assert timeline.gap_minutes(cluster, hours=24, now=now) == {DS: 125.0, "other/ds": 5.0}
    by_node = timeline.timeline(cluster, node="n4", hours=24, now=now)
    assert by_node.gap_minutes == {DS: 5.0, "other/ds": 5.0}


def test_a_sync_ends_episodes_unless_it_restates_them(cluster):
    now = utcnow()
    t = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    _rows(
        cluster,
        {"at": t(100), "kind": "sync"},
        {"at": t(90), "kind": "cell", "node": "n1", "daemonset": DS, "state": "missing"},
        {"at": t(90), "kind": "cell", "node": "n2", "daemonset": DS, "state": "missing"},
        # A takeover 60 min ago: n1 still missing (restated), n2 fine by then.
        {"at": t(60), "kind": "sync"},
        {"at": t(60), "kind": "cell", "node": "n1", "daemonset": DS, "state": "missing"},
    )
    tl = timeline.timeline(cluster, daemonset=DS, hours=24, now=now)
    assert [(e.node, e.start == t(90), e.end) for e in tl.episodes] == [
        ("n2", True, t(60)),
        ("n1", True, None),
    ]
    assert tl.gap_minutes == {"n1": 90.0, "n2": 30.0}


@pytest.mark.django_db(transaction=True)
def test_writer_writes_batches_and_purge_keeps_recent_rows(cluster):
    w = history.HistoryWriter(flush_seconds=60)
    rec = history.HistoryRecorder("prod", w, batch=10_000)
    w.add(rec)
    old = utcnow() - timedelta(days=40)
    rec._baseline(_FakeMatrix({("n1", DS): _cell(State.MISSING)}), old)
    rec.record(_delta(n1=State.HEALTHY, n2=State.CRASH_LOOPING))
    assert w.flush() == 4
    assert CoverageEvent.objects.filter(cluster=cluster).count() == 4
    assert w.flush() == 0
    call_command("purgehistory", "--days", "30")
    assert CoverageEvent.objects.count() == 2
    w.remove(rec)


@pytest.mark.django_db(transaction=True)
def test_a_cluster_deleted_and_added_again_under_its_slug_keeps_its_history(cluster):
    # The writer once cached slug -> primary key: the new cluster's first batch then
    # pointed at the deleted row and was lost to "FOREIGN KEY constraint failed".
    w = history.HistoryWriter(flush_seconds=60)
    rec = history.HistoryRecorder("prod", w, batch=10_000)
    w.add(rec)
    rec.record(_delta(n1=State.MISSING))
    assert w.flush() == 1
    cluster.delete()
    again = Cluster.objects.create(name="Prod again", slug="prod")
    rec.record(_delta(n1=State.HEALTHY, n2=State.CRASH_LOOPING))
    assert w.flush() == 2
    assert CoverageEvent.objects.filter(cluster=again).count() == 2
    w.remove(rec)


@pytest.fixture
def viewer_client(db):
    user = get_user_model().objects.create_user("v", password="pw-123456")
    c = Client()
    c.force_login(user)
    return c


def test_history_pages(viewer_client, cluster):
    now = utcnow()
    _rows(
        cluster,
        {"at": now - timedelta(hours=2), "kind": "sync"},
        {"at": now - timedelta(minutes=90), "kind": "cell", "node": "node-<7>",
         "daemonset": DS, "state": "missing", "reason": "no pod <b>"},
        {"at": now - timedelta(minutes=60), "kind": "cell", "node": "node-<7>",
         "daemonset": DS, "state": "healthy", "previous": "missing"},
    )  # fmt: skip
    html = viewer_client.get("/clusters/prod/history/?hours=24").content.decode()
    assert DS in html and "30.0" in html
    page = viewer_client.get(f"/clusters/prod/daemonsets/{DS}/history/?hours=6")
    assert page.status_code == 200
    html = page.content.decode()
    assert "node-&lt;7&gt;" in html and "no pod &lt;b&gt;" in html and "30m 00s" in html
    assert "hist-seg s-missing" in html
    html = viewer_client.get("/clusters/prod/nodes/node-%3C7%3E/history/").content.decode()
    assert DS in html and "30.0 min" in html
    # Nonsense windows fall back or are clamped; unknown clusters are 404.
    assert viewer_client.get("/clusters/prod/history/?hours=nan").status_code == 200
    assert viewer_client.get("/clusters/prod/history/?hours=abc").status_code == 200
    assert viewer_client.get("/clusters/nope/history/").status_code == 404


def test_deleting_a_cluster_deletes_its_history(cluster):
    _rows(cluster, {"at": utcnow(), "kind": "sync"})
    cluster.delete()
    assert CoverageEvent.objects.count() == 0
