"""The DaemonSet controller (docs/cells.md): placement, rolling updates, revisions, status.

Eligibility is the coverage engine's `evaluate()` — the simulator and the dashboard must
never disagree about where a daemon should run. Work is incremental so that 5,000 nodes ×
30 DaemonSets stay cheap: a node change re-evaluates one row, a pod change dirties one
(DaemonSet, node) pair, and each DaemonSet keeps per-node contributions to its status
counters instead of recounting every node. Only a rollout in progress scans all nodes
(upstream's `rollingUpdate` needs the global unavailable/surge budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dashboard.coverage.eligibility import Eligibility, evaluate
from dashboard.coverage.records import DaemonSet, decode

from .objects import (
    TEMPLATE_GENERATION_ANNOTATION,
    TEMPLATE_GENERATION_LABEL,
    PodBase,
    controller_revision,
    template_hash,
)

if TYPE_CHECKING:
    from .cluster import Simulator
    from .kubelet import PodState

Obj = dict[str, Any]

FAILED_BACKOFF_START, FAILED_BACKOFF_CAP = 1.0, 900.0  # flowcontrol.NewBackOff(1s, 15m)
BURST_REPLICAS = 250  # creations per sync, as upstream
# Counters in a node's contribution tuple.
DESIRED, CURRENT, READY, AVAILABLE, UPDATED, MISSCHEDULED = range(6)
ZERO = (0, 0, 0, 0, 0, 0)


@dataclass(eq=False)
class DaemonSetState:
    namespace: str
    name: str
    obj: Obj
    rec: DaemonSet
    hash: str = ""
    hashed_template: Obj | None = None
    base: PodBase | None = None
    revisions: dict[str, tuple[str, int]] = field(default_factory=dict)  # hash -> (name, rev)
    elig: dict[str, Eligibility] = field(default_factory=dict)
    pods: dict[str, list[PodState]] = field(default_factory=dict)  # node -> pods
    contrib: dict[str, tuple[int, ...]] = field(default_factory=dict)
    totals: list[int] = field(default_factory=lambda: [0] * 6)
    dirty: dict[str, None] = field(default_factory=dict)
    full: bool = True
    rollout: bool = False  # old-revision pods may exist: run the rolling update scan
    backoff: dict[str, list[float]] = field(default_factory=dict)  # node -> [delay, last]
    stale_until: float = 0.0
    observed: int = 0
    crash_rate: float = 0.0  # share of new pods whose first container crash-loops
    crash_mode: str = "Error"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def generation(self) -> int:
        return self.obj["metadata"]["generation"]

    @property
    def template_generation(self) -> str:
        return self.obj["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION]


def _scaled(value: int | str | None, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent, rounding up as the DaemonSet code does."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)


def _oldest_key(p: PodState) -> tuple[bool, float, str]:
    # podByCreationTimestampAndPhase: scheduled first, then creation time, then name.
    return (not p.bound, int(p.created), p.name)


class DaemonSetController:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.daemonsets: dict[str, DaemonSetState] = {}

    # ------------------------------------------------------------------ inputs

    def add(self, obj: Obj, crash_rate: float = 0.0, crash_mode: str = "Error") -> DaemonSetState:
        obj = self.sim.store.put("daemonsets", obj)
        ds = DaemonSetState(obj["metadata"]["namespace"], obj["metadata"]["name"], obj,
                            decode("DaemonSet", obj), crash_rate=crash_rate,
                            crash_mode=crash_mode)  # fmt: skip
        self.daemonsets[ds.key] = ds
        self._evaluate_all(ds)
        self._construct_history(ds)
        return ds

    def update_template(self, ds: DaemonSetState, template: Obj) -> None:
        """A spec.template change, as the API server applies it: generation and the
        template-generation annotation go up; the controller notices a little later."""
        meta = ds.obj["metadata"]
        generation = int(ds.template_generation) + 1
        obj = {
            **ds.obj,
            "metadata": {
                **meta,
                "annotations": {
                    **meta["annotations"],
                    TEMPLATE_GENERATION_ANNOTATION: str(generation),
                },
                "generation": meta["generation"] + 1,
            },
            "spec": {**ds.obj["spec"], "template": template},
        }
        self._put(ds, obj)
        self._evaluate_all(ds)
        # A real controller's status lags a template change (its queue, its expectations):
        # observedGeneration stays behind for a moment.
        ds.stale_until = self.sim.t + self.sim.rng.uniform(1.0, 3.0)
        self.sim.at(ds.stale_until - self.sim.t, self._wake, ds.key)

    def remove(self, key: str) -> DaemonSetState | None:
        ds = self.daemonsets.pop(key, None)
        if ds is None:
            return None
        self.sim.store.delete("daemonsets", ds.namespace, ds.name)
        # Garbage collector (background cascade): revisions go, pods terminate.
        for _, (name, _) in ds.revisions.items():
            self.sim.store.delete("controllerrevisions", ds.namespace, name)
        for pods in list(ds.pods.values()):
            for pod in list(pods):
                self.sim.kubelet.delete(pod)
        return ds

    def node_changed(self, name: str) -> None:
        node = self.sim.node_records[name]
        for ds in self.daemonsets.values():
            ds.elig[name] = evaluate(ds.rec, node)
            ds.dirty[name] = None

    def node_removed(self, name: str) -> None:
        for ds in self.daemonsets.values():
            ds.elig.pop(name, None)
            ds.dirty[name] = None

    def pod_changed(self, pod: PodState) -> None:
        ds = self.daemonsets.get(pod.ds_key)
        if ds is None:
            return
        ds.dirty[pod.node] = None
        min_ready = ds.rec.min_ready_seconds
        if min_ready and pod.ready_since is not None:
            # Availability arrives with time alone: look again when it does.
            left = pod.ready_since + min_ready - self.sim.t
            if left > 0:
                self.sim.at(left + 0.01, self._wake, ds.key, pod.node)

    def _wake(self, key: str, node: str | None = None) -> None:
        ds = self.daemonsets.get(key)
        if ds is not None:
            if node is None:
                ds.full = True
            else:
                ds.dirty[node] = None

    def _evaluate_all(self, ds: DaemonSetState) -> None:
        records = self.sim.node_records
        ds.elig = {name: evaluate(ds.rec, rec) for name, rec in records.items()}
        ds.full = True

    def _put(self, ds: DaemonSetState, obj: Obj) -> None:
        ds.obj = self.sim.store.put("daemonsets", obj)
        ds.rec = decode("DaemonSet", ds.obj)

    # ------------------------------------------------------------------ revisions

    def _construct_history(self, ds: DaemonSetState) -> None:
        template = ds.obj["spec"]["template"]
        if template is ds.hashed_template:  # status writes reuse the template dict
            return
        ds.hashed_template = template
        h = template_hash(template)
        if h == ds.hash:
            return
        store = self.sim.store
        top = max((rev for _, rev in ds.revisions.values()), default=0)
        if h in ds.revisions:  # back to an earlier template (rollout undo): bump its number
            name, _ = ds.revisions[h]
            old = store.get("controllerrevisions", ds.namespace, name)
            assert old is not None  # ds.revisions names only revisions still in the store
            store.put("controllerrevisions", {**old, "metadata": {**old["metadata"]},
                                              "revision": top + 1})  # fmt: skip
        else:
            cr = store.put("controllerrevisions", controller_revision(ds.obj, template, h, top + 1))
            name = cr["metadata"]["name"]
        ds.revisions[h] = (name, top + 1)
        ds.hash = h
        ds.base = PodBase(ds.obj, h, ds.template_generation)
        ds.rollout = ds.observed > 0  # pods of an older revision may exist
        ds.full = True
        self._truncate_history(ds)

    def _truncate_history(self, ds: DaemonSetState) -> None:
        limit = ds.obj["spec"].get("revisionHistoryLimit", 10)
        old = sorted((rev, h) for h, (_, rev) in ds.revisions.items() if h != ds.hash)
        if len(old) <= limit:
            return
        in_use = {p.hash for pods in ds.pods.values() for p in pods}
        for _, h in old[: len(old) - limit]:
            if h not in in_use:
                name, _ = ds.revisions.pop(h)
                self.sim.store.delete("controllerrevisions", ds.namespace, name)

    # ------------------------------------------------------------------ sync

    def sync_all(self) -> None:
        for _ in range(8):  # each pass settles what the previous one's writes dirtied
            busy = [ds for ds in self.daemonsets.values() if ds.full or ds.dirty]
            if not busy:
                return
            for ds in busy:
                self.sync(ds)

    def sync(self, ds: DaemonSetState) -> None:
        now = self.sim.t
        if now < ds.stale_until:
            return
        self._construct_history(ds)
        if ds.full:
            nodes = list(self.sim.nodes) + [n for n in ds.pods if n not in self.sim.nodes]
        else:
            nodes = list(ds.dirty)
        ds.full = False
        ds.dirty = {}
        created = 0
        for name in nodes:
            created += self._manage(ds, name, created < BURST_REPLICAS)
        if created >= BURST_REPLICAS:
            ds.full = True  # the rest on the next pass
        if ds.rollout and ds.rec.strategy == "RollingUpdate":
            self._rolling_update(ds)
        for name in nodes:
            self._recount(ds, name)
        self.write_status(ds)

    def _manage(self, ds: DaemonSetState, node: str, may_create: bool) -> int:
        """podsShouldBeOnNode + syncNodes for one node. Returns pods created."""
        sim = self.sim
        pods = [p for p in ds.pods.get(node, ()) if not (p.terminal and p.deletion is not None)]
        e = ds.elig.get(node)
        if e is None:  # the node is gone: unbound pods are ours to delete, pod GC does the rest
            for p in pods:
                if not p.bound:
                    sim.kubelet.delete(p)
            return 0
        if e.should_run and not pods:
            if not may_create:
                return 0
            crash = ds.crash_mode if sim.rng.random() < ds.crash_rate else None
            assert ds.base is not None  # set by _construct_history when the DaemonSet is added
            sim.kubelet.create(ds.base, ds.key, node, crash)
            return 1
        if e.may_continue:
            running = []
            for p in pods:
                if p.deletion is not None:
                    continue
                if p.terminal:
                    entry = ds.backoff.get(node)
                    if entry is not None and sim.t - entry[1] < entry[0]:
                        sim.at(entry[0] - (sim.t - entry[1]) + 0.01, self._wake, ds.key, node)
                        continue
                    delay = (
                        FAILED_BACKOFF_START
                        if entry is None
                        else min(entry[0] * 2, FAILED_BACKOFF_CAP)
                    )
                    ds.backoff[node] = [delay, sim.t]
                    sim.kubelet.delete(p)
                else:
                    running.append(p)
            if len(running) <= 1:
                return 0
            running.sort(key=_oldest_key)
            surge = (
                _scaled(ds.rec.max_surge, ds.totals[DESIRED]) > 0
                and ds.rec.strategy == "RollingUpdate"
            )
            if not surge:
                for p in running[1:]:
                    sim.kubelet.delete(p)
                return 0
            newest = oldest_old = None
            for p in running:
                if p.hash == ds.hash and newest is None:
                    newest = p
                elif p.hash != ds.hash and oldest_old is None:
                    oldest_old = p
                else:
                    sim.kubelet.delete(p)
            if (newest is not None and oldest_old is not None) and (
                not oldest_old.ready or self._available(ds, newest)
            ):
                sim.kubelet.delete(oldest_old)
            return 0
        for p in pods:
            if p.deletion is None:
                sim.kubelet.delete(p)
        return 0

    def _available(self, ds: DaemonSetState, pod: PodState) -> bool:
        if pod.ready_since is None:
            return False
        return pod.ready_since + ds.rec.min_ready_seconds <= self.sim.t

    def _updated(self, ds: DaemonSetState, pod: PodState) -> bool:
        return (
            pod.hash == ds.hash
            or pod.base.labels.get(TEMPLATE_GENERATION_LABEL) == ds.template_generation
        )

    def _split(self, ds: DaemonSetState, pods: list[PodState]) -> tuple[Any, Any, bool]:
        """findUpdatedPodsOnNode: (new pod, old pod, ok) among non-deleting pods."""
        new = old = None
        for p in pods:
            if p.deletion is not None:
                continue
            if self._updated(ds, p):
                if new is not None:
                    return None, None, False
                new = p
            else:
                if old is not None:
                    return None, None, False
                old = p
        return new, old, True

    def _rolling_update(self, ds: DaemonSetState) -> None:
        desired = ds.totals[DESIRED]
        max_surge = _scaled(ds.rec.max_surge, desired)
        max_unavailable = _scaled(ds.rec.max_unavailable, desired)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        kubelet = self.sim.kubelet
        any_old = False
        if max_surge == 0:
            unavailable = 0
            allowed: list[PodState] = []
            candidates: list[PodState] = []
            for pods in ds.pods.values():
                new, old, ok = self._split(ds, pods)
                any_old |= old is not None or not ok
                if not ok or (new is None) == (old is None):
                    unavailable += 1  # the manage loop creates or prunes here
                elif new is not None:
                    unavailable += not self._available(ds, new)
                elif not self._available(ds, old):
                    allowed.append(old)  # already down: replacing it costs nothing
                elif unavailable < max_unavailable:
                    candidates.append(old)
            budget = max(0, min(max_unavailable - unavailable, len(candidates)))
            for p in allowed + candidates[:budget]:
                kubelet.delete(p)
        else:
            surging = 0
            allowed_nodes: list[str] = []
            candidate_nodes: list[str] = []
            for node, pods in ds.pods.items():
                new, old, ok = self._split(ds, pods)
                any_old |= old is not None or not ok
                if not ok:
                    surging += 1
                    continue
                if old is None:
                    continue
                e = ds.elig.get(node)
                if new is None:
                    if e is None or not e.should_run:
                        continue  # sunsetting node: left to the manage loop
                    if not self._available(ds, old):
                        allowed_nodes.append(node)
                    elif surging < max_surge:
                        candidate_nodes.append(node)
                elif not self._available(ds, new):
                    surging += 1
                else:
                    kubelet.delete(old)
            budget = max(0, min(max_surge - surging, len(candidate_nodes)))
            assert ds.base is not None  # set by _construct_history when the DaemonSet is added
            for node in allowed_nodes + candidate_nodes[:budget]:
                crash = ds.crash_mode if self.sim.rng.random() < ds.crash_rate else None
                kubelet.create(ds.base, ds.key, node, crash)
        ds.rollout = any_old

    # ------------------------------------------------------------------ status

    def _recount(self, ds: DaemonSetState, node: str) -> None:
        old = ds.contrib.get(node, ZERO)
        e = ds.elig.get(node)
        new = ZERO
        if e is not None:
            pods = [p for p in ds.pods.get(node, ()) if not (p.terminal and p.deletion is not None)]
            if e.should_run:
                if pods:
                    pod = min(pods, key=_oldest_key)
                    new = (1, 1, int(pod.ready), int(self._available(ds, pod)),
                           int(self._updated(ds, pod)), 0)  # fmt: skip
                else:
                    new = (1, 0, 0, 0, 0, 0)
            elif pods:
                new = (0, 0, 0, 0, 0, 1)
        if new == old:
            return
        if new == ZERO:
            ds.contrib.pop(node, None)
        else:
            ds.contrib[node] = new
        for i in range(6):
            ds.totals[i] += new[i] - old[i]

    def recount_all(self, ds: DaemonSetState) -> None:
        for name in list(ds.contrib):
            if name not in ds.elig:
                self._recount(ds, name)
        for name in ds.elig:
            self._recount(ds, name)

    def write_status(self, ds: DaemonSetState) -> None:
        t = ds.totals
        status: Obj = {
            "currentNumberScheduled": t[CURRENT],
            "desiredNumberScheduled": t[DESIRED],
            "numberMisscheduled": t[MISSCHEDULED],
            "numberReady": t[READY],
        }
        # The remaining fields are omitempty in the API: zero values are not serialized.
        optional = {
            "numberAvailable": t[AVAILABLE],
            "numberUnavailable": t[DESIRED] - t[AVAILABLE],
            "observedGeneration": ds.generation,
            "updatedNumberScheduled": t[UPDATED],
        }
        status |= {k: v for k, v in optional.items() if v}
        status = dict(sorted(status.items()))
        if status == ds.obj.get("status"):
            return
        ds.observed = ds.generation
        self._put(ds, {**ds.obj, "metadata": {**ds.obj["metadata"]}, "status": status})
