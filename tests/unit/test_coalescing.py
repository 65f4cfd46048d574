"""Adaptive coalescing (dashboard/collect/coalescing.py) on a clock the test moves by hand:
a change after a quiet spell goes out at once, a storm is held to the token bucket's
rate, and the last change of a burst always goes out."""

from __future__ import annotations

import threading

import pytest

from dashboard.collect.coalescing import Doorbell, Throttle


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def drains_for(throttle: Throttle, changes: list[float], until: float) -> list[float]:
    """The times the collector's loop drains when the source changes at `changes`: each
    change rings the doorbell; while a batch is pending the loop waits until
    `throttle.due()`, re-reading it after every wait (ClusterCollector._wait_for_news),
    then takes the bell and drains (ClusterCollector.run)."""
    clock = Clock(0.0)
    bell = Doorbell(clock=clock)
    pending = sorted(changes)
    drained: list[float] = []
    while clock.t <= until:
        nxt = pending[0] if pending else None
        if bell.pending:
            due = throttle.due(bell.first, bell.last, clock.t)
            if nxt is not None and nxt <= due:
                clock.t = max(clock.t, nxt)
                pending.pop(0)
                bell.ring()
                continue
            clock.t = max(clock.t, due)
            if throttle.due(bell.first, bell.last, clock.t) <= clock.t:
                bell.take()
                throttle.drained(clock.t)
                drained.append(clock.t)
        elif nxt is not None:
            clock.t = max(clock.t, nxt)
            pending.pop(0)
            bell.ring()
        else:
            break
    return drained


def test_first_change_after_a_quiet_spell_goes_out_after_the_quiet_window_only():
    throttle = Throttle(interval=0.25, burst=2, quiet=0.01, max_settle=0.05)
    assert drains_for(throttle, [100.0], until=200) == [pytest.approx(100.01)]
    # With no quiet window, at once.
    assert drains_for(Throttle(quiet=0.0), [100.0], until=200) == [100.0]


def test_sparse_changes_each_go_out_at_once_and_alone():
    changes = [10.0 + 0.5 * i for i in range(20)]  # two a second: slower than the bucket
    drained = drains_for(Throttle(interval=0.25, burst=2, quiet=0.01), changes, until=100)
    assert drained == [pytest.approx(c + 0.01) for c in changes]


def test_the_writes_of_one_burst_go_out_in_one_frame():
    # A controller's step: writes 1-3 ms apart, then silence.
    changes = [5.0, 5.002, 5.004, 5.007, 5.009]
    drained = drains_for(Throttle(interval=0.25, burst=2, quiet=0.01), changes, until=10)
    assert drained == [pytest.approx(5.019)]


def test_a_never_ending_trickle_is_not_held_back_beyond_max_settle():
    changes = [1.0 + 0.005 * i for i in range(400)]  # every 5 ms, never quiet for 10 ms
    drained = drains_for(
        Throttle(interval=0.25, burst=2, quiet=0.01, max_settle=0.05), changes, until=10
    )
    assert drained[0] == pytest.approx(1.05)


@pytest.mark.parametrize(("interval", "burst"), [(0.25, 1), (0.25, 2), (0.1, 4), (0.5, 3)])
def test_a_storm_is_held_to_the_bucket_rate_and_its_last_change_goes_out(interval, burst):
    start, seconds = 50.0, 10.0
    changes = [start + 0.001 * i for i in range(int(seconds * 1000))]  # 1,000 changes a second
    throttle = Throttle(interval=interval, burst=burst, quiet=0.01, max_settle=0.05)
    drained = drains_for(throttle, changes, until=start + seconds + 5)
    # At most the burst plus the refill, in any window (here: the whole storm)...
    for lo in range(len(drained)):
        for hi in range(lo, len(drained)):
            window = drained[hi] - drained[lo]
            assert hi - lo + 1 <= burst + window / interval + 1e-9
    # ... yet the storm keeps flowing at that rate (not starved until it ends) ...
    during = [t for t in drained if t <= changes[-1]]
    assert len(during) >= seconds / interval - 1
    # ... and the last change is drained, within one interval.
    assert drained[-1] >= changes[-1]
    assert drained[-1] - changes[-1] <= interval + throttle.quiet + 1e-9


def test_after_a_storm_the_bucket_refills_and_changes_go_out_at_once_again():
    throttle = Throttle(interval=0.25, burst=2, quiet=0.01)
    storm = [1.0 + 0.001 * i for i in range(2000)]
    drained = drains_for(throttle, [*storm, 30.0], until=40)
    assert drained[-1] == pytest.approx(30.01)


def test_doorbell_wakes_once_per_batch_and_remembers_its_span():
    clock = Clock(5.0)
    wakes: list[float] = []
    bell = Doorbell(lambda: wakes.append(clock.t), clock=clock)
    for t in (5.0, 5.1, 5.2):
        clock.t = t
        bell.ring()
    assert wakes == [5.0]
    assert (bell.pending, bell.first, bell.last) == (True, 5.0, 5.2)
    bell.take()
    assert not bell.pending
    clock.t = 6.0
    bell.ring()  # a change after the take: a new batch, a new wake-up
    assert wakes == [5.0, 6.0]
    assert (bell.first, bell.last) == (6.0, 6.0)


def test_doorbell_rung_from_many_threads_keeps_one_pending_batch():
    wakes: list[int] = []
    bell = Doorbell(lambda: wakes.append(1))
    threads = [
        threading.Thread(target=lambda: [bell.ring() for _ in range(2000)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bell.pending and wakes == [1]


def test_a_closing_event_loop_does_not_break_the_ringing_thread():
    def closed() -> None:
        raise RuntimeError("Event loop is closed")

    bell = Doorbell(closed)
    bell.ring()  # must not raise into a reflector or simulator thread
    assert bell.pending


@pytest.mark.parametrize(
    "kwargs", [{"interval": -1.0}, {"burst": 0}, {"quiet": -0.1}, {"max_settle": -1.0}]
)
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="coalescing"):
        Throttle(**kwargs)


def test_doorbell_span_is_read_under_its_lock():
    """The collector reads (first, last) while reflector threads ring: both from one
    moment, and `last` never before `first`."""
    clock = Clock(1.0)
    bell = Doorbell(clock=clock)
    bell.ring()
    clock.t = 2.0
    bell.ring()
    assert bell.span() == (1.0, 2.0)
    bell.take()
    clock.t = 3.0
    bell.ring()
    first, last = bell.span()
    assert first == last == 3.0
