"""When a collector drains its source and publishes: adaptive coalescing.

A fixed tick (drain every 250 ms) delays every change by half a tick on average and a
whole tick at worst, even on a quiet cluster where nothing needs batching. Here the
source rings a `Doorbell` whenever it has something new, and a `Throttle` decides when
to drain:

* after a quiet spell, as soon as the source has been silent for `quiet` seconds (so
  the writes of one burst — a controller's step, one watch chunk — land in one frame),
  but never more than `max_settle` after the first change;
* while changes keep coming faster than that, at most `burst` drains back to back and
  then one every `interval` seconds (a token bucket): a rollout storm still goes out in
  few frames, and no page gets more than ~1/interval frames a second per cluster.

Every drain takes a token, whether or not its delta turns out empty, so a source that
rings a lot about nothing (heartbeats) costs at most as many drains as the fixed tick.
Nothing is ever lost: a ring leaves the doorbell pending until the collector takes it,
and it takes it *before* draining, so a change that arrives during a drain rings again.

Both classes read time from a clock they are given (tests step it by hand); the
collector uses `time.monotonic`, the same clock as the event loop's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

FIXED = "fixed"
ADAPTIVE = "adaptive"
MODES = (ADAPTIVE, FIXED)


class Doorbell:
    """Rung from any thread (reflector threads, the simulator's, the event loop) when the
    source has news; remembers when the first and the latest change since the collector
    last took it arrived, and calls `notify` once per pending batch (cheap: rung for every
    event of a 1,000-pod rollout, it wakes the event loop once)."""

    def __init__(self, notify: Callable[[], None] = lambda: None, clock: Clock = time.monotonic):
        self._notify = notify
        self._clock = clock
        self._lock = threading.Lock()
        self.pending = False
        self.first = 0.0  # first change of the pending batch
        self.last = 0.0  # latest change of the pending batch

    def ring(self) -> None:
        with self._lock:  # the clock read inside: `last` never goes back between threads
            now = self._clock()
            self.last = now
            if self.pending:
                return
            self.pending = True
            self.first = now
        # RuntimeError: the event loop is closing, nobody is left to wake.
        with contextlib.suppress(RuntimeError):
            self._notify()

    def span(self) -> tuple[float, float]:
        """(first, last) of the pending batch, read together: a ring on another thread
        between two plain reads could pair a new batch's `first` with an old `last`."""
        with self._lock:
            return self.first, self.last

    def take(self) -> None:
        """The collector is about to drain: later rings start a new batch."""
        with self._lock:
            self.pending = False


@dataclass
class Throttle:
    """Token bucket plus settle window (see the module docstring). Pure: call `due()` to
    learn when the pending batch may be drained and `drained()` when it was."""

    interval: float = 0.25  # seconds per token: the sustained drain rate is 1/interval
    burst: int = 2  # tokens the bucket holds: drains allowed back to back after a lull
    quiet: float = 0.01  # drain once the source has been silent this long ...
    max_settle: float = 0.05  # ... or this long after the batch's first change
    _tokens: float = field(default=0.0, init=False)
    _stamp: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.interval < 0 or self.quiet < 0 or self.max_settle < 0:
            raise ValueError("coalescing times must not be negative")
        if self.burst < 1:
            raise ValueError("the coalescing burst must be at least 1")
        self._tokens = float(self.burst)

    def tokens(self, now: float) -> float:
        if self._stamp is None or self.interval == 0:
            return float(self.burst)
        return min(float(self.burst), self._tokens + (now - self._stamp) / self.interval)

    def due(self, first: float, last: float, now: float) -> float:
        """When a batch whose changes arrived from `first` to `last` may be drained (at the
        earliest; `now` or before means at once)."""
        settled = min(last + self.quiet, first + self.max_settle)
        missing = 1.0 - self.tokens(now)
        token_at = now + missing * self.interval if missing > 0 else now
        return max(settled, token_at)

    def drained(self, now: float) -> None:
        self._tokens = self.tokens(now) - 1.0
        self._stamp = now
