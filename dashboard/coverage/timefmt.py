"""RFC 3339 timestamps as the API serves them, and short "3m ago" phrases."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=4096)
def parse_time(value: str | None) -> datetime | None:
    # Cached: the same few thousand timestamps recur across cells and refreshes.
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration(seconds: float) -> str:
    """kubectl-like short duration: 45s, 3m, 2h5m, 4d."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m}m" if m and h < 10 else f"{h}h"
    return f"{h // 24}d"


def ago(value: str | None, now: datetime) -> str:
    when = parse_time(value)
    if when is None:
        return ""
    return f"{duration((now - when).total_seconds())} ago"


def utcnow() -> datetime:
    return datetime.now(UTC)
