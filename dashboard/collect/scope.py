"""What of a cluster the dashboard shows: namespaces included/excluded and the DaemonSet
label selector, applied to a source's events before they reach the matrix."""

from __future__ import annotations

from dashboard.clusters.config import ClusterConfig
from dashboard.coverage.event_records import EventRecord
from dashboard.coverage.events import Change, Replace, SourceEvent
from dashboard.coverage.matrix import DELETED
from dashboard.coverage.priority import PriorityClass
from dashboard.coverage.records import DaemonSet, Node, Record
from dashboard.coverage.selectors import SelectorError, parse_selector


class Scope:
    """Applied to records before they reach the matrix, for every source alike: a DaemonSet
    outside the scope is treated as absent (an event for one that left the scope — its
    labels changed — becomes a deletion), and pods and revisions of excluded namespaces are
    dropped (a DaemonSet only owns objects of its own namespace). Pods of DaemonSets that
    the selector excludes are kept: they reach no cell, and dropping them would lose them
    if the DaemonSet's labels later bring it back into scope.
    """

    def __init__(self, config: ClusterConfig):
        self.include = frozenset(config.namespaces_include)
        self.exclude = frozenset(config.namespaces_exclude)
        self.error = ""
        try:
            self.selector = parse_selector(config.daemonset_selector)
        except SelectorError as exc:
            # Forms validate it; an invalid one in the database shows nothing, and says why.
            self.selector, self.error = (), f"DaemonSet label selector: {exc}"
        self.active = bool(self.include or self.exclude or self.selector or self.error)

    def namespace_shown(self, namespace: str) -> bool:
        if self.include and namespace not in self.include:
            return False
        return namespace not in self.exclude

    def shows(self, record: Record) -> bool:
        if isinstance(record, Node | PriorityClass):
            return True  # cluster-scoped
        if isinstance(record, EventRecord) and record.object_kind == "Node":
            return True  # a node's events live in namespace "default", whatever is shown
        if not self.namespace_shown(record.namespace):
            return False
        if isinstance(record, DaemonSet):
            return not self.error and all(r.matches(record.labels) for r in self.selector)
        return True

    def filter(self, events: list[SourceEvent]) -> list[SourceEvent]:
        if not self.active:
            return events
        out: list[SourceEvent] = []
        for event in events:
            if isinstance(event, Replace):
                shown = [r for r in event.records if self.shows(r)]
                out.append(Replace(event.kind, shown, event.resource_version))
            elif self.shows(event.record):
                out.append(event)
            elif isinstance(event.record, DaemonSet):
                out.append(Change(DELETED, event.record))  # a no-op if it was never shown
        return out
