"""Reading coverage history: `timeline()` replays the rows of one DaemonSet or node into
episodes (node X, state missing, from t1 to t2); `gap_minutes()` sums the episodes in gap
states over a window; `purge()` (manage.py purgehistory) deletes rows older than
DAEMONVIZ_HISTORY_DAYS. Rows are written by recorder.py, whose docstring says what a row
and a baseline mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from dashboard.coverage.states import State
from dashboard.coverage.timefmt import utcnow
from dashboard.models import Cluster, CoverageEvent

from .recorder import FINE, GAP


@dataclass
class Episode:
    node: str
    daemonset: str
    state: str
    start: datetime
    end: datetime | None  # None: still going on
    reason: str = ""
    changes: int = 1

    @property
    def gap(self) -> bool:
        return self.state in GAP

    def duration(self, now: datetime) -> timedelta:
        return (self.end or now) - self.start

    def clipped_seconds(self, start: datetime, end: datetime) -> float:
        a, b = max(self.start, start), min(self.end or end, end)
        return max(0.0, (b - a).total_seconds())

    @property
    def label(self) -> str:
        try:
            return State(self.state).label
        except ValueError:
            return self.state

    @property
    def symbol(self) -> str:
        try:
            return State(self.state).symbol
        except ValueError:
            return "?"


@dataclass
class Timeline:
    start: datetime
    end: datetime
    episodes: list[Episode] = field(default_factory=list)  # not-fine states, newest first
    # node/DaemonSet arrivals, removals, syncs
    events: list[CoverageEvent] = field(default_factory=list)
    gap_seconds: dict[str, float] = field(default_factory=dict)  # by DaemonSet or node
    # From when on the window was recorded (a collector's first baseline); before it there
    # is no data, which is not the same as "healthy". None: nothing recorded in the window.
    recorded_from: datetime | None = None

    @property
    def no_data_seconds(self) -> float:
        """The part of the window before recording started."""
        until = self.end if self.recorded_from is None else self.recorded_from
        return max(0.0, (until - self.start).total_seconds())

    @property
    def gap_minutes(self) -> dict[str, float]:
        return {k: round(v / 60.0, 1) for k, v in self.gap_seconds.items()}


def _rows_for(
    cluster: Cluster, since: datetime, *, node: str = "", daemonset: str = "", whole: bool = False
) -> list[CoverageEvent]:
    """Rows needed to know the states from `since` on: from the last `sync` at or before it
    (states are only known from a sync on), for the cell subset, plus what ends episodes."""
    qs = CoverageEvent.objects.filter(cluster=cluster)
    last_sync = qs.filter(kind="sync", at__lte=since).order_by("-at", "-id").first()
    begin = last_sync.at if last_sync is not None else since
    if whole:
        return list(qs.filter(at__gte=begin).order_by("at", "id"))
    subset = Q(kind="sync")
    if daemonset:
        subset |= Q(kind="cell", daemonset=daemonset) | Q(
            kind__in=["ds-", "ds+"], daemonset=daemonset
        )
        subset |= Q(kind="node-")
    if node:
        subset |= Q(kind="cell", node=node) | Q(kind__in=["node-", "node+"], node=node)
        subset |= Q(kind="ds-")
    return list(qs.filter(subset, at__gte=begin).order_by("at", "id"))


def timeline(
    cluster: Cluster,
    *,
    daemonset: str = "",
    node: str = "",
    hours: float = 24.0,
    now: datetime | None = None,
    whole: bool = False,
) -> Timeline:
    """Episodes of not-fine states of one DaemonSet's cells (or one node's, or with `whole`
    every cell's) overlapping the last `hours`, and gap seconds per node (DaemonSet) or per
    DaemonSet (node, whole cluster)."""
    if whole == bool(daemonset or node) or (daemonset and node):
        raise ValueError("timeline of exactly one DaemonSet, one node, or the whole cluster")
    now = now or utcnow()
    start = now - timedelta(hours=hours)
    rows = _rows_for(cluster, start, node=node, daemonset=daemonset, whole=whole)
    all_: list[Episode] = []
    open_: dict[tuple[str, str], Episode] = {}
    carried: dict[tuple[str, str], Episode] = {}  # ended by a sync, maybe re-opened by it
    carried_at: datetime | None = None
    events: list[CoverageEvent] = []

    def close(k: tuple[str, str], at: datetime) -> None:
        ep = open_.pop(k, None)
        if ep is not None:
            ep.end = at

    first_sync = next((r.at for r in rows if r.kind == "sync"), None)
    recorded_from = None if first_sync is None else max(first_sync, start)
    for r in rows:
        if carried and r.at != carried_at:
            carried.clear()
        if r.kind == "sync":
            # A periodic re-baseline (or a takeover) re-states what is still not fine at the
            # same instant: those rows continue the episode instead of starting a new one.
            carried = dict(open_)
            carried_at = r.at
            for k in list(open_):
                close(k, r.at)
            if r.at >= start:
                events.append(r)
        elif r.kind == "node-":
            for k in [k for k in open_ if k[0] == r.node]:
                close(k, r.at)
            if node and r.at >= start:
                events.append(r)
        elif r.kind == "ds-":
            for k in [k for k in open_ if k[1] == r.daemonset]:
                close(k, r.at)
            if daemonset and r.at >= start:
                events.append(r)
        elif r.kind in ("node+", "ds+"):
            if r.at >= start:
                events.append(r)
        elif r.kind == "cell":
            k = (r.node, r.daemonset)
            close(k, r.at)
            before = carried.pop(k, None)
            if before is not None and before.state == r.state and not r.previous:
                before.end = None
                open_[k] = before
            elif r.state not in FINE:
                open_[k] = ep = Episode(
                    r.node, r.daemonset, r.state, r.at, None, r.reason, r.changes
                )
                all_.append(ep)
    done = all_
    episodes = [e for e in done if (e.end is None or e.end > start)]
    episodes.sort(key=lambda e: (e.start, e.node, e.daemonset), reverse=True)
    gaps: dict[str, float] = {}
    for e in episodes:
        if e.gap:
            lane = e.node if daemonset else e.daemonset
            gaps[lane] = gaps.get(lane, 0.0) + e.clipped_seconds(start, now)
    events.sort(key=lambda r: (r.at, r.id), reverse=True)
    by_gap = dict(sorted(gaps.items(), key=lambda kv: -kv[1]))
    return Timeline(start, now, episodes, events, by_gap, recorded_from)


def recorded_from(
    cluster: Cluster, hours: float = 24.0, now: datetime | None = None
) -> datetime | None:
    """When recording of the last `hours` began (the window's start if a baseline predates
    it); None when no collector recorded anything in the window."""
    now = now or utcnow()
    start = now - timedelta(hours=hours)
    syncs = CoverageEvent.objects.filter(cluster=cluster, kind="sync")
    if syncs.filter(at__lte=start).exists():
        return start
    first = syncs.filter(at__gt=start, at__lte=now).order_by("at").first()
    return None if first is None else first.at


def daemonset_timelines(
    cluster: Cluster, hours: float = 24.0, now: datetime | None = None
) -> dict[str, Timeline]:
    """The timeline of every DaemonSet with recorded cell changes, over the last `hours`."""
    now = now or utcnow()
    keys = (
        CoverageEvent.objects.filter(cluster=cluster, kind="cell")
        .exclude(daemonset="")
        .values_list("daemonset", flat=True)
        .distinct()
    )
    return {k: timeline(cluster, daemonset=k, hours=hours, now=now) for k in sorted(set(keys))}


def gap_minutes(
    cluster: Cluster, hours: float = 24.0, now: datetime | None = None
) -> dict[str, float]:
    """Gap-minutes per DaemonSet over the last `hours`: the sum, over its nodes, of the time
    each node's cell spent in a gap state (missing, failing, not ready)."""
    return {
        k: round(sum(t.gap_seconds.values()) / 60.0, 1)
        for k, t in daemonset_timelines(cluster, hours, now).items()
    }


def purge(days: int | None = None, now: datetime | None = None) -> int:
    """Delete history older than `days` (DAEMONVIZ_HISTORY_DAYS); returns the rows deleted."""
    days = settings.DAEMONVIZ_HISTORY_DAYS if days is None else days
    cutoff = (now or utcnow()) - timedelta(days=days)
    deleted, _ = CoverageEvent.objects.filter(at__lt=cutoff).delete()
    return deleted
