"""Server-rendered history charts: the step series of nodes without a serving daemon, and
"no data" before recording started (never drawn as zero)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.history.charts import chart, unserved_series
from dashboard.history.timeline import Episode, Timeline

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _tl(recorded_from=T0, episodes=()):
    return Timeline(
        start=T0,
        end=T0 + timedelta(hours=1),
        episodes=list(episodes),
        gap_seconds={"n1": 600.0},
        recorded_from=recorded_from,
    )


def test_series_counts_overlapping_gap_episodes():
    eps = [
        Episode("n1", "ns/ds", "missing", T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)),
        Episode("n2", "ns/ds", "crash-looping", T0 + timedelta(minutes=15), None),
        Episode("n3", "ns/ds", "starting", T0 + timedelta(minutes=5), None),  # not a gap
    ]
    series = unserved_series(_tl(episodes=eps))
    assert series == [
        (T0, 0),
        (T0 + timedelta(minutes=10), 1),
        (T0 + timedelta(minutes=15), 2),
        (T0 + timedelta(minutes=20), 1),
    ]
    c = chart("ns/ds", _tl(episodes=eps), longest_gap=10.0)
    assert c.now == 1 and c.peak == 2 and c.no_data_width == 0.0


def test_time_before_recording_is_no_data_not_zero():
    started = T0 + timedelta(minutes=30)
    c = chart("ns/ds", _tl(recorded_from=started), longest_gap=10.0)
    assert c.no_data_width == 300.0  # half of the 600-unit panel is hatched
    assert c.path.startswith("M300.0,")  # the line starts when recording did
    never = chart("ns/ds", _tl(recorded_from=None), longest_gap=10.0)
    assert never.no_data_width == 600.0 and never.path.startswith("M600.0,")
