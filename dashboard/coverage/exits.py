"""Identical exits across a DaemonSet's nodes: "same exit (137, OOMKilled) on 12 nodes".

A crash loop on many nodes is usually one problem (an OOM limit, a bad flag in the new
revision); listing it once per node hides that. A failing cell's last termination is
keyed by container, reason, exit code and signal, and the matrix counts the keys of every
column as cells change (`Matrix.ds_exits`), so a column head can name its commonest exit
without walking the column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .cells import Cell
from .states import State

# The failing states a container's exit explains (not a not-ready pod that restarted
# once last week: its problem is the probe).
EXIT_STATES = frozenset({State.CRASH_LOOPING, State.FAILED, State.INIT_ERROR})


class ExitKey(NamedTuple):
    container: str
    reason: str
    exit_code: int
    signal: int

    @property
    def words(self) -> str:
        """`exit (137, OOMKilled)`, or `exit (signal 9, Error)` for a signalled one."""
        code = f"signal {self.signal}" if self.signal else str(self.exit_code)
        return f"exit ({code}, {self.reason})" if self.reason else f"exit ({code})"


class ExitGroup(NamedTuple):
    key: ExitKey
    nodes: tuple[str, ...]

    @property
    def words(self) -> str:
        n = len(self.nodes)
        return f"same {self.key.words} on {n} node{'s' if n != 1 else ''}"


def exit_key(cell: Cell) -> ExitKey | None:
    t = cell.last_termination
    if t is None or cell.state not in EXIT_STATES:
        return None
    return ExitKey(t.container, t.reason, t.exit_code, t.signal)


def exit_groups(cells: Iterable[tuple[str, Cell]]) -> list[ExitGroup]:
    """The exits of (node, cell) pairs, the commonest first; nodes in name order."""
    by_key: dict[ExitKey, list[str]] = {}
    for node, cell in cells:
        key = exit_key(cell)
        if key is not None:
            by_key.setdefault(key, []).append(node)
    groups = [ExitGroup(k, tuple(sorted(v))) for k, v in by_key.items()]
    groups.sort(key=lambda g: (-len(g.nodes), g.key))
    return groups


def exits_json(groups: Iterable[ExitGroup]) -> list[dict]:
    """The coverage JSON's `exits` of a DaemonSet (README)."""
    return [
        {
            "container": g.key.container,
            "reason": g.key.reason,
            "exit_code": g.key.exit_code,
            "signal": g.key.signal,
            "count": len(g.nodes),
            "nodes": list(g.nodes),
        }
        for g in groups
    ]
