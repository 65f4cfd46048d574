"""Coverage history: what changed when, per cell, node and DaemonSet.

Recording. A `HistoryRecorder` listens to a collector (`ClusterCollector.listeners`): for
every delta it notes, in memory and under the collector's lock, each cell whose *state*
changed (reason-only changes are not history) and each node/DaemonSet arrival and
removal. One `HistoryWriter` thread per process takes what the recorders gathered every
DAEMONVIZ_HISTORY_FLUSH_SECONDS (sooner once DAEMONVIZ_HISTORY_BATCH rows are waiting) and
writes it with one bulk_create. Within a batch a cell keeps one pending row: a crash loop
flapping between starting and crash-looping ten times in five seconds becomes one row
(`changes=10`), or none when it ends where it began. So churn costs at most one row per
cell per batch, whatever its rate.

Baseline. When a recorder starts (collector start, restart, takeover) it waits until the
source is synced and its queue is drained, then writes a `sync` row plus one row per cell
that is not fine (healthy, outdated, not targeted). Cells without a row after a `sync`
were fine then. A `sync` row ends every episode before it, unless the same baseline
re-states the same state for that cell (then the episode goes on: a takeover, or the
re-baseline every 6 h that bounds how far back a timeline reads and keeps purging safe).

Reading (timeline.py) replays these rows into episodes.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import close_old_connections

from dashboard.coverage.matrix import Delta, Matrix
from dashboard.coverage.states import State
from dashboard.coverage.timefmt import utcnow
from dashboard.models import Cluster, CoverageEvent

if TYPE_CHECKING:  # a listener of collectors; the collect package never imports history
    from dashboard.collect.collector import ClusterCollector

log = logging.getLogger(__name__)

# A cell in one of these states is fine: no row at baseline, no gap.
FINE = frozenset({State.HEALTHY.value, State.OUTDATED.value, State.NOT_TARGETED.value})
# Targeted, and no daemon serving there: what gap-minutes count.
GAP = frozenset(
    {
        State.MISSING.value,
        State.FAILED.value,
        State.UNSCHEDULABLE.value,
        State.INIT_ERROR.value,
        State.IMAGE_ERROR.value,
        State.CONFIG_ERROR.value,
        State.CRASH_LOOPING.value,
        State.NOT_READY.value,
    }
)
REASON_MAX = 300
# Re-state the not-fine cells this often (a `sync` row plus one row per such cell).
REBASELINE_SECONDS = 6 * 3600.0


@dataclass
class _Pending:
    at: datetime
    state: str
    previous: str
    reason: str
    changes: int = 1


@dataclass
class Row:
    """A CoverageEvent to be, detached from the ORM (built under the collector's lock)."""

    at: datetime
    kind: str
    node: str = ""
    daemonset: str = ""
    state: str = ""
    previous: str = ""
    reason: str = ""
    changes: int = 1


class HistoryRecorder:
    """Collector listener; thread-safe hand-over to the writer through `take()`."""

    def __init__(self, slug: str, writer: HistoryWriter | None = None, batch: int | None = None):
        self.slug = slug
        self.writer = writer
        self.batch = batch or settings.DAEMONVIZ_HISTORY_BATCH
        self.baselined = False
        self._baselined_at = 0.0
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, str]] = {}  # node → DaemonSet → last recorded state
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._rows: list[Row] = []
        self.dropped_flaps = 0  # state changes coalesced away (for tests and curiosity)

    # ------------------------------------------------------------------ listener

    def __call__(self, collector: ClusterCollector, delta: Delta) -> None:
        if not self.baselined:
            if not collector.settled:
                return  # lists still arriving: a half-built matrix is no baseline
            self._baseline(collector.matrix)
            return
        self.record(delta)
        if time.monotonic() - self._baselined_at > REBASELINE_SECONDS:
            # Bounds how far back a timeline must read, and lets purging old rows never
            # lose a state that is still going on.
            self._baseline(collector.matrix, keep_pending=True)

    def _baseline(
        self, matrix: Matrix, now: datetime | None = None, keep_pending: bool = False
    ) -> None:
        if keep_pending:
            pending = self.take()  # written before the sync row (they are older)
        now = now or utcnow()
        with self._lock:
            if keep_pending:
                self._rows.extend(pending)
            self._baselined_at = time.monotonic()
            self._rows.append(Row(now, "sync"))
            known: dict[str, dict[str, str]] = {}
            for (node, ds_key), cell in matrix.cells.items():
                state = cell.state.value
                known.setdefault(node, {})[ds_key] = state
                if state not in FINE:
                    self._rows.append(
                        Row(now, "cell", node, ds_key, state, "", cell.reason[:REASON_MAX])
                    )
            self._known = known
            self._pending.clear()
            self.baselined = True
        self._maybe_wake()

    def record(self, delta: Delta, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self._lock:
            for name in delta.removed_nodes:
                self._rows.append(Row(now, "node-", node=name))
                self._known.pop(name, None)
                for k in [k for k in self._pending if k[0] == name]:
                    del self._pending[k]
            for name in delta.added_nodes:
                self._rows.append(Row(now, "node+", node=name))
            for ds_key in delta.removed_daemonsets:
                self._rows.append(Row(now, "ds-", daemonset=ds_key))
                for states in self._known.values():
                    states.pop(ds_key, None)
                for k in [k for k in self._pending if k[1] == ds_key]:
                    del self._pending[k]
            for ds_key in delta.added_daemonsets:
                self._rows.append(Row(now, "ds+", daemonset=ds_key))
            for (node, ds_key), cell in delta.cells.items():
                if cell is None:
                    continue  # its row or column left: the node-/ds- row ends it
                state = cell.state.value
                reason = cell.reason[:REASON_MAX]
                p = self._pending.get((node, ds_key))
                if p is not None:
                    if p.state != state:
                        p.at, p.state, p.changes = now, state, p.changes + 1
                    p.reason = reason
                    continue
                known = self._known.get(node, {}).get(ds_key)
                if known == state:
                    continue
                self._pending[(node, ds_key)] = _Pending(now, state, known or "", reason)
        self._maybe_wake()

    def _maybe_wake(self) -> None:
        if self.writer is not None and len(self._rows) + len(self._pending) >= self.batch:
            self.writer.wake()

    # ------------------------------------------------------------------ hand-over

    def take(self) -> list[Row]:
        """What to write now; coalesced rows that ended where they began are dropped."""
        with self._lock:
            rows, self._rows = self._rows, []
            for (node, ds_key), p in self._pending.items():
                states = self._known.setdefault(node, {})
                if states.get(ds_key, "") == p.state:
                    self.dropped_flaps += p.changes
                    continue
                rows.append(
                    Row(p.at, "cell", node, ds_key, p.state, p.previous, p.reason, p.changes)
                )
                states[ds_key] = p.state
            self._pending.clear()
        rows.sort(key=lambda r: r.at)
        return rows


class HistoryWriter:
    """One thread per process writing every recorder's rows in batches."""

    def __init__(self, flush_seconds: float | None = None):
        self.flush_seconds = flush_seconds or settings.DAEMONVIZ_HISTORY_FLUSH_SECONDS
        self._recorders: set[HistoryRecorder] = set()
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0

    def add(self, recorder: HistoryRecorder) -> None:
        with self._guard:
            self._recorders.add(recorder)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="history", daemon=True)
                self._thread.start()

    def remove(self, recorder: HistoryRecorder) -> None:
        """Stop listening to `recorder` and write what it still holds (blocking)."""
        with self._guard:
            self._recorders.discard(recorder)
        self._write(recorder)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("writing coverage history failed")

    def flush(self) -> int:
        with self._guard:
            recorders = list(self._recorders)
        return sum(self._write(r) for r in recorders)

    def _write(self, recorder: HistoryRecorder) -> int:
        rows = recorder.take()
        if not rows:
            return 0
        close_old_connections()
        try:
            # Looked up at every batch (one indexed query every few seconds), never cached:
            # a cluster deleted and registered again under the same slug has a new primary
            # key, and a cached one would lose the new cluster's batches to a foreign-key
            # error.
            cluster_id = (
                Cluster.objects.filter(slug=recorder.slug).values_list("pk", flat=True).first()
            )
            if cluster_id is None:
                return 0  # the cluster was deleted meanwhile: its history went with it
            CoverageEvent.objects.bulk_create(
                [CoverageEvent(cluster_id=cluster_id, **r.__dict__) for r in rows],
                batch_size=1000,
            )
        finally:
            close_old_connections()
        self.rows_written += len(rows)
        return len(rows)


