"""The live node × DaemonSet matrix.

It applies ADDED / MODIFIED / DELETED events of the four kinds and returns exactly the
cells that changed: a pod event touches at most its cell, a node event its row, a
DaemonSet event its column, a ControllerRevision event its DaemonSet's column. Every
change bumps a monotonic revision, which clients use to detect gaps.

Work is marked dirty first and recomputed once per call, so a full relist of 150,000
pods classifies each cell once, not once per pod.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from msgspec import Struct, field
from msgspec.structs import replace as _replace

from .access import DEFAULT_CLUSTER_DOMAIN, AccessIndex, CellAccess, holder_of
from .capacity import NodeLoad, capacity_text, short_of, shortages
from .cells import Cell, NodeHealth, Pending, classify, node_health
from .eligibility import Eligibility, evaluate
from .event_records import EventRecord
from .exits import ExitGroup, ExitKey, exit_groups, exit_key
from .preemption import advice, port_advice
from .priority import PriorityClass
from .records import DaemonSet, EndpointSlice, Node, Pod, Record, Revision, Service, Skipped, decode
from .states import State
from .timefmt import utcnow
from .why import (
    ALL_EVENT_STREAMS,
    NODE_EVENT_STREAMS,
    EventBook,
    ObjectRef,
    explain,
    node_stream_of,
    relevant,
    stream_of,
)

log = logging.getLogger(__name__)
# The scheduler's message on a victim (pkg/scheduler/framework/preemption): the preemptor's
# UID in current releases, "namespace/name" in older ones.
PREEMPTED_BY = re.compile(r"^Preempted by (?:pod )?(\S+) on node (\S+?)(?: \(|\.?$)")

CellKey = tuple[str, str]  # (node name, DaemonSet "namespace/name")
ObjectKey = tuple[str, str]  # (kind, "namespace/name" or a node's name)

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
# Plain objects to tell a DaemonSet's fault from a node's when a cell cannot be computed.
_PROBE_NODE = decode("Node", {"metadata": {"name": "daemonviz-probe"}})
_PROBE_POD = decode(
    "Pod",
    {
        "metadata": {"name": "daemonviz-probe", "creationTimestamp": "2000-01-01T00:00:00Z"},
        "spec": {"nodeName": "daemonviz-probe", "containers": [{"name": "c", "image": "c"}]},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2000-01-01T00:00:00Z"}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    },
)
_KIND_OF = {Node: "Node", DaemonSet: "DaemonSet", Pod: "Pod", Revision: "ControllerRevision"}


_MEMBERSHIP_LISTS = (
    "added_nodes",
    "removed_nodes",
    "changed_nodes",
    "added_daemonsets",
    "removed_daemonsets",
    "changed_daemonsets",
)
_UNSCHEDULABLE = State.UNSCHEDULABLE._value_  # its tag in the row counters (_tally)
# Cells that never carry events (why.explain returns them unchanged).
_EVENTLESS = frozenset({State.HEALTHY, State.NOT_TARGETED})
RESTORE_STEP = 4096  # items between two yields of `restore_steps` (a few ms)


def record_key(record: Record) -> str:
    return record.name if isinstance(record, Node) else record.key


class Delta(Struct):
    """What one apply/replace changed. `cells` maps a key to its new Cell, or None if gone."""

    revision: int
    cells: dict[CellKey, Cell | None] = field(default_factory=dict)
    added_nodes: list[str] = field(default_factory=list)
    removed_nodes: list[str] = field(default_factory=list)
    changed_nodes: list[str] = field(default_factory=list)
    added_daemonsets: list[str] = field(default_factory=list)
    removed_daemonsets: list[str] = field(default_factory=list)
    changed_daemonsets: list[str] = field(default_factory=list)
    # A mirror pod came, changed or went: static columns are computed on demand from the
    # pods (coverage/static.py), so views that draw them redraw them.
    static_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.static_changed
            or self.cells
            or self.added_nodes
            or self.removed_nodes
            or self.changed_nodes
            or self.added_daemonsets
            or self.removed_daemonsets
            or self.changed_daemonsets
        )

    def merge(self, later: Delta) -> Delta:
        """Fold a later delta into this one (the collector coalesces ~250 ms of them)."""
        self.revision = later.revision
        self.cells.update(later.cells)
        self.added_nodes, self.removed_nodes = _merge_membership(
            self.added_nodes, self.removed_nodes, later.added_nodes, later.removed_nodes
        )
        self.added_daemonsets, self.removed_daemonsets = _merge_membership(
            self.added_daemonsets,
            self.removed_daemonsets,
            later.added_daemonsets,
            later.removed_daemonsets,
        )
        self.changed_nodes = _union(self.changed_nodes, later.changed_nodes)
        self.changed_daemonsets = _union(self.changed_daemonsets, later.changed_daemonsets)
        self.static_changed = self.static_changed or later.static_changed
        return self


def _union(a: list[str], b: list[str]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def _merge_membership(
    added: list[str], removed: list[str], later_added: list[str], later_removed: list[str]
) -> tuple[list[str], list[str]]:
    """Combine two add/remove lists so that whatever happened last to a name wins.

    Added then removed within the window: it never reached the client, so it is only
    "removed" (harmless if the client never had it). Removed then added: "added" (the
    client replaces the row/column).
    """
    added_out = [x for x in added if x not in later_removed]
    removed_out = [x for x in removed if x not in later_added]
    return _union(added_out, later_added), _union(removed_out, later_removed)


_TALLIES: dict[tuple, tuple[str, ...]] = {}


def _tally(cell: Cell) -> tuple[str, ...]:
    """The counters one cell contributes to, named like the DaemonSet status fields.
    Memoised: only a few dozen combinations exist, and this runs for every changed cell."""
    key = (
        cell.state,
        cell.should_run,
        cell.ready,
        cell.available,
        cell.updated,
        cell.out_of_endpoints,
        cell.port_conflict,
    )
    tags = _TALLIES.get(key)
    if tags is None:
        tags = _TALLIES[key] = tuple(_compute_tally(cell))
    return tags


def cell_tally(cell: Cell) -> tuple[str, ...]:
    """The counters one cell contributes to (its state, "targeted", "ready", …): what a
    summary over a subset of the matrix adds up (summary.view_summary)."""
    return _tally(cell)


def _compute_tally(cell: Cell) -> list[str]:
    tags = [cell.state._value_]
    if cell.should_run:
        tags.append("targeted")
        if cell.state is not State.MISSING:
            tags.append("current")
            if cell.ready:
                tags.append("ready")
            if cell.available:
                tags.append("available")
            if cell.updated:
                tags.append("updated")
    # "misscheduled" (numberMisscheduled) is already the state's own tag: adding it again
    # counted every misscheduled cell twice.
    if cell.state not in (State.MISSING, State.NOT_TARGETED) and cell.updated is not True:
        # A pod on an older template (or one whose template cannot be told), targeted or
        # not: what tells a rollout under way (rollout.under_way) without walking the column.
        tags.append("not-updated")
    if cell.out_of_endpoints:
        tags.append("out-of-endpoints")
    if cell.port_conflict:
        tags.append("host-port-conflict")
    return tags


def _node_eligibility_key(node: Node) -> tuple:
    return (node.labels, node.taints)


def _node_cell_key(node: Node) -> tuple:
    return (node.ready, node.created, node.deleting, node.internal_ip, node.allocatable)


def _ds_eligibility_key(ds: DaemonSet) -> tuple:
    return (ds.node_name, ds.node_selector, ds.required_terms, ds.tolerations, ds.host_network)


def _ds_access_key(ds: DaemonSet) -> tuple:
    return (ds.template_labels, ds.host_ports, ds.container_ports)


def _ds_cell_key(ds: DaemonSet) -> tuple:
    """Everything of a DaemonSet that `cells.classify` reads, besides eligibility."""
    return (
        ds.uid,
        ds.generation,
        ds.template_generation,
        ds.strategy,
        ds.max_surge,
        ds.min_ready_seconds,
        ds.deleting,
        ds.selector,
        ds.status.observedGeneration,
    )


def _revision_order(rev: Revision) -> tuple[int, str]:
    # Revision numbers are unique per DaemonSet in a healthy cluster; the name breaks a
    # tie so that the answer never depends on the order events arrived in.
    return rev.revision, rev.name


class CellPods:
    """The pods of each cell, by owner uid, then node: the pod itself when there is one
    (all but a rollout's or a relist's moments), a dict by key when there are more. A dict
    per cell and a tuple key per cell cost 240 bytes each, 36 MB on a 150,000-cell matrix
    (bench/RESULTS.md); the nested dicts reuse the pods' own strings as keys."""

    __slots__ = ("_by_owner",)

    def __init__(self) -> None:
        self._by_owner: dict[str, dict[str, Pod | dict[str, Pod]]] = {}

    def add(self, pod: Pod) -> None:
        cells = self._by_owner.get(pod.owner_uid)
        if cells is None:
            cells = self._by_owner[pod.owner_uid] = {}
        here = cells.get(pod.node)
        if here is None or (isinstance(here, Pod) and here.key == pod.key):
            cells[pod.node] = pod
        elif isinstance(here, Pod):
            cells[pod.node] = {here.key: here, pod.key: pod}
        else:
            here[pod.key] = pod

    def remove(self, pod: Pod) -> None:
        cells = self._by_owner.get(pod.owner_uid)
        here = cells.get(pod.node) if cells is not None else None
        if cells is None or here is None:
            return
        if isinstance(here, Pod):
            if here.key == pod.key:
                del cells[pod.node]
        else:
            here.pop(pod.key, None)
            if len(here) == 1:
                cells[pod.node] = next(iter(here.values()))
            elif not here:
                del cells[pod.node]
        if not cells:
            del self._by_owner[pod.owner_uid]

    def get(self, owner_uid: str, node: str) -> list[Pod]:
        cells = self._by_owner.get(owner_uid)
        here = cells.get(node) if cells is not None else None
        if here is None:
            return []
        return [here] if isinstance(here, Pod) else list(here.values())


