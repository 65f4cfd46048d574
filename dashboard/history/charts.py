"""Pictures of coverage history, drawn on the server as SVG (no script, no library, prints
and scales like text).

`unserved_series` turns a DaemonSet's timeline into a step function: how many of its
targeted nodes were without a serving daemon (missing, failing, not ready: the gap states)
at each moment of the window. That is exactly what the history records; coverage in percent
would need the number of targeted nodes at each moment, which history does not keep.

Charts follow the usual Grafana / kube-prometheus panel conventions: time runs left to right
over the chosen window with the clock at the axis, the y axis starts at zero, a thin line
with a light fill, muted grid lines, the panel title with its current and maximum values,
and "no data" shown as a hatched band rather than as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .timeline import Timeline

WIDTH, HEIGHT = 600.0, 64.0  # viewBox units; the SVG scales to its box
PAD_TOP = 6.0


@dataclass
class Chart:
    name: str
    path: str  # the step line
    area: str  # the same, closed to the baseline
    no_data_width: float  # viewBox units from the left edge that were not recorded
    now: int
    peak: int
    ticks: list[tuple[float, str]]  # x and clock label
    y_max: int
    gap_minutes: float
    bar: float  # gap-minutes bar length in percent of the longest

    @property
    def namespace(self) -> str:
        return self.name.partition("/")[0]

    @property
    def short_name(self) -> str:
        return self.name.partition("/")[2]


def unserved_series(tl: Timeline) -> list[tuple[datetime, int]]:
    """(time, nodes without a serving daemon from then on), from the window's start."""
    edges: list[tuple[datetime, int]] = []
    for e in tl.episodes:
        if not e.gap:
            continue
        a = max(e.start, tl.start, tl.recorded_from or tl.start)
        b = min(e.end or tl.end, tl.end)
        if b <= a:
            continue
        edges.append((a, 1))
        if e.end is not None and e.end < tl.end:
            edges.append((b, -1))
    edges.sort(key=lambda x: (x[0], x[1]))  # ends before starts at the same instant
    # Drawn from when recording started: before it the level is unknown, not zero.
    begin = tl.end if tl.recorded_from is None else max(tl.start, tl.recorded_from)
    points = [(begin, 0)]
    level = 0
    for at, step in edges:
        level += step
        if points[-1][0] == at:
            points[-1] = (at, level)
        else:
            points.append((at, level))
    return points


def ticks(start: datetime, end: datetime) -> list[tuple[float, str]]:
    """Clock labels at round times, about five over the window."""
    span = (end - start).total_seconds() or 1.0
    steps = [300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400]
    step = next((s for s in steps if span / s <= 6), steps[-1])
    first = datetime.fromtimestamp((start.timestamp() // step + 1) * step, start.tzinfo)
    fmt = "%H:%M" if span <= 86400 else "%m-%d %H:%M"
    out = []
    t = first
    while t < end:
        out.append((round(WIDTH * (t - start).total_seconds() / span, 2), t.strftime(fmt)))
        t += timedelta(seconds=step)
    return out


def chart(name: str, tl: Timeline, longest_gap: float) -> Chart:
    points = unserved_series(tl)
    span = (tl.end - tl.start).total_seconds() or 1.0
    peak = max(level for _, level in points)
    y_max = max(1, peak)

    def x(t: datetime) -> float:
        return round(WIDTH * (t - tl.start).total_seconds() / span, 2)

    def y(level: int) -> float:
        return round(HEIGHT - (HEIGHT - PAD_TOP) * level / y_max, 2)

    cmds = [f"M{x(points[0][0])},{y(points[0][1])}"]
    for at, level in points[1:]:
        cmds.append(f"H{x(at)}V{y(level)}")
    cmds.append(f"H{WIDTH}")
    path = "".join(cmds)
    until = tl.end if tl.recorded_from is None else tl.recorded_from
    gap = round(sum(tl.gap_seconds.values()) / 60.0, 1)
    return Chart(
        name=name,
        path=path,
        area=f"{path}V{HEIGHT}H{x(points[0][0])}Z",
        no_data_width=max(0.0, x(until)) if until > tl.start else 0.0,
        now=points[-1][1],
        peak=peak,
        ticks=ticks(tl.start, tl.end),
        y_max=y_max,
        gap_minutes=gap,
        bar=round(100.0 * gap / longest_gap, 1) if longest_gap else 0.0,
    )


SPARK_HOURS = 6.0


def sparkline(tl: Timeline) -> dict[str, object]:
    """A cluster's small chart for the wall: cells without a serving daemon over the window
    (the inverse of coverage; history keeps states, not how many nodes were targeted, so a
    percentage over time is not known), as JSON the wall's script puts into an inline SVG of
    the same viewBox. Same conventions as the history charts: y from zero, a thin step line
    with a light fill, "no data" before recording began as a hatched band."""
    c = chart("cluster", tl, 0.0)
    return {
        "path": c.path,
        "area": c.area,
        "no_data": c.no_data_width,
        "now": c.now,
        "peak": c.peak,
        "hours": round((tl.end - tl.start).total_seconds() / 3600.0, 2),
        "recorded": tl.recorded_from is not None,
        "width": WIDTH,
        "height": HEIGHT,
    }
