"""What a source hands the matrix: the one event currency from a cluster to the engine.

The kube reflectors (dashboard/kube/reflector.py) and the simulated source both speak it,
so the collector applies every source's output the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Record


@dataclass(frozen=True, slots=True)
class Replace:
    """The complete current state of one kind (after every full list, the first too)."""

    kind: str  # record kind: Node | DaemonSet | Pod | ControllerRevision
    records: list[Record]
    resource_version: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    type: str  # ADDED | MODIFIED | DELETED
    record: Record


SourceEvent = Replace | Change