class Matrix:
    def __init__(self, clock: Callable[[], datetime] = utcnow):
        self._clock = clock
        # A matrix is a revision space of its own: when a collector restarts with a fresh
        # matrix, revisions start again at 0, and a page of the old one must re-sync
        # rather than wait. A snapshot reader sets the epoch of the matrix it copies.
        self.epoch = os.urandom(4).hex()  # not `secrets`: it loads OpenSSL (~4 MB RSS)
        self.revision = 0
        self.nodes: dict[str, Node] = {}
        self.health: dict[str, NodeHealth] = {}
        self.daemonsets: dict[str, DaemonSet] = {}
        self.pods: dict[str, Pod] = {}
        self.revisions: dict[str, Revision] = {}
        self.cells: dict[CellKey, Cell] = {}
        self._ds_by_uid: dict[str, str] = {}
        self._cell_pods = CellPods()
        self._owned_revisions: defaultdict[str, dict[str, Revision]] = defaultdict(dict)
        self._current_hash: dict[str, str] = {}
        self._eligibility: dict[CellKey, Eligibility] = {}
        self.ds_counts: dict[str, Counter[str]] = {}
        # Per DaemonSet, how many failing cells end with each exit (exits.py), kept as
        # cells change: a column head names its commonest exit without a scan.
        self.ds_exits: dict[str, Counter[ExitKey]] = {}
        self.node_counts: dict[str, Counter[str]] = {}
        # Objects the engine could not classify (an exception while computing one of their
        # cells), left out as if deleted until a new version of them arrives: by
        # (kind, key), with the failure in words. See _flush.
        self.unclassifiable: dict[ObjectKey, Skipped] = {}
        self._retrying: set[ObjectKey] = set()
        # Services, EndpointSlices and host ports (coverage/access.py).
        self.access = AccessIndex()
        # Mirror pods of the kubelets' static pods, by pod key (coverage/static.py).
        self.static_pods: dict[str, Pod] = {}
        # Moves whenever what static columns are made of may have changed (mirror pods, the
        # set of nodes, a node's labels): their cells cover every node, so pages and the
        # wall reuse them between such changes instead of rebuilding them for every delta
        # (static.columns_of).
        self.static_generation = 0
        # Pods that are neither, kept only while they take host ports (who holds a port).
        self._port_pods: dict[str, Pod] = {}
        # Events of the shown DaemonSets, daemon pods and nodes, bounded (why.py).
        self.events = EventBook()
        # Node events come through streams of their own (a single namespace other than
        # "default" watched, why.py NODE_EVENT_STREAMS): set by their first list.
        self._node_streams = False
        # Requests of every pod bound to each node, daemon or not (capacity.py).
        self.load = NodeLoad()
        # PriorityClasses by name: which one would let a Pending daemon preempt.
        self.priority_classes: dict[str, PriorityClass] = {}
        # Work to do at the next flush.
        self._dirty_eligibility: set[CellKey] = set()
        self._dirty_cells: set[CellKey] = set()
        # Rows and columns whose events were marked since the last compute: until the
        # cells are computed, marking one again marks the same cells (an initial sync's
        # 1,000 FailedCreate events walked their column 1,000 times: 5 million steps).
        self._explained: set[ObjectRef] = set()
        self._delta = Delta(0)

    # ------------------------------------------------------------------ public API

    def apply(self, event_type: str, record: Record) -> Delta:
        """Apply one watch event (ADDED / MODIFIED / DELETED) of a decoded record."""
        if event_type not in (ADDED, MODIFIED, DELETED):
            raise ValueError(f"unknown event type {event_type!r}")
        self._apply(event_type, record)
        return self._flush()

    def apply_many(self, events: Iterable[tuple[str, Record]]) -> Delta:
        for event_type, record in events:
            self._apply(event_type, record)
        return self._flush()

    def replace(self, kind: str, records: Iterable[Record]) -> Delta:
        """Make one kind's state exactly `records` (after a relist): emits the differences."""
        self._replace(kind, records)
        return self._flush()

    def replace_all(self, lists: Mapping[str, Iterable[Record]]) -> Delta:
        """Replace several kinds at once (an initial sync): each cell is classified once,
        instead of once when its column appears and again when its pod arrives."""
        # Events last: an event is kept only for an object the matrix already shows.
        for kind, records in sorted(lists.items(), key=lambda item: item[0] in ALL_EVENT_STREAMS):
            self._replace(kind, records)
        return self._flush()

    def _replace(self, kind: str, records: Iterable[Record]) -> None:
        self._seen(kind)
        self.static_generation += 1
        store = self._store_for(kind)
        if kind == "Pod" and (self.static_pods or self._port_pods):
            store = {**store, **self.static_pods, **self._port_pods}
        fresh = {record_key(r): r for r in records}
        for gone in [k for k in self.unclassifiable if k[0] == kind and k[1] not in fresh]:
            del self.unclassifiable[gone]
        for key in [k for k in store if k not in fresh]:
            self._apply(DELETED, store[key])
        for key, rec in fresh.items():
            if store.get(key) != rec:
                self._apply(MODIFIED if key in store else ADDED, rec)

    def refresh_timed(self) -> Delta:
        """Re-classify cells whose state depends on the clock (minReadySeconds, new nodes)."""
        for key, cell in self.cells.items():
            if cell.state in (State.NOT_AVAILABLE, State.MISSING):
                self._dirty_cells.add(key)
        for about in self.events.expire(self._clock()):
            self._mark_explained(about)
        return self._flush()

    def pods_in_cell(self, node: str, ds_key: str) -> list[Pod]:
        ds = self.daemonsets.get(ds_key)
        if ds is None:
            return []
        return self._cell_pods.get(ds.uid, node)

    def eligibility(self, node: str, ds_key: str) -> Eligibility | None:
        return self._eligibility.get((node, ds_key))

    def current_hash(self, ds_key: str) -> str | None:
        ds = self.daemonsets.get(ds_key)
        return self._current_hash.get(ds.uid) if ds else None

    def revisions_of(self, ds_key: str) -> list[Revision]:
        """The ControllerRevisions a DaemonSet controls, oldest first (by .revision)."""
        ds = self.daemonsets.get(ds_key)
        owned = self._owned_revisions.get(ds.uid) if ds else None
        return sorted(owned.values(), key=_revision_order) if owned else []

    def pods_by_node(self, ds_key: str) -> dict[str, list[Pod]]:
        """A DaemonSet's pods on the shown nodes, by node (the controller's
        nodeToDaemonPods, minus pods on nodes the matrix does not know)."""
        ds = self.daemonsets.get(ds_key)
        if ds is None:
            return {}
        out: dict[str, list[Pod]] = {}
        get = self._cell_pods.get
        for node in self.nodes:  # O(nodes): every DaemonSet has at most a few pods a node
            pods = get(ds.uid, node)
            if pods:
                out[node] = pods
        return out

    def pod_verdict(self, node: str, ds_key: str, pod: Pod) -> Cell | None:
        """The cell as it would be with only `pod` on the node: what that one pod's state
        and reason are (the new pod beside an old one in a surge rollout)."""
        ds, row, elig = (
            self.daemonsets.get(ds_key),
            self.nodes.get(node),
            self.eligibility(node, ds_key),
        )
        if ds is None or row is None or elig is None:
            return None
        try:
            cell = classify(elig, [pod], ds, row, self._current_hash.get(ds.uid), self._clock())
            if cell.state is State.UNSCHEDULABLE:
                cell = self._with_capacity(node, [pod], cell)
        except Exception:  # one odd pod must not break a page; its cell says why anyway
            return None
        return cell

    def now(self) -> datetime:
        return self._clock()

    # ------------------------------------------------------------------ snapshots

    def eligibilities(self) -> Mapping[CellKey, Eligibility]:
        """Every cell's targeting verdict (for snapshots: dashboard/collect/snapshots.py)."""
        return self._eligibility

    def current_hashes(self) -> Mapping[str, str]:
        """The current ControllerRevision hash by DaemonSet uid (for snapshots)."""
        return self._current_hash

    def restore(self, **state: Any) -> None:
        """Take over the state of another matrix (a snapshot of it), and rebuild the
        indexes derived from it exactly as the matrix maintains them. Meant to be read,
        not applied to. The arguments are `restore_steps`'."""
        for _ in self.restore_steps(**state):
            pass

    def restore_steps(
        self,
        *,
        revision: int,
        nodes: Mapping[str, Node],
        health: Mapping[str, NodeHealth],
        daemonsets: Mapping[str, DaemonSet],
        pods: Mapping[str, Pod],
        revisions: Mapping[str, Revision],
        cells: Mapping[CellKey, Cell],
        eligibility: Mapping[CellKey, Eligibility],
        current_hash: Mapping[str, str],
        ds_counts: Mapping[str, Mapping[str, int]],
        node_counts: Mapping[str, Mapping[str, int]],
        services: Iterable[Service] = (),
        slices: Iterable[EndpointSlice] = (),
        other_pods: Iterable[Pod] = (),
    ) -> Iterator[None]:
        """`restore`, yielding every few thousand items: a web worker rebuilds a big
        snapshot on its event loop, in steps, between its sockets' frames (a thread beside
        the loop starved it: collect/remote.py). The matrix is whole once exhausted."""
        self.revision = revision
        self.static_generation += 1
        self.nodes, self.health = dict(nodes), dict(health)
        self.daemonsets, self.pods, self.revisions = dict(daemonsets), dict(pods), dict(revisions)
        self.cells = dict(cells)
        self._eligibility, self._current_hash = dict(eligibility), dict(current_hash)
        self.ds_counts = {k: Counter(v) for k, v in ds_counts.items()}
        self.node_counts = {k: Counter(v) for k, v in node_counts.items()}
        yield
        self.ds_exits = {}
        for i, ((_, ds_key), cell) in enumerate(self.cells.items()):
            if (ek := exit_key(cell)) is not None:
                self.ds_exits.setdefault(ds_key, Counter())[ek] += 1
            if i % RESTORE_STEP == RESTORE_STEP - 1:
                yield
        self._ds_by_uid = {ds.uid: key for key, ds in self.daemonsets.items()}
        self._cell_pods = CellPods()
        for i, pod in enumerate(self.pods.values()):
            self._cell_pods.add(pod)
            if i % RESTORE_STEP == RESTORE_STEP - 1:
                yield
        self._owned_revisions = defaultdict(dict)
        for key, rev in self.revisions.items():
            if rev.owner_uid:
                self._owned_revisions[rev.owner_uid][key] = rev
        self.access = AccessIndex()
        self.access.seen_services = self.access.seen_daemonsets = True
        for svc in services:
            self.access.apply_service(False, svc)
        for es in slices:
            self.access.apply_slice(False, es)
        self.access.relate(self.daemonsets)
        self.access.prune()
        yield
        self.static_pods, self._port_pods = {}, {}
        for i, pod in enumerate(self.pods.values()):
            if pod.host_ports:  # the others claim nothing (a web worker restores 128,000)
                self.access.apply_pod_ports(None, pod, self._holder(pod))
            if i % RESTORE_STEP == RESTORE_STEP - 1:
                yield
        for pod in other_pods:
            self._keep_other_pod(pod)

    def exit_groups(self, ds_key: str) -> list[ExitGroup]:
        """The failing cells of a DaemonSet grouped by identical exit, commonest first."""
        if not self.ds_exits.get(ds_key):
            return []
        cells = self.cells
        return exit_groups(
            (node, cell) for node in self.nodes if (cell := cells.get((node, ds_key))) is not None
        )

    def other_pods(self) -> list[Pod]:
        """The pods kept outside the cells: mirror pods, and other pods with host ports."""
        return [*self.static_pods.values(), *self._port_pods.values()]

    # ------------------------------------------------------------------ event handling

    def _store_for(self, kind: str) -> Mapping[str, Record]:
        stores: dict[str, Mapping[str, Record]] = {
            "Node": self.nodes,
            "DaemonSet": self.daemonsets,
            "Pod": self.pods,
        }
        stores["ControllerRevision"] = self.revisions
        stores["Service"] = self.access.services
        stores["EndpointSlice"] = self.access.slices
        stores["PriorityClass"] = self.priority_classes
        if kind in NODE_EVENT_STREAMS:
            return {k: e for k, e in self.events.by_key.items() if node_stream_of(e) == kind}
        if kind in ALL_EVENT_STREAMS:
            # One stream's relist replaces the events it selects, not the others'. Once
            # node events come through streams of their own (a single namespace watched),
            # those are theirs, not the namespace's streams'.
            return {
                k: e
                for k, e in self.events.by_key.items()
                if stream_of(e) == kind and not (self._node_streams and node_stream_of(e))
            }
        if kind not in stores:
            raise ValueError(f"unknown kind {kind!r}")
        return stores[kind]

    def _seen(self, kind: str) -> None:
        if kind in NODE_EVENT_STREAMS:
            self._node_streams = True
        elif kind == "Service":
            self.access.seen_services = True
        elif kind == "DaemonSet":
            self.access.seen_daemonsets = True

    def _apply(self, event_type: str, record: Record) -> None:
        if self.unclassifiable:
            object_key = (_KIND_OF.get(type(record), ""), record_key(record))
            if object_key in self.unclassifiable:
                if event_type == DELETED:
                    del self.unclassifiable[object_key]
                else:
                    self._retrying.add(object_key)  # a new version: try it again
        if isinstance(record, Pod):
            self._apply_pod(event_type, record)
        elif isinstance(record, Node):
            self._apply_node(event_type, record)
        elif isinstance(record, DaemonSet):
            self.access.seen_daemonsets = True
            self._apply_daemonset(event_type, record)
        elif isinstance(record, Revision):
            self._apply_revision(event_type, record)
        elif isinstance(record, Service):
            self.access.seen_services = True
            self.access.apply_service(event_type == DELETED, record)
        elif isinstance(record, EndpointSlice):
            for pod_key in self.access.apply_slice(event_type == DELETED, record):
                pod = self.pods.get(pod_key)
                if pod is not None:
                    self._mark_cell_of(pod)
        elif isinstance(record, EventRecord):
            self._apply_event(event_type, record)
        elif isinstance(record, PriorityClass):
            self._apply_priority_class(event_type, record)
        else:
            raise TypeError(f"not a record: {type(record).__name__}")

    def _apply_priority_class(self, event_type: str, pc: PriorityClass) -> None:
        if event_type == DELETED:
            changed = self.priority_classes.pop(pc.name, None) is not None
        else:
            changed = self.priority_classes.get(pc.name) != pc
            self.priority_classes[pc.name] = pc
        if changed:  # the preemption advice of every Pending daemon may read differently
            self._dirty_cells.update(
                key for key, cell in self.cells.items() if cell.state is State.UNSCHEDULABLE
            )

    def _apply_node(self, event_type: str, node: Node) -> None:
        name = node.name
        if event_type == DELETED:
            if self.nodes.pop(name, None) is not None:
                self.static_generation += 1
                self.health.pop(name, None)
                self._remove_row(name)
                self.events.forget(("Node", "", name))
            return
        old = self.nodes.get(name)
        self.nodes[name] = node
        health = node_health(node)
        if old is None:
            self._delta.added_nodes.append(name)
            self.node_counts[name] = Counter()
        elif self.health.get(name) != health:
            self._delta.changed_nodes.append(name)
        self.health[name] = health
        # Kubelets rewrite their Node every few seconds (heartbeats): only labels and
        # taints can change eligibility, and only readiness and age show in cells.
        if old is None or _node_eligibility_key(old) != _node_eligibility_key(node):
            self.static_generation += 1
            self._dirty_eligibility.update((name, ds) for ds in self.daemonsets)
        elif _node_cell_key(old) != _node_cell_key(node):
            self._dirty_cells.update((name, ds) for ds in self.daemonsets)

    def _apply_daemonset(self, event_type: str, ds: DaemonSet) -> None:
        key = ds.key
        old = self.daemonsets.get(key)
        if old is not None and (event_type == DELETED or old.uid != ds.uid):
            # Deleted, or re-created under the same name: a different owner (docs/cells.md).
            self._ds_by_uid.pop(old.uid, None)
        if event_type == DELETED:
            if old is not None:
                del self.daemonsets[key]
                self._remove_column(key)
                self.access.daemonsets_changed()
                self.events.forget(("DaemonSet", ds.namespace, ds.name))
            return
        if old == ds:
            return  # an identical re-delivery (resync) is a no-op: no revision bump
        if old is None or _ds_access_key(old) != _ds_access_key(ds):
            self.access.daemonsets_changed()
        self.daemonsets[key] = ds
        self._ds_by_uid[ds.uid] = key
        if old is None:
            self._delta.added_daemonsets.append(key)
            self.ds_counts[key] = Counter()
        else:
            self._delta.changed_daemonsets.append(key)
        # The controller rewrites .status on every pod change: those counts only show in
        # the column header, so re-evaluate the column only when something cells use moved.
        if old is None or _ds_eligibility_key(old) != _ds_eligibility_key(ds):
            self._dirty_eligibility.update((node, key) for node in self.nodes)
        elif _ds_cell_key(old) != _ds_cell_key(ds) or _ds_access_key(old) != _ds_access_key(ds):
            self._dirty_cells.update((node, key) for node in self.nodes)

    def _apply_pod(self, event_type: str, pod: Pod) -> None:
        key = pod.key
        loaded = self.load.update(key, None if event_type == DELETED else pod)
        if loaded is not None and loaded in self.nodes:
            if pod.owner_uid:
                # Its DaemonSet tax changed: the row head says it (grid/model.py).
                self._delta.changed_nodes.append(loaded)
            # What is free on the node changed: its unschedulable daemons say new numbers
            # (the row's counters tell whether it has any: most rows, and every row of an
            # initial sync, have none, and 30 look-ups per pod were 15 % of its CPU).
            counts = self.node_counts.get(loaded)
            for ds_key in self.daemonsets if counts is None or counts.get(_UNSCHEDULABLE) else ():
                cell = self.cells.get((loaded, ds_key))
                if cell is not None and cell.state is State.UNSCHEDULABLE:
                    self._dirty_cells.add((loaded, ds_key))
        old = self.pods.pop(key, None)
        shown = old is not None
        if old is not None:
            self._cell_pods.remove(old)
            self._mark_cell_of(old)
        old_static = self.static_pods.pop(key, None)
        old = old or old_static or self._port_pods.pop(key, None)
        new = None if event_type == DELETED else pod
        if (old_static is not None and old_static != new) or (
            new is not None and new.mirror and old_static is None
        ):
            self._delta.static_changed = True
            self.static_generation += 1
        # Only pods that take host ports (or took them) have claims to move: the holder's
        # words were formatted for every pod event before.
        if (old is not None and old.host_ports) or (new is not None and new.host_ports):
            for node in self.access.apply_pod_ports(old, new, self._holder(pod)):
                self._mark_port_row(node)
        if new is None or not pod.owner_uid:
            if shown:  # it leaves its cell: its events go with it
                self.events.forget(("Pod", pod.namespace, pod.name))
            if new is not None:
                # Other pods never reach a cell: only mirror pods (static columns) and pods
                # holding host ports are kept, anything else would only cost memory.
                self._keep_other_pod(pod)
            return
        self.pods[key] = pod
        self._cell_pods.add(pod)
        self._mark_cell_of(pod)

    def _keep_other_pod(self, pod: Pod) -> None:
        if pod.mirror:
            self.static_pods[pod.key] = pod
        elif pod.host_ports:
            self._port_pods[pod.key] = pod
        else:
            return
        if pod.host_ports:
            self.access.apply_pod_ports(None, pod, self._holder(pod))

    def _holder(self, pod: Pod) -> str:
        return holder_of(pod, pod.owner_name or None)

    def _mark_port_row(self, node: str) -> None:
        if node in self.nodes:
            self._dirty_cells.update(
                (node, key) for key, ds in self.daemonsets.items() if ds.host_ports
            )

    def _mark_cell_of(self, pod: Pod) -> None:
        ds_key = self._ds_by_uid.get(pod.owner_uid)
        if ds_key is not None and pod.node in self.nodes:
            key = (pod.node, ds_key)
            # A cell whose eligibility is dirty is re-classified anyway (_compute takes
            # the union): on an initial sync that is every cell, and a second set of
            # 150,000 key tuples was ~18 MB of the peak (bench/RESULTS.md).
            if key not in self._dirty_eligibility:
                self._dirty_cells.add(key)

    def _apply_event(self, event_type: str, event: EventRecord) -> None:
        if event_type != DELETED and event.reason == "Preempted" and not self._shows(event.about):
            # A pod another one evicted: kept when a daemon pod did it, under that pod.
            event = self._by_preemptor(event) or event
        if event_type == DELETED:
            about: ObjectRef | None = self.events.remove(event)
        elif relevant(event) and self._shows(event.about):
            about = self.events.put(event)
        else:
            # No longer relevant (or about an object not shown): drop any older version.
            about = self.events.remove(event)
        if about is not None:
            self._mark_explained(about)

    def _by_preemptor(self, event: EventRecord) -> EventRecord | None:
        """The scheduler's "Preempted by pod <uid> on node <node>" on a victim, moved to
        the daemon pod that preempted it (None: no daemon pod did)."""
        found = PREEMPTED_BY.search(event.message)
        if found is None or event.object_kind != "Pod":
            return None
        who, node = found.groups()
        for ds in self.daemonsets.values():
            for pod in self._cell_pods.get(ds.uid, node):
                if who in (pod.uid, pod.key):
                    return _replace(
                        event,
                        object_namespace=pod.namespace,
                        object_name=pod.name,
                        victim=f"{event.object_namespace}/{event.object_name}",
                    )
        return None

    def _shows(self, about: ObjectRef) -> bool:
        kind, namespace, name = about
        if kind == "Pod":
            return f"{namespace}/{name}" in self.pods
        if kind == "DaemonSet":
            return f"{namespace}/{name}" in self.daemonsets
        return kind == "Node" and name in self.nodes

    def _mark_explained(self, about: ObjectRef) -> None:
        """Re-classify the cells an object's events explain: a pod's cell, a DaemonSet's
        column, a node's row."""
        kind, namespace, name = about
        if kind == "Pod":
            pod = self.pods.get(f"{namespace}/{name}")
            if pod is not None:
                self._mark_cell_of(pod)
        elif kind == "DaemonSet":
            key = f"{namespace}/{name}"
            if key in self.daemonsets and about not in self._explained:
                self._explained.add(about)
                self._mark_explainable((node, key) for node in self.nodes)
        elif kind == "Node" and name in self.nodes:
            if about not in self._explained:
                self._explained.add(about)
                self._mark_explainable((name, ds) for ds in self.daemonsets)
            self._delta.changed_nodes.append(name)  # its row head counts them

    def _mark_explainable(self, keys: Iterable[CellKey]) -> None:
        """Mark the cells among `keys` that events can change. A healthy or untargeted
        cell carries no events (why.explain leaves it as it is) and is re-classified, with
        its events, when it changes itself: a DaemonSet's event costs its red cells, not a
        re-classification of its whole column (5,000 cells on a large cluster, for every
        FailedCreate; bench/RESULTS.md, the events bench)."""
        cells, eligibility = self.cells, self._dirty_eligibility
        self._dirty_cells.update(
            key
            for key in keys
            if key not in eligibility  # re-classified anyway (see _mark_cell_of)
            and ((cell := cells.get(key)) is None or cell.state not in _EVENTLESS)
        )

    def _explain(self, node_name: str, ds: DaemonSet, cell: Cell) -> Cell:
        state = cell.state
        if state is State.NOT_TARGETED:
            return cell  # explain() leaves it as it is: no look-ups for it
        book = self.events
        pod_events = book.of(("Pod", ds.namespace, cell.pod)) if cell.pod else ()
        if state is State.HEALTHY and not pod_events:
            return cell  # only a healthy pod's own events (whom it preempted) show
        return explain(
            cell,
            node_name,
            book.of(("DaemonSet", ds.namespace, ds.name)),
            pod_events,
            book.of(("Node", "", node_name)),
        )

    def _with_capacity(self, node_name: str, pods: list[Pod], cell: Cell) -> Cell:
        pod = next((p for p in pods if p.name == cell.pod), None)
        lacking = short_of(cell.reason)
        if pod is None or not lacking:
            return cell
        node, load = self.nodes[node_name], self.load.by_node.get(node_name)
        # One computation: the reason's text, the JSON's `capacity` and the advice all
        # read these numbers.
        found = shortages(pod, node, load, lacking)
        text = capacity_text(found)
        if not text:
            return cell
        preempting = advice(pod, found, load, self.priority_classes)
        if preempting:
            text = f"{text}. {preempting}"
        return _replace(
            cell,
            reason=f"{cell.reason.rstrip('. ')}. {text}",
            pending=Pending(capacity=tuple(found), preemption=preempting),
        )

    def _with_port_advice(self, node_name: str, ds: DaemonSet, pods: list[Pod], cell: Cell) -> Cell:
        """Would a higher priority let the daemon evict the pods holding its host ports?"""
        pod = next((p for p in pods if p.name == cell.pod), None)
        if pod is None or pod.bound:
            return cell
        found = self.access.rivals(node_name, ds.host_ports, {p.key for p in pods})
        text = port_advice(pod, found, self.priority_classes)
        if not text:
            return cell
        return _replace(
            cell,
            reason=f"{cell.reason.rstrip('. ')}. {text}",
            pending=Pending(
                capacity=cell.capacity,
                port_holders=tuple(found),
                preemption=f"{cell.preemption}; {text}" if cell.preemption else text,
            ),
        )

    def _apply_revision(self, event_type: str, rev: Revision) -> None:
        old = self.revisions.pop(rev.key, None)
        owners = {r.owner_uid for r in (old, rev) if r is not None and r.owner_uid}
        if old is not None:
            self._owned_revisions[old.owner_uid].pop(old.key, None)
        # Only revisions a DaemonSet controls are kept (StatefulSets write them too, with
        # whole templates): the store stays bounded by the DaemonSets' history limits.
        if event_type != DELETED and rev.owner_uid:
            self.revisions[rev.key] = rev
            self._owned_revisions[rev.owner_uid][rev.key] = rev
        for owner in owners:
            self._recompute_current_hash(owner)
            if old != rev:
                # The revision map (column tooltip, DaemonSet page) changed.
                ds_key = self._ds_by_uid.get(owner)
                if ds_key is not None:
                    self._delta.changed_daemonsets.append(ds_key)

    def _recompute_current_hash(self, owner_uid: str) -> None:
        owned = self._owned_revisions.get(owner_uid)
        before = self._current_hash.get(owner_uid)
        if owned:
            # The current revision is the owned one with the highest .revision (docs/cells.md).
            self._current_hash[owner_uid] = max(owned.values(), key=_revision_order).hash
        else:
            self._owned_revisions.pop(owner_uid, None)
            self._current_hash.pop(owner_uid, None)
        if self._current_hash.get(owner_uid) != before:
            ds_key = self._ds_by_uid.get(owner_uid)
            if ds_key is not None:
                self._dirty_cells.update((node, ds_key) for node in self.nodes)
                self._delta.changed_daemonsets.append(ds_key)

    # ------------------------------------------------------------------ rows and columns

    def _remove_row(self, name: str) -> None:
        self._delta.removed_nodes.append(name)
        for ds_key in self.daemonsets:
            self._drop_cell((name, ds_key))
        self.node_counts.pop(name, None)

    def _remove_column(self, ds_key: str) -> None:
        self._delta.removed_daemonsets.append(ds_key)
        for node in self.nodes:
            self._drop_cell((node, ds_key))
        self.ds_counts.pop(ds_key, None)
        self.ds_exits.pop(ds_key, None)

    def _drop_cell(self, key: CellKey) -> None:
        self._eligibility.pop(key, None)
        self._dirty_eligibility.discard(key)
        self._dirty_cells.discard(key)
        old = self.cells.pop(key, None)
        if old is not None:
            self._count(key, old, -1)
            self._delta.cells[key] = None

    def _count(self, key: CellKey, cell: Cell, sign: int) -> None:
        node, ds_key = key
        tags = _tally(cell)
        ds_counts = self.ds_counts.get(ds_key)
        if ds_counts is not None:
            for tag in tags:
                ds_counts[tag] += sign
        node_counts = self.node_counts.get(node)
        if node_counts is not None:
            for tag in tags:
                node_counts[tag] += sign
        if cell.last_termination is not None and (ek := exit_key(cell)) is not None:
            exits = self.ds_exits.setdefault(ds_key, Counter())
            exits[ek] += sign
            if exits[ek] <= 0:
                del exits[ek]

    # ------------------------------------------------------------------ recompute

    def _flush(self) -> Delta:
        now = self._clock()
        access = self.access
        for ds_key in access.relate(self.daemonsets):
            if ds_key in self.daemonsets:
                self._dirty_cells.update((node, ds_key) for node in self.nodes)
                self._delta.changed_daemonsets.append(ds_key)
        access.prune()
        delta = self._delta
        # An object whose cell raises is left out (as if deleted) and the work redone
        # without it: one odd object must never stop a cluster. Each pass removes at
        # least one object, so this ends.
        while self._dirty_eligibility or self._dirty_cells:
            culprits = self._compute(delta, now)
            if not culprits:
                break
            for object_key, (record, reason) in culprits.items():
                self._leave_out(object_key, record, reason)
        for object_key in self._retrying:  # a new version went through: no longer left out
            self.unclassifiable.pop(object_key, None)
        self._retrying = set()
        for name in _MEMBERSHIP_LISTS:
            names = getattr(delta, name)
            if len(names) > 1:  # a pod event's delta has none or one: nothing to repeat
                setattr(delta, name, list(dict.fromkeys(names)))
        if not delta.empty:
            self.revision += 1
        delta.revision = self.revision
        self._delta = Delta(self.revision)
        return delta

    def _compute(self, delta: Delta, now: datetime) -> dict[ObjectKey, tuple[Record, str]]:
        """Recompute the dirty eligibilities and cells; returns the objects to blame for
        those that raised."""
        culprits: dict[ObjectKey, tuple[Record, str]] = {}
        dirty_eligibility, self._dirty_eligibility = self._dirty_eligibility, set()
        self._explained = set()  # the cells change now: a new event marks anew
        for key in dirty_eligibility:
            node, ds_key = key
            try:
                self._eligibility[key] = evaluate(self.daemonsets[ds_key], self.nodes[node])
            except Exception as exc:
                self._eligibility.pop(key, None)
                culprits.update(self._blame(key, None, [], exc))
        # Eligibility first: a set union keeps the left operand's element of equal ones, so
        # a new cell shares its key tuple with its eligibility (8 MB on 150,000 cells).
        # In place: a third set of every cell's key at the peak of an initial sync.
        dirty_eligibility |= self._dirty_cells
        dirty, self._dirty_cells = dirty_eligibility, set()
        book_active = self.events.active
        selected_by = self.access.selected_by  # relate() ran before: fixed while computing
        # Locals: this loop runs for every cell of a 150,000-cell sync.
        eligibility, daemonsets, nodes, cells = (
            self._eligibility,
            self.daemonsets,
            self.nodes,
            self.cells,
        )
        pods_of, hash_of, changed = self._cell_pods.get, self._current_hash.get, delta.cells
        for key in dirty:
            node_name, ds_key = key
            elig = eligibility.get(key)
            if elig is None:
                continue  # its eligibility failed: the culprit leaves, the cell with it
            ds = daemonsets[ds_key]
            pods = pods_of(ds.uid, node_name)
            current_hash = hash_of(ds.uid)
            try:
                row = nodes[node_name]
                cell = classify(elig, pods, ds, row, current_hash, now)
                if ds.host_ports or ds_key in selected_by:  # AccessIndex.touches, by key
                    cell = _with_access(
                        cell, self.access.cell_access(ds, row, pods, cell.pod, full=False)
                    )
                if cell.state is State.UNSCHEDULABLE:
                    cell = self._with_capacity(node_name, pods, cell)
                    if cell.port_conflict:
                        cell = self._with_port_advice(node_name, ds, pods, cell)
                if book_active:
                    cell = self._explain(node_name, ds, cell)
            except Exception as exc:
                culprits.update(self._blame(key, (elig, current_hash, now), pods, exc))
                continue
            old = cells.get(key)
            if old != cell:
                if old is not None:
                    self._count(key, old, -1)
                self._count(key, cell, +1)
                cells[key] = cell
                changed[key] = cell
        return culprits

    def _blame(
        self,
        key: CellKey,
        classifying: tuple[Eligibility, str | None, datetime] | None,
        pods: list[Pod],
        exc: Exception,
    ) -> dict[ObjectKey, tuple[Record, str]]:
        """Which object of a failing cell to leave out: its pods, when a plain ready pod in
        their place works (the ones that fail on their own, else all); else the DaemonSet,
        when it fails on a plain node too; else the node."""
        node, ds = self.nodes[key[0]], self.daemonsets[key[1]]
        reason = _in_words(exc)
        if classifying is None:
            ds_fails = _fails(lambda: evaluate(ds, _PROBE_NODE))
        else:
            elig, current_hash, now = classifying

            def fails_with(some: list[Pod], on: Node = node) -> bool:
                return _fails(lambda: classify(elig, some, ds, on, current_hash, now))

            # A plain ready pod in their place tells whether the pods are at fault at all.
            if pods and not fails_with([_PROBE_POD]):
                bad = [p for p in pods if fails_with([p])] or pods
                return {("Pod", p.key): (p, reason) for p in bad}
            ds_fails = fails_with([], _PROBE_NODE) or (
                bool(pods) and fails_with([_PROBE_POD], _PROBE_NODE)
            )
        if ds_fails:
            return {("DaemonSet", ds.key): (ds, reason)}
        return {("Node", node.name): (node, reason)}

    def _leave_out(self, object_key: ObjectKey, record: Record, reason: str) -> None:
        kind, key = object_key
        known = self.unclassifiable.get(object_key)
        reason = f"cannot be classified: {reason}"
        if known is None or known.reason != reason:
            # Logged once while it stays unclassifiable: a relist re-delivers it every time.
            log.warning("left out %s %s: it %s", kind, key, reason)
        self._apply(DELETED, record)
        namespace = getattr(record, "namespace", "")
        self.unclassifiable[object_key] = Skipped(
            kind, namespace, record.name, record.resource_version, reason
        )
        self._retrying.discard(object_key)

    # ------------------------------------------------------------------ comparisons

    def access_of(
        self, node: str, ds_key: str, domain: str = DEFAULT_CLUSTER_DOMAIN
    ) -> CellAccess | None:
        """A cell's access paths in full: its addresses and DNS names too (computed on
        demand, not kept in the cell)."""
        cell, ds, row = (
            self.cells.get((node, ds_key)),
            self.daemonsets.get(ds_key),
            self.nodes.get(node),
        )
        if cell is None or ds is None or row is None:
            return None
        return self.access.cell_access(ds, row, self.pods_in_cell(node, ds_key), cell.pod, domain)

    def services(self) -> list[Service]:
        return list(self.access.services.values())

    def endpoint_slices(self) -> list[EndpointSlice]:
        return list(self.access.slices.values())

    def state(self) -> dict[CellKey, Cell]:
        """A copy of every cell, for comparing two matrices (tests, relist checks)."""
        return dict(self.cells)


def _fails(compute: Callable[[], object]) -> bool:
    try:
        compute()
    except Exception:
        return True
    return False


def _in_words(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _with_access(cell: Cell, a: CellAccess) -> Cell:
    if not (a.note or a.in_service_endpoints is not None):
        return cell
    flagged = a.out_of_endpoints or a.port_conflict
    return _replace(
        cell,
        # The note joins the reason when it is a problem: every view that shows a cell's
        # reason (grid tooltip, wall, CLI, history) then says it too.
        reason=f"{cell.reason}; {a.note}" if flagged and a.note else cell.reason,
        in_service_endpoints=a.in_service_endpoints,
        out_of_endpoints=a.out_of_endpoints,
        port_conflict=a.port_conflict,
        access_note=a.note,
    )
