"""Background churn: the everyday noise of a live cluster, at `rate` events per minute.

Events arrive as a Poisson process (exponential gaps from the seeded RNG). Each one is a
small story with its own ending scheduled: a pod crash-loops and is fixed minutes later,
a readiness probe flaps, a node goes NotReady/unreachable and comes back, a cordon is
lifted, a node joins or leaves (the count stays near where it started). Independently, a
rollout happens every few minutes.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

from .kubelet import PodState

if TYPE_CHECKING:
    from .cluster import Simulator

WEIGHTS = {
    "crash": 20,
    "flap": 25,
    "node_blip": 10,
    "cordon": 8,
    "pressure": 7,
    "join": 15,
    "leave": 15,
}


class Churn:
    def __init__(self, sim: Simulator, rate: float):
        self.sim = sim
        self.rate = rate
        self.target_nodes = 0
        # Joins grow a random worker's pool, leaves take any worker: a random walk in
        # which a small pool (the demo's three GPU nodes) would, given hours, die out for
        # good. Each pool keeps at least half the nodes it started with.
        self.pool_floor: dict[str, int] = {}
        self.busy: dict[str, None] = {}  # nodes in the middle of a story
        # OnDelete stories draw from their own generator: adding them left the seeded
        # sequence of every other event as it was.
        self.aside = random.Random(4021)

    def begin(self) -> None:
        if self.rate <= 0:
            return
        self.target_nodes = len(self.sim.nodes)
        started = Counter(state.pool.name for state in self.sim.nodes.values())
        self.pool_floor = {pool: max(1, count // 2) for pool, count in started.items()}
        self._next()
        self.sim.at(self.sim.rng.uniform(90, 240), self._rollout)
        self.sim.at(self.aside.uniform(45, 120), self._on_delete_rollout)

    def _next(self) -> None:
        self.sim.at(self.sim.rng.expovariate(self.rate / 60.0), self._event)

    def _event(self) -> None:
        self._next()
        rng = self.sim.rng
        kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        getattr(self, "_" + kind)()

    # ------------------------------------------------------------------ helpers

    def _worker(self) -> str | None:
        sim = self.sim
        names = [n for n in sim.nodes if n not in self.busy]
        if not names:
            return None
        name = sim.rng.choice(names)
        state = sim.nodes[name]
        if state.pool.role or state.ready != "True":
            return None
        return name

    def _pod(self, ready: bool) -> PodState | None:
        sim = self.sim
        name = self._worker()
        if name is None:
            return None
        pods = [p for p in sim.pods_on_node.get(name, {}).values()
                if p.stage == "running" and p.deletion is None and (p.ready or not ready)]  # fmt: skip
        return sim.rng.choice(pods) if pods else None

    def _release(self, name: str) -> None:
        self.busy.pop(name, None)

    # ------------------------------------------------------------------ stories

    def _crash(self) -> None:
        pod = self._pod(ready=True)
        if pod is None or pod.crash is not None:
            return
        rng = self.sim.rng
        self.sim.kubelet.set_crash(pod, rng.choice(("Error", "Error", "Completed")))
        self.sim.at(rng.uniform(60, 400), self._fix, pod.key)

    def _fix(self, key: tuple[str, str]) -> None:
        pod = self.sim.pods.get(key)
        if pod is not None:
            self.sim.kubelet.set_crash(pod, None)

    def _flap(self) -> None:
        pod = self._pod(ready=True)
        if pod is not None:
            self.sim.kubelet.flap(pod, self.sim.rng.uniform(5, 30))

    def _node_blip(self) -> None:
        name = self._worker()
        if name is None:
            return
        self.busy[name] = None
        status = self.sim.rng.choice(("False", "Unknown"))
        self.sim.set_node_ready(name, status)
        self.sim.at(self.sim.rng.uniform(20, 120), self._recover, name)

    def _recover(self, name: str) -> None:
        self._release(name)
        if name in self.sim.nodes:
            self.sim.set_node_ready(name, "True")

    def _cordon(self) -> None:
        name = self._worker()
        if name is None:
            return
        self.busy[name] = None
        self.sim.cordon(name, True)
        self.sim.at(self.sim.rng.uniform(30, 180), self._uncordon, name)

    def _uncordon(self, name: str) -> None:
        self._release(name)
        if name in self.sim.nodes:
            self.sim.cordon(name, False)

    def _pressure(self) -> None:
        name = self._worker()
        if name is None:
            return
        self.busy[name] = None
        kind = self.sim.rng.choice(("MemoryPressure", "DiskPressure", "PIDPressure"))
        self.sim.set_pressure(name, kind, True)
        self.sim.at(self.sim.rng.uniform(30, 120), self._relieve, name, kind)

    def _relieve(self, name: str, kind: str) -> None:
        self._release(name)
        if name in self.sim.nodes:
            self.sim.set_pressure(name, kind, False)

    def _join(self) -> None:
        if len(self.sim.nodes) >= self.target_nodes + 2:
            return self._leave_anyway()
        # Grow a pool in proportion to its size: pick the pool of a random worker.
        name = self._worker()
        if name is not None and self.sim.nodes[name].pool.os == "linux":
            self.sim.add_node(self.sim.nodes[name].pool.name)

    def _leave(self) -> None:
        if len(self.sim.nodes) <= self.target_nodes - 2:
            return self._join()
        self._leave_anyway()

    def _leave_anyway(self) -> None:
        name = self._worker()
        if name is None:
            return
        pool = self.sim.nodes[name].pool.name
        left = sum(1 for state in self.sim.nodes.values() if state.pool.name == pool)
        if left > self.pool_floor.get(pool, 1):
            self.sim.remove_node(name)

    def _rollout(self) -> None:
        sim = self.sim
        sim.at(sim.rng.uniform(150, 360), self._rollout)
        keys = [k for k, ds in sim.controller.daemonsets.items()
                if ds.rec.strategy == "RollingUpdate" and not ds.rollout]  # fmt: skip
        if keys:
            sim.rollout(sim.rng.choice(keys))

    def _on_delete_rollout(self) -> None:
        """An OnDelete DaemonSet gets a new template (revision N+1) and nothing happens
        until, now and then, someone deletes one of its pods: the demo shows the revision
        map and the nodes left on the old template (docs/revisions.md)."""
        sim, rng = self.sim, self.aside
        sim.at(rng.uniform(600, 1200), self._on_delete_rollout)
        keys = sorted(
            k for k, ds in sim.controller.daemonsets.items() if ds.rec.strategy == "OnDelete"
        )
        if not keys:
            return
        key = rng.choice(keys)
        sim.rollout(key)
        nodes = sorted(n for n, pods in sim.controller.daemonsets[key].pods.items() if pods)
        for i, node in enumerate(rng.sample(nodes, min(len(nodes) // 3, 3))):
            sim.at(rng.uniform(30, 90) * (i + 1), self._delete_pod, key, node)

    def _delete_pod(self, key: str, node: str) -> None:
        if key in self.sim.controller.daemonsets and node in self.sim.nodes:
            self.sim.delete_pod(key, node)
