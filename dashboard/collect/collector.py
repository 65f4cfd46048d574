"""Collectors: one per enabled cluster. Each runs its source (a real cluster through
`dashboard.kube`, or the in-process simulator), feeds the coverage matrix, coalesces
changes (coalescing.py: at once when they are sparse, at most ~4 frames a second while
they pour in) and hands each batch's delta to whoever built it: a payload builder
turns the delta into a message, a publisher sends it (dashboard/pipeline.py wires the
grid's and the wall's builders and the channel layer in). The collector renders nothing
itself. The matrix is the snapshot pages render from and late joiners re-sync against.

Threads: the kube source's reflectors run in threads of their own (the official client
blocks), and views render in Django's sync thread pool, while ticks run on the ASGI
event loop. So the matrix is only touched under `collector.lock`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync

from dashboard.clusters.config import ClusterConfig
from dashboard.coverage.events import Change, SourceEvent
from dashboard.coverage.matrix import Delta, Matrix
from dashboard.coverage.records import Record
from dashboard.coverage.timefmt import utcnow
from dashboard.kube.connection import ConnectionState
from dashboard.simulator import Simulator

from . import gcfreeze
from .coalescing import ADAPTIVE, FIXED, MODES, Doorbell, Throttle
from .registry import WatchCounts
from .scope import Scope
from .sources import SimulatedSource, Source, make_source
from .status import ConnectionStatus, Crash, RuntimeStatus, SkippedSummary

log = logging.getLogger(__name__)

# Re-classify clock-dependent cells (minReadySeconds, "node joined 20s ago") this often.
TIMED_REFRESH_SECONDS = 10.0
# An adaptive collector with no news still looks at its connection at least this often
# (and otherwise every `coalesce` seconds).
MIN_HEARTBEAT_SECONDS = 0.05
# A collector whose task fails restarts after base * 2**(failures - 1) seconds, at most cap.
CRASH_BACKOFF_BASE = 1.0
CRASH_BACKOFF_CAP = 60.0

# Turns one coalesced delta into the message to publish (called under the collector's
# lock, in the thread that computed the delta): the payload must be plain data.
PayloadBuilder = Callable[[ClusterConfig, Matrix, Delta], dict[str, Any]]
# Sends one payload (on the event loop).
Publisher = Callable[[dict[str, Any]], Awaitable[None]]
# Called with (collector, delta) under the lock after every non-empty delta.
Listener = Callable[["ClusterCollector", Delta], None]


_FAILING = (ConnectionState.STALE, ConnectionState.FAILED, ConnectionState.CRASHED)


def describe_crash(exc: BaseException) -> str:
    """The exception in words, on one line: its type and the first line of its text."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 200:
        text = text[:199] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ClusterCollector:
    """The collector of one cluster in this process (implements registry.Collector)."""

    remote = False
    heartbeat_age = None  # in this process: nothing to wait for
    fresh = True

    def __init__(
        self,
        cluster: ClusterConfig,
        *,
        coalesce: float = 0.25,
        coalescing: str = ADAPTIVE,
        burst: int = 2,
        quiet: float = 0.01,
        payload: PayloadBuilder | None = None,
        publish: Publisher | None = None,
    ):
        if coalescing not in MODES:
            raise ValueError(f"coalescing must be one of {', '.join(MODES)}, not {coalescing!r}")
        self.cluster = cluster
        self.lock = threading.RLock()
        self.matrix = Matrix()
        # fixed: drain every `coalesce` seconds (the old way, kept for comparison and as a
        # fallback). adaptive: drain when the source rings, throttled (coalescing.py); the
        # loop still wakes every `coalesce` seconds to look at the connection's state.
        # Read on every turn of the loop, so it may be switched while running.
        self.coalescing = coalescing
        self.coalesce = coalesce
        self.throttle = Throttle(
            interval=coalesce, burst=burst, quiet=quiet, max_settle=min(0.05, coalesce)
        )
        self.build_payload = payload
        self.publish = publish
        self.last_update: datetime | None = None
        self._source: Source | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_timed_refresh = 0.0
        self.scope = Scope(cluster)
        # Runtime status the admin shows (see runtime_status()).
        self.last_sync: datetime | None = None
        self.last_error = self.scope.error
        self.last_error_at: datetime | None = utcnow() if self.scope.error else None
        # Coverage history (dashboard/history/recorder.py) listens here.
        self.listeners: list[Listener] = []
        # Run once the collector has stopped (blocking, off the event loop): listeners
        # write what they still hold.
        self.closers: list[Callable[[], None]] = []
        self._frozen = False  # see dashboard/collect/gcfreeze.py
        # Set while the task is down or restarting after an unexpected exception; cleared by
        # the first synced tick after the restart.
        self.crash: Crash | None = None
        self.crash_backoff = (CRASH_BACKOFF_BASE, CRASH_BACKOFF_CAP)

    # ------------------------------------------------------------------ source

    @property
    def source(self) -> Source | None:
        return self._source

    def use_source(self, source: Source) -> None:
        """Take events from `source` instead of the one the configuration names (tests and
        benchmarks feed a collector by hand this way)."""
        self._source = source

    @property
    def simulator(self) -> Simulator | None:
        return self._source.simulator if isinstance(self._source, SimulatedSource) else None

    def start_source(self, run_clock: bool = True) -> None:
        source = make_source(self.cluster)
        self._source = source
        if isinstance(source, SimulatedSource):
            source.start(run_clock=run_clock)
        else:
            source.start()

    @property
    def status(self) -> ConnectionStatus:
        crash = self.crash
        if crash is not None:
            return ConnectionStatus(ConnectionState.CRASHED, crash.message, crash.at)
        if self._source is None:
            return ConnectionStatus(ConnectionState.CONNECTING, "not started")
        return self._source.status()

    @property
    def settled(self) -> bool:
        """Synced, and every event the source delivered is in the matrix (so the matrix
        is a whole cluster, not a half-applied list)."""
        return (
            self.status.state == ConnectionState.SYNCED
            and self._source is not None
            and not self._source.pending()
        )

    def watch_stats(self) -> Mapping[str, WatchCounts]:
        """The kube reflectors' counters by resource ({} for simulated clusters)."""
        return self._source.watch_stats() if self._source is not None else {}

    def skipped_summary(self) -> SkippedSummary:
        """What this collector leaves out right now: objects its source cannot decode and
        objects the matrix cannot classify."""
        items = [(s.kind, s.describe()) for s in self._source.skipped()] if self._source else []
        with self.lock:
            items += [(s.kind, s.describe()) for s in self.matrix.unclassifiable.values()]
        return SkippedSummary.of(items)

    def observe_status(self) -> ConnectionStatus:
        """Remember when the source was last in sync and its last error (called each tick)."""
        status = self.status
        if status.state == ConnectionState.SYNCED:
            self.last_sync = utcnow()
        elif status.state in _FAILING and status.message:
            if status.message != self.last_error or self.last_error_at is None:
                self.last_error_at = status.since or utcnow()
            self.last_error = status.message
        return status

    def runtime_status(self) -> RuntimeStatus:
        status = self.observe_status()
        with self.lock:
            matrix = self.matrix
            if self.scope.selector:
                # Pods of DaemonSets the selector hides stay in the matrix (see Scope).
                shown = {ds.uid for ds in matrix.daemonsets.values()}
                pods = sum(1 for p in matrix.pods.values() if p.owner_uid in shown)
            else:
                pods = len(matrix.pods)
            counts = (len(matrix.nodes), len(matrix.daemonsets), pods)
        return RuntimeStatus(
            state=status.state,
            message=status.message,
            since=status.since,
            last_sync=self.last_sync,
            last_update=self.last_update,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            nodes=counts[0],
            daemonsets=counts[1],
            pods=counts[2],
            skipped=self.skipped_summary(),
        )

    # ------------------------------------------------------------------ ticks

    def tick(self) -> Delta | None:
        """Apply what the source produced since the last tick; publish one delta."""
        delta, payload = self._compute()
        if payload is not None:
            self._publish_now(payload)
        self.observe_status()
        return delta

    def refresh_timed(self) -> None:
        payload = self._compute_timed()
        if payload is not None:
            self._publish_now(payload)

    def _compute(self) -> tuple[Delta | None, dict[str, Any] | None]:
        """Drain the source into the matrix and build the delta's payload. Safe to run in
        a worker thread: it takes the lock, and publishing is left to the caller."""
        if self._source is None:
            return None, None
        events = self.scope.filter(self._source.drain())
        if not events:
            return None, None
        with self.lock:
            base = self.matrix.revision
            delta = self._apply(events)
            if delta.empty:
                return delta, None
            self.last_update = utcnow()
            self._notify(delta)
            return delta, self._payload(delta, base)

    def _compute_timed(self) -> dict[str, Any] | None:
        with self.lock:
            base = self.matrix.revision
            delta = self.matrix.refresh_timed()
            if delta.empty:
                return None
            self._notify(delta)
            return self._payload(delta, base)

    def _notify(self, delta: Delta) -> None:
        for listener in self.listeners:
            try:
                listener(self, delta)
            except Exception:  # a listener must never stall the matrix
                log.exception("collector listener failed for cluster %s", self.cluster.slug)

    def _apply(self, events: list[SourceEvent]) -> Delta:
        total = Delta(self.matrix.revision)
        batch: list[tuple[str, Record]] = []
        replaces: dict[str, list[Record]] = {}
        for event in events:
            # Keep order between replaces and changes: flush whichever kind was pending.
            if isinstance(event, Change):
                if replaces:
                    total.merge(self.matrix.replace_all(replaces))
                    replaces = {}
                batch.append((event.type, event.record))
            else:
                if batch:
                    total.merge(self.matrix.apply_many(batch))
                    batch = []
                replaces[event.kind] = event.records
        if replaces:
            total.merge(self.matrix.replace_all(replaces))
        if batch:
            total.merge(self.matrix.apply_many(batch))
        return total

    def _payload(self, delta: Delta, base: int) -> dict[str, Any] | None:
        if self.build_payload is None:
            return None
        payload = self.build_payload(self.cluster, self.matrix, delta)
        payload.setdefault("revision", delta.revision)
        payload.setdefault("base", base)
        return payload

    async def _send(self, payload: dict[str, Any]) -> None:
        if self.publish is not None:
            await self.publish(payload)

    def _publish_now(self, payload: dict[str, Any]) -> None:
        """Publish from synchronous code (tests, management commands)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(self._send)(payload)
        else:
            loop.create_task(self._send(payload))

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Drain and publish forever. Decoding, classifying and rendering run in a worker
        thread, so a large initial sync (seconds of CPU) never stalls the event loop that
        serves pages and sockets; publishing happens back on the loop, where the channel
        layer lives."""
        await asyncio.to_thread(self.start_source)
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(woken.set)

        bell = Doorbell(wake)
        set_doorbell = getattr(self._source, "set_doorbell", None)
        if set_doorbell is not None:
            set_doorbell(bell)
        bell.ring()  # whatever the source holds already (its initial lists)
        try:
            next_tick = time.monotonic()
            while True:
                if self.coalescing == FIXED or set_doorbell is None:
                    # A fixed cadence: a slow tick shortens the next wait instead of adding to it.
                    next_tick = max(next_tick + self.coalesce, time.monotonic())
                    await asyncio.sleep(next_tick - time.monotonic())
                    drain = True
                else:
                    drain = await self._wait_for_news(bell, woken)
                    next_tick = time.monotonic()
                if drain:
                    bell.take()  # before draining: what arrives meanwhile rings again
                    self.throttle.drained(time.monotonic())
                    _, payload = await asyncio.to_thread(self._compute)
                    if payload is not None:
                        await self._send(payload)
                await self._housekeeping(loop)
        finally:
            if set_doorbell is not None:
                set_doorbell(None)
            await self._stop_source_off_loop(loop)

    async def _stop_source_off_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stopping a kube source joins its reflector threads (up to ~2 s): off the loop,
        so disabling a cluster in the admin does not stall every page and socket."""
        try:
            stopping = loop.run_in_executor(None, self.stop_source)
        except RuntimeError:  # the loop's executor is shutting down
            self.stop_source()
            return
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            # Cancelled while the source stops (a tick had just crashed, and `stop()` came
            # meanwhile): let that one stop finish, then go on being cancelled. Stopping a
            # second time here, on the loop, raced the first over the same threads.
            await asyncio.wait([stopping])
            raise

    async def _wait_for_news(self, bell: Doorbell, woken: asyncio.Event) -> bool:
        """Wait until the pending batch may be drained (True), or for one heartbeat of
        `coalesce` seconds without news (False: only the housekeeping is due)."""
        # Never a busy loop, whatever `coalesce` is set to.
        deadline = time.monotonic() + max(self.coalesce, MIN_HEARTBEAT_SECONDS)
        while not bell.pending:
            woken.clear()  # a wake-up left over from a batch already taken
            if bell.pending:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await woken.wait()
            except TimeoutError:
                return False
        while True:
            now = time.monotonic()
            due = self.throttle.due(*bell.span(), now)
            if due <= now:
                return True
            await asyncio.sleep(due - now)

    async def _housekeeping(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.crash is not None and self._source_synced():
            log.info("collector of %s recovered after its crash", self.cluster.slug)
            self.crash = None
        if self.observe_status().state == ConnectionState.SYNCED and not self._frozen:
            # The synced matrix (and a simulator's cluster) lives as long as the
            # process: keep it out of the garbage collector's full passes.
            self._frozen = True
            await asyncio.to_thread(
                gcfreeze.freeze_long_lived, f"the first sync of {self.cluster.slug}"
            )
        if loop.time() - self._last_timed_refresh > TIMED_REFRESH_SECONDS:
            self._last_timed_refresh = loop.time()
            payload = await asyncio.to_thread(self._compute_timed)
            if payload is not None:
                await self._send(payload)

    def _source_synced(self) -> bool:
        return self._source is not None and self._source.status().state == ConnectionState.SYNCED

    async def supervise(self) -> None:
        """`run()`, restarted after an unexpected exception with exponential back-off, on a
        fresh matrix and source. Whatever one tick trips over (a bug, an object nobody
        foresaw), the cluster comes back by itself, and meanwhile its state is `crashed`,
        with the cause, wherever states are shown."""
        failures = 0
        while True:
            try:
                await self.run()
                return
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # `stop()` cancelled us and the unwinding tripped over something:
                    # being stopped wins over being restarted (a swallowed cancel would
                    # keep this loop, and `stop()` waiting on it, going forever).
                    raise asyncio.CancelledError from exc
                failures = failures + 1 if self.crash is not None else 1
                base, cap = self.crash_backoff
                delay = min(cap, base * 2 ** min(failures - 1, 16))
                self.crash = Crash(describe_crash(exc), utcnow(), failures, delay)
                self.observe_status()
                log.error(
                    "collector of %s crashed (%s); restarting in %g s",
                    self.cluster.slug,
                    self.crash.cause,
                    delay,
                    exc_info=exc,
                )
            await asyncio.sleep(delay)
            # The failed tick may have left the matrix half-applied: start from scratch. A
            # new matrix has a new epoch, so every page re-fetches its grid.
            with self.lock:
                self.matrix = Matrix()
                self._last_timed_refresh = 0.0

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(
            self.supervise(), name=f"collector:{self.cluster.slug}"
        )
        return self._task

    def stop_source(self) -> None:
        if self._source is not None:
            self._source.stop()

    async def stop(self) -> None:
        """Cancel the ticks, stop the source, then run the closers (off the loop). Never
        raises: it runs inside the reconcile loops (embedded.py, supervisor.py), where one
        collector's failure must not keep the others from being started or stopped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("collector of %s failed while stopping", self.cluster.slug)
        try:
            await asyncio.to_thread(self.close)
        except Exception:
            log.exception("closing collector of %s failed", self.cluster.slug)

    def close(self) -> None:
        closers, self.closers = self.closers, []
        for closer in closers:
            try:
                closer()
            except Exception:
                log.exception("closing collector of %s failed", self.cluster.slug)
