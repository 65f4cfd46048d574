"""The simulated cluster: a clock, an event queue, and the scripted actions.

Everything happens in simulated time and draws from one seeded `random.Random`, so two
simulators with the same seed and the same calls write identical objects. Timed work
(kubelet transitions, pod GC, a node finishing its join, churn) sits in a heap ordered by
(time, sequence number); after every instant the DaemonSet controller settles whatever
that instant changed, as a real controller would within milliseconds.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dashboard.coverage.records import decode

from . import nodes as nodelib
from .churn import Churn
from .controller import DaemonSetController, DaemonSetState
from .endpoints import EndpointSliceController
from .kubelet import Kubelet, PodState
from .nodes import NodeState
from .objects import NAME_ALPHABET, rfc3339
from .scenarios import build
from .store import ObjectStore

Obj = dict[str, Any]

# A fixed start keeps runs reproducible; callers wanting "now" pass start=.
DEFAULT_START = datetime(2025, 6, 2, 8, 0, 0, tzinfo=UTC)


class Simulator:
    def __init__(self, seed: int = 1, churn: float = 0.0, start: datetime | None = None):
        self.rng = random.Random(seed)
        self.t = (start or DEFAULT_START).timestamp()
        self.store = ObjectStore(clock=lambda: rfc3339(self.t))
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.nodes: dict[str, NodeState] = {}
        self.node_records: dict[str, Any] = {}
        self.pods: dict[tuple[str, str], PodState] = {}
        self.pods_on_node: dict[str, dict[tuple[str, str], PodState]] = {}
        self.bad_images: set[str] = set()
        self.catalog: dict[str, tuple[Obj, float, str]] = {}  # name -> (ds, crash rate, mode)
        self._node_index = 0
        self.pools_in_use: list[str] = [p for p in nodelib.POOLS if p != "windows"]
        self.controller = DaemonSetController(self)
        self.kubelet = Kubelet(self)
        self.endpoints = EndpointSliceController(self)
        self.churn = Churn(self, churn)
        # Held while the simulator changes the cluster (a step, an injected fault): whoever
        # reads the store under it sees the cluster between two steps, never half of one.
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_scenario(
        cls,
        name: str = "demo",
        seed: int = 1,
        nodes: int | None = None,
        daemonsets: int | None = None,
        churn: float | None = None,
        start: datetime | None = None,
    ) -> Simulator:
        return build(cls, name, seed=seed, nodes=nodes, daemonsets=daemonsets, churn=churn,
                     start=start)  # fmt: skip

    # ------------------------------------------------------------------ clock

    @property
    def lock(self) -> threading.RLock:
        """Held for every change of the cluster: a step and each injected fault."""
        return self._lock

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def at(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (self.t + max(0.0, delay), next(self._seq), fn, args))

    def step(self, seconds: float) -> None:
        """Advance simulated time, running every timer due and settling the controllers."""
        with self._lock:
            end = self.t + seconds
            self.controller.sync_all()
            heap = self._heap
            while heap and heap[0][0] <= end:
                instant = heap[0][0]
                self.t = max(self.t, instant)
                while heap and heap[0][0] <= instant:
                    _, _, fn, args = heapq.heappop(heap)
                    fn(*args)
                self.controller.sync_all()
            self.t = end
            self.endpoints.sync()  # once a step: the slices follow the pods within a tick

    def start(self, speed: float = 1.0, tick: float = 0.5) -> None:
        """Step in real time on a background thread (wall clock only paces the steps)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            last = time.monotonic()
            while not self._stop.wait(tick):
                now = time.monotonic()
                self.step((now - last) * speed)
                last = now

        self._thread = threading.Thread(target=run, name="simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # Take the thread first: two stops at once must not both find it and one join None.
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def random_suffix(self, n: int = 5) -> str:
        choice = self.rng.choice
        return "".join(choice(NAME_ALPHABET) for _ in range(n))

    # ------------------------------------------------------------------ indexes

    def index_pod(self, pod: PodState) -> None:
        self.pods[pod.key] = pod
        self.pods_on_node.setdefault(pod.node, {})[pod.key] = pod
        ds = self.controller.daemonsets.get(pod.ds_key)
        if ds is not None:
            ds.pods.setdefault(pod.node, []).append(pod)

    def unindex_pod(self, pod: PodState) -> None:
        if self.pods.pop(pod.key, None) is None:
            return
        on_node = self.pods_on_node.get(pod.node)
        if on_node is not None:
            on_node.pop(pod.key, None)
            if not on_node:
                del self.pods_on_node[pod.node]
        ds = self.controller.daemonsets.get(pod.ds_key)
        if ds is not None:
            pods = ds.pods.get(pod.node)
            if pods is not None and pod in pods:
                pods.remove(pod)
                if not pods:
                    del ds.pods[pod.node]

    # ------------------------------------------------------------------ nodes

    def _write_node(self, state: NodeState) -> None:
        state.heartbeat = self.t
        obj = self.store.put("nodes", nodelib.render(state, self.t))
        self.node_records[state.name] = decode("Node", obj)
        self.controller.node_changed(state.name)

    def new_node(self, pool: str, created: float, ready: bool) -> NodeState:
        idx = self._node_index
        self._node_index += 1
        name = nodelib.node_name(idx)
        state = NodeState(name, nodelib.POOLS[pool], idx, nodelib.ZONES[idx % 3], created)
        if ready:
            state.ready, state.joining = "True", False
            state.ready_reason = ("KubeletReady", "kubelet is posting ready status")
            state.transitions["Ready"] = created + self.rng.uniform(8, 25)
        self.nodes[name] = state
        self._write_node(state)
        return state

    def _get(self, name: str) -> NodeState:
        state = self.nodes.get(name)
        if state is None:
            raise KeyError(f"no node {name!r}")
        return state

    def add_node(self, pool: str = "general") -> str:
        """A node registers NotReady (kubelet's not-ready:NoSchedule taint), Ready shortly after."""
        with self._lock:
            if pool not in nodelib.POOLS:
                raise ValueError(f"unknown pool {pool!r} (one of {', '.join(nodelib.POOLS)})")
            state = self.new_node(pool, self.t, ready=False)
            self.at(self.rng.uniform(8.0, 20.0), self._joined, state.name)
            return state.name

    def _joined(self, name: str) -> None:
        state = self.nodes.get(name)
        if state is not None and state.joining:
            self._set_ready(state, "True")

    def remove_node(self, name: str) -> None:
        """The Node object goes; bound pods are removed by pod GC a little later."""
        with self._lock:
            self._get(name)
            del self.nodes[name]
            del self.node_records[name]
            self.store.delete("nodes", "", name)
            self.controller.node_removed(name)
            self.at(self.rng.uniform(5.0, 15.0), self._pod_gc, name)

    def _pod_gc(self, name: str) -> None:
        if name in self.nodes:
            return
        for pod in list(self.pods_on_node.get(name, {}).values()):
            if pod.bound:
                self.kubelet.delete(pod, graceful=False)

    def set_node_ready(self, name: str, status: str) -> None:
        with self._lock:
            if status not in ("True", "False", "Unknown"):
                raise ValueError("status must be 'True', 'False' or 'Unknown'")
            self._set_ready(self._get(name), status)

    def _set_ready(self, state: NodeState, status: str) -> None:
        if state.ready != status:
            state.transitions["Ready"] = self.t
            if status == "Unknown" or state.ready == "Unknown":
                for kind in nodelib.PRESSURE:
                    state.transitions[kind] = self.t
        state.ready = status
        if status == "True":
            state.joining = False
            state.ready_reason = ("KubeletReady", "kubelet is posting ready status")
        elif status == "False":
            state.ready_reason = ("KubeletNotReady", nodelib.NOT_READY_MESSAGE)
        else:
            state.ready_reason = ("NodeStatusUnknown", "Kubelet stopped posting node status.")
        self._write_node(state)
        # Node lifecycle controller: MarkPodsNotReady on a node that is not Ready.
        down = status != "True" and not state.joining
        for pod in list(self.pods_on_node.get(state.name, {}).values()):
            if pod.bound:
                self.kubelet.node_health(pod, down)

    def cordon(self, name: str, on: bool = True) -> None:
        with self._lock:
            state = self._get(name)
            state.unschedulable = on
            self._write_node(state)

    def set_pressure(self, name: str, condition: str, on: bool = True) -> None:
        """MemoryPressure / DiskPressure / PIDPressure, or NetworkUnavailable."""
        with self._lock:
            state = self._get(name)
            if condition == nodelib.NETWORK_UNAVAILABLE:
                if state.network_unavailable != on:
                    state.transitions[condition] = self.t
                state.network_unavailable = on
            elif condition in nodelib.PRESSURE:
                if bool(state.pressures.get(condition)) != on:
                    state.transitions[condition] = self.t
                state.pressures[condition] = on
            else:
                raise ValueError(f"unknown condition {condition!r}")
            self._write_node(state)

    def taint(self, name: str, key: str, value: str | None, effect: str) -> None:
        with self._lock:
            state = self._get(name)
            taint: Obj = {"effect": effect, "key": key}
            if value:
                taint["value"] = value
            if effect == "NoExecute":
                taint["timeAdded"] = rfc3339(self.t)
            state.user_taints = [
                t for t in state.user_taints if not (t["key"] == key and t["effect"] == effect)
            ] + [taint]
            self._write_node(state)

    def untaint(self, name: str, key: str) -> None:
        with self._lock:
            state = self._get(name)
            state.user_taints = [t for t in state.user_taints if t["key"] != key]
            self._write_node(state)

    # ------------------------------------------------------------------ pods

    def _pods_of(self, ds_key: str, node: str) -> list[PodState]:
        ds = self._ds(ds_key)
        return [p for p in ds.pods.get(node, ()) if p.deletion is None]

    def crash_pod(self, ds_key: str, node: str, mode: str = "Error") -> None:
        """The daemon's first container starts crash-looping (mode "Error" exits 1,
        "Completed" exits 0 — both restart, as DaemonSet pods restart Always)."""
        with self._lock:
            for pod in self._pods_of(ds_key, node):
                self.kubelet.set_crash(pod, mode)

    def fix_pod(self, ds_key: str, node: str) -> None:
        with self._lock:
            for pod in self._pods_of(ds_key, node):
                self.kubelet.set_crash(pod, None)

    def flap_pod(self, ds_key: str, node: str, seconds: float = 15.0) -> None:
        with self._lock:
            for pod in self._pods_of(ds_key, node):
                self.kubelet.flap(pod, seconds)

    def fail_pod(self, ds_key: str, node: str, reason: str = "OutOfcpu") -> None:
        """Kubelet admission rejects the pod: phase Failed; the controller recreates with back-off."""
        with self._lock:
            for pod in self._pods_of(ds_key, node):
                resource = reason.removeprefix("OutOf") or "cpu"
                message = f"Pod was rejected: Node didn't have enough resource: {resource}"
                self.kubelet.fail(pod, reason, message)

    def delete_pod(self, ds_key: str, node: str) -> None:
        """`kubectl delete pod`: how OnDelete DaemonSets get updated."""
        with self._lock:
            for pod in self._pods_of(ds_key, node):
                self.kubelet.delete(pod)

    # ------------------------------------------------------------------ DaemonSets

    def _ds(self, key: str) -> DaemonSetState:
        ds = self.controller.daemonsets.get(key)
        if ds is None:
            raise KeyError(f"no DaemonSet {key!r}")
        return ds

    def add_daemonset(self, spec: Obj | str, crash_rate: float = 0.0) -> str:
        """A DaemonSet object (dict), or the name of one from the scenario catalog."""
        with self._lock:
            mode = "Error"
            if isinstance(spec, str):
                if spec not in self.catalog:
                    raise KeyError(
                        f"no DaemonSet {spec!r} in the catalog ({', '.join(self.catalog)})"
                    )
                obj, crash_rate, mode = self.catalog[spec]
                obj = copy.deepcopy(obj)
            else:
                obj = copy.deepcopy(spec)
                obj.setdefault("apiVersion", "apps/v1")
                obj.setdefault("kind", "DaemonSet")
                meta = obj["metadata"]
                meta.setdefault("namespace", "default")
                meta.setdefault("generation", 1)
                meta.setdefault("annotations", {}).setdefault(
                    "deprecated.daemonset.template.generation", "1"
                )
                obj.setdefault("status", {"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                                          "numberMisscheduled": 0, "numberReady": 0})  # fmt: skip
            key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            if key in self.controller.daemonsets:
                raise ValueError(f"DaemonSet {key} exists")
            self.controller.add(obj, crash_rate, mode)
            return key

    def delete_daemonset(self, ds_key: str) -> None:
        with self._lock:
            self._ds(ds_key)
            self.controller.remove(ds_key)

    def rollout(self, ds_key: str, image: str | None = None) -> None:
        """Change the template: a new image for the first container, or — like
        `kubectl rollout restart` — a restartedAt annotation."""
        with self._lock:
            ds = self._ds(ds_key)
            tmpl = ds.obj["spec"]["template"]
            meta, spec = tmpl["metadata"], tmpl["spec"]
            if image:
                containers = [{**spec["containers"][0], "image": image}, *spec["containers"][1:]]
                new = {**tmpl, "spec": {**spec, "containers": containers}}
            else:
                annotations = {**(meta.get("annotations") or {}),
                               "kubectl.kubernetes.io/restartedAt": rfc3339(self.t)}  # fmt: skip
                new = {**tmpl, "metadata": {**meta, "annotations": annotations}}
            self.controller.update_template(ds, new)

    def set_image_broken(self, image: str, broken: bool = True) -> None:
        """Pulls of `image` fail (not found) from now on — or succeed again."""
        with self._lock:
            (self.bad_images.add if broken else self.bad_images.discard)(image)