_writer: HistoryWriter | None = None
_writer_guard = threading.Lock()


def rows_written() -> int:
    """Rows this process's writer has written so far (0 before it started)."""
    return _writer.rows_written if _writer is not None else 0


def writer() -> HistoryWriter:
    global _writer
    with _writer_guard:
        if _writer is None:
            _writer = HistoryWriter()
            atexit.register(_flush_at_exit)
        return _writer


def _flush_at_exit() -> None:
    try:
        if _writer is not None:
            _writer.flush()
    except Exception:
        log.warning("coverage history not written at exit", exc_info=True)


def attach(collector: ClusterCollector) -> HistoryRecorder | None:
    """Record `collector`'s history (when DAEMONVIZ_HISTORY is on); what is still pending
    when the collector stops is written then (its closer)."""
    if not settings.DAEMONVIZ_HISTORY:
        return None
    w = writer()
    recorder = HistoryRecorder(collector.cluster.slug, w)
    collector.listeners.append(recorder)
    collector.closers.append(lambda: detach(collector, recorder))
    w.add(recorder)
    return recorder


def detach(collector: ClusterCollector, recorder: HistoryRecorder | None) -> None:
    """Stop recording and write what is pending (blocking: call off the event loop)."""
    if recorder is None:
        return
    if recorder in collector.listeners:
        collector.listeners.remove(recorder)
    try:
        writer().remove(recorder)
    except Exception:
        log.exception("writing the last coverage history of %s failed", recorder.slug)
