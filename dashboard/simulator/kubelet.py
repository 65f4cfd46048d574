"""Pods over their life: scheduler bind, kubelet start-up, crash loops, pull errors, deletion.

Each pod is a small `PodState`; every change renders a *new* Pod dict for the store. A
pod has at most one pending timer: each transition bumps `token`, so a timer planned for
an older state simply finds its token stale and does nothing — which is how crash/fix,
flaps and node outages can re-plan a pod's future without cancelling anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .objects import PodBase, condition, go_duration, image_id, pod_spec, rfc3339

if TYPE_CHECKING:
    from .cluster import Simulator

Obj = dict[str, Any]

CRASH_BACKOFF_START, CRASH_BACKOFF_CAP = 10.0, 300.0  # kubelet: 10 s doubling to 5 min
PULL_BACKOFF_START, PULL_BACKOFF_CAP = 10.0, 300.0
CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


@dataclass(slots=True, eq=False)
class PodState:
    namespace: str
    name: str
    ds_key: str
    node: str
    base: PodBase
    created: float
    token_volume: str
    crash: str | None = None  # None, or the way container 0 dies: "Error" | "Completed"
    uid: str = ""
    spec: Obj = field(default_factory=dict)
    bound: bool = False
    stage: str = "pending"  # pending | creating | running | failed
    deletion: float | None = None
    failed_reason: tuple[str, str] | None = None
    start_time: float | None = None
    pod_ip: str = ""
    host_ip: str = ""
    conds: dict[str, tuple[str, float, str, str]] = field(default_factory=dict)
    containers: list[Obj] = field(default_factory=list)  # containerStatus dicts (immutable)
    init_statuses: list[Obj] | None = None
    ready_since: float | None = None
    restarts: int = 0
    pull_failures: int = 0
    flapping: bool = False
    node_down: bool = False
    token: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def hash(self) -> str:
        return self.base.hash

    @property
    def ready(self) -> bool:
        c = self.conds.get("Ready")
        return c is not None and c[0] == "True"

    @property
    def terminal(self) -> bool:
        return self.stage == "failed"


def _running(spec: Obj, cid: str, started: float, restarts: int, ready: bool, last: Obj) -> Obj:
    return {
        "containerID": cid,
        "image": spec["image"],
        "imageID": image_id(spec["image"]),
        "lastState": last,
        "name": spec["name"],
        "ready": ready,
        "restartCount": restarts,
        "started": True,
        "state": {"running": {"startedAt": rfc3339(started)}},
    }


def _waiting(spec: Obj, reason: str, message: str, restarts: int, last: Obj, cid: str = "") -> Obj:
    waiting: Obj = {"reason": reason}
    if message:
        waiting["message"] = message
    cs: Obj = {
        "image": spec["image"],
        "imageID": image_id(spec["image"]) if cid else "",
        "lastState": last,
        "name": spec["name"],
        "ready": False,
        "restartCount": restarts,
        "started": False,
        "state": {"waiting": waiting},
    }
    if cid:
        cs["containerID"] = cid
    return cs


def _terminated(reason: str, code: int, cid: str, started: str, finished: float) -> Obj:
    return {
        "containerID": cid,
        "exitCode": code,
        "finishedAt": rfc3339(finished),
        "reason": reason,
        "startedAt": started,
    }


class Kubelet:
    """Every node's kubelet, the scheduler's bind and pod GC, driven by simulated time."""

    def __init__(self, sim: Simulator):
        self.sim = sim

    # ------------------------------------------------------------------ plumbing

    def _plan(self, pod: PodState, delay: float, action: str) -> None:
        pod.token += 1
        self.sim.at(delay, self._fire, pod.key, pod.token, action)

    def _fire(self, key: tuple[str, str], token: int, action: str) -> None:
        pod = self.sim.pods.get(key)
        if pod is None or pod.token != token:
            return
        node = self.sim.nodes.get(pod.node)
        if pod.bound and action != "bind" and (node is None or node.ready == "Unknown"):
            # The kubelet is unreachable: nothing it does reaches the API server. Retry later.
            if node is not None:
                self.sim.at(5.0, self._fire, key, token, action)
            return
        getattr(self, "_" + action)(pod)

    def _cond(
        self, pod: PodState, kind: str, status: str, reason: str = "", message: str = ""
    ) -> None:
        old = pod.conds.get(kind)
        since = old[1] if old is not None and old[0] == status else self.sim.t
        pod.conds[kind] = (status, since, reason, message)

    def _sync_ready(self, pod: PodState) -> None:
        """ContainersReady/Ready follow the containers; the node lifecycle controller forces
        Ready=False on a node that is not Ready."""
        unready = [c["name"] for c in pod.containers if not c["ready"]]
        if pod.stage == "running" and not unready:
            self._cond(pod, "ContainersReady", "True")
            if pod.node_down:
                self._cond(pod, "Ready", "False")
            else:
                self._cond(pod, "Ready", "True")
        else:
            msg = f"containers with unready status: [{' '.join(unready)}]"
            self._cond(pod, "ContainersReady", "False", "ContainersNotReady", msg)
            self._cond(pod, "Ready", "False", "ContainersNotReady", msg)
        ready = pod.ready
        if ready and pod.ready_since is None:
            pod.ready_since = self.sim.t
        elif not ready:
            pod.ready_since = None

    def render(self, pod: PodState) -> Obj:
        base = pod.base
        meta: Obj = {
            "creationTimestamp": rfc3339(pod.created),
            "generateName": base.generate_name,
            "labels": base.labels,
            "name": pod.name,
            "namespace": pod.namespace,
            "ownerReferences": base.owner,
        }
        if base.annotations:
            meta["annotations"] = base.annotations
        if pod.uid:
            meta["uid"] = pod.uid
        if pod.deletion is not None:
            grace = base.spec.get("terminationGracePeriodSeconds", 30)
            meta["deletionGracePeriodSeconds"] = grace
            meta["deletionTimestamp"] = rfc3339(pod.deletion + grace)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod.spec,
                "status": self._status(pod)}  # fmt: skip

    def _status(self, pod: PodState) -> Obj:
        status: Obj = {"phase": "Pending", "qosClass": pod.base.qos}
        if pod.conds:
            status["conditions"] = [
                condition(k, c[0], rfc3339(c[1]), c[2], c[3])
                for k in CONDITION_ORDER
                if (c := pod.conds.get(k)) is not None
            ]
        if pod.start_time is None:
            return status
        if pod.stage == "running":
            status["phase"] = "Running"
        elif pod.stage == "failed":
            status["phase"] = "Failed"
            status["reason"], status["message"] = pod.failed_reason or ("", "")
        status["containerStatuses"] = pod.containers
        if pod.init_statuses is not None:
            status["initContainerStatuses"] = pod.init_statuses
        status["hostIP"] = pod.host_ip
        status["hostIPs"] = [{"ip": pod.host_ip}]
        status["podIP"] = pod.pod_ip
        status["podIPs"] = [{"ip": pod.pod_ip}]
        status["startTime"] = rfc3339(pod.start_time)
        return status

    def write(self, pod: PodState) -> None:
        obj = self.sim.store.put("pods", self.render(pod))
        if not pod.uid:
            pod.uid = obj["metadata"]["uid"]
        self.sim.controller.pod_changed(pod)

    def _cid(self) -> str:
        return f"containerd://{self.sim.rng.getrandbits(256):064x}"

    # ------------------------------------------------------------------ creation

    def create(self, base: PodBase, ds_key: str, node: str, crash: str | None) -> PodState:
        """The DaemonSet controller's create: a pending pod the scheduler binds shortly."""
        sim = self.sim
        name = ""
        while not name or (base.namespace, name) in sim.pods:
            name = base.generate_name + sim.random_suffix()
        pod = PodState(base.namespace, name, ds_key, node, base, sim.t,
                       "kube-api-access-" + sim.random_suffix(), crash)  # fmt: skip
        pod.spec = pod_spec(base, node, pod.token_volume, bound=False)
        sim.index_pod(pod)
        self.write(pod)
        self._plan(pod, sim.rng.uniform(0.05, 0.5), "bind")
        return pod

    def _bind(self, pod: PodState) -> None:
        node = self.sim.nodes.get(pod.node)
        if node is None:
            # The target node is gone; the DaemonSet controller deletes unscheduled pods.
            total = len(self.sim.nodes)
            self._cond(pod, "PodScheduled", "False", "Unschedulable",
                       f"0/{total} nodes are available: {total} node(s) didn't match Pod's "
                       "node affinity/selector. preemption: 0/{total} nodes are available: "
                       f"{total} Preemption is not helpful for scheduling.")  # fmt: skip
            self.write(pod)
            return
        pod.bound = True
        pod.spec = {**pod.spec, "nodeName": pod.node}
        self._cond(pod, "PodScheduled", "True")
        self.write(pod)
        self._plan(pod, self.sim.rng.uniform(0.3, 1.5), "admit")

    def _admit(self, pod: PodState) -> None:
        node = self.sim.nodes[pod.node]
        pod.stage = "creating"
        pod.start_time = self.sim.t
        pod.host_ip = node.ip
        pod.pod_ip = node.next_pod_ip(pod.base.host_network)
        inits = pod.base.init_containers
        self._cond(pod, "PodReadyToStartContainers", "False")
        if inits:
            names = " ".join(c["name"] for c in inits)
            self._cond(pod, "Initialized", "False", "ContainersNotInitialized",
                       f"containers with incomplete status: [{names}]")  # fmt: skip
            pod.init_statuses = [_waiting(c, "PodInitializing", "", 0, {}) for c in inits]
            waiting = "PodInitializing"
        else:
            self._cond(pod, "Initialized", "True")
            waiting = "ContainerCreating"
        pod.containers = [_waiting(c, waiting, "", 0, {}) for c in pod.base.containers]
        self._sync_ready(pod)
        self.write(pod)
        self._plan(pod, self.sim.rng.uniform(2.0, 6.0), "start")  # sandbox, volumes, pulls

    def _start(self, pod: PodState) -> None:
        sim = self.sim
        bad = next((c["image"] for c in pod.base.containers if c["image"] in sim.bad_images), None)
        if bad is not None:
            self._pull_error(pod, bad)
            return
        now = sim.t
        self._cond(pod, "PodReadyToStartContainers", "True")
        if pod.base.init_containers:
            pod.init_statuses = [
                {**_running(c, self._cid(), now - 1, 0, True, {}), "started": False,
                 "state": {"terminated": _terminated("Completed", 0, "", rfc3339(now - 1), now)}}
                for c in pod.base.init_containers
            ]  # fmt: skip
            for s in pod.init_statuses:
                s["state"]["terminated"]["containerID"] = s["containerID"]
            self._cond(pod, "Initialized", "True")
        pod.stage = "running"
        pod.containers = [_running(c, self._cid(), now, 0, False, {}) for c in pod.base.containers]
        self._sync_ready(pod)
        self.write(pod)
        self._plan_run(pod)

    def _plan_run(self, pod: PodState) -> None:
        """A fresh container 0: readiness after a probe period, or a crash first."""
        rng = self.sim.rng
        if pod.crash is not None and rng.random() < 0.6:
            self._plan(pod, rng.uniform(1.0, 2.5), "crash")  # dies before its first probe
        else:
            self._plan(pod, rng.uniform(2.0, 5.0), "ready")

    def _ready(self, pod: PodState) -> None:
        if pod.stage != "running":
            return
        pod.flapping = False
        pod.containers = [
            c if c["ready"] or "running" not in c["state"] else {**c, "ready": True}
            for c in pod.containers
        ]
        self._sync_ready(pod)
        self.write(pod)
        if pod.crash is not None:
            self._plan(pod, self.sim.rng.uniform(3.0, 25.0), "crash")

    # ------------------------------------------------------------------ faults

    def _crash(self, pod: PodState) -> None:
        if pod.stage != "running" or pod.crash is None:
            return
        c0 = pod.containers[0]
        if "running" not in c0["state"]:
            return
        code = 0 if pod.crash == "Completed" else 1
        term = _terminated(pod.crash, code, c0["containerID"],
                           c0["state"]["running"]["startedAt"], self.sim.t)  # fmt: skip
        pod.containers = [{**c0, "ready": False, "started": False, "state": {"terminated": term}},
                          *pod.containers[1:]]  # fmt: skip
        self._sync_ready(pod)
        self.write(pod)
        self._plan(pod, self.sim.rng.uniform(0.5, 1.5), "backoff")

    def _backoff(self, pod: PodState) -> None:
        c0 = pod.containers[0]
        term = c0["state"].get("terminated")
        if term is None:
            return
        pod.restarts += 1
        delay = min(CRASH_BACKOFF_START * 2 ** (pod.restarts - 1), CRASH_BACKOFF_CAP)
        spec = pod.base.containers[0]
        msg = (f"back-off {go_duration(delay)} restarting failed container={spec['name']} "
               f"pod={pod.name}_{pod.namespace}({pod.uid})")  # fmt: skip
        pod.containers = [
            _waiting(spec, "CrashLoopBackOff", msg, pod.restarts, {"terminated": term},
                     c0["containerID"]),
            *pod.containers[1:],
        ]  # fmt: skip
        self._sync_ready(pod)
        self.write(pod)
        self._plan(pod, delay, "restart")

    def _restart(self, pod: PodState) -> None:
        c0 = pod.containers[0]
        spec = pod.base.containers[0]
        pod.containers = [
            _running(spec, self._cid(), self.sim.t, pod.restarts, False, c0["lastState"]),
            *pod.containers[1:],
        ]
        self._sync_ready(pod)
        self.write(pod)
        self._plan_run(pod)

    def _pull_error(self, pod: PodState, image: str) -> None:
        msg = (f'failed to pull and unpack image "{image}": failed to resolve reference '
               f'"{image}": {image}: not found')  # fmt: skip
        pod.containers = [
            _waiting(c, "ErrImagePull", f"rpc error: code = NotFound desc = {msg}", 0, {})
            if c["image"] == image
            else _waiting(c, "ContainerCreating", "", 0, {})
            for c in pod.base.containers
        ]
        self._sync_ready(pod)
        self.write(pod)
        self._plan(pod, self.sim.rng.uniform(1.0, 3.0), "pull_backoff")

    def _pull_backoff(self, pod: PodState) -> None:
        pod.pull_failures += 1
        pod.containers = [
            {**c, "state": {"waiting": {"reason": "ImagePullBackOff",
                                        "message": f'Back-off pulling image "{c["image"]}"'}}}
            if c["state"].get("waiting", {}).get("reason") == "ErrImagePull"
            else c
            for c in pod.containers
        ]  # fmt: skip
        self.write(pod)
        delay = min(PULL_BACKOFF_START * 2 ** (pod.pull_failures - 1), PULL_BACKOFF_CAP)
        self._plan(pod, delay, "start")

    def set_crash(self, pod: PodState, mode: str | None) -> None:
        """Start (mode = "Error"/"Completed") or stop (None) a crash loop of container 0."""
        pod.crash = mode
        if pod.stage != "running" or pod.deletion is not None:
            return
        state = pod.containers[0]["state"]
        if mode is not None and "running" in state:
            self._plan(pod, self.sim.rng.uniform(0.5, 3.0), "crash")
        # When fixed while waiting in back-off, the pending restart brings it up healthy.

    def flap(self, pod: PodState, seconds: float) -> None:
        """A readiness probe fails for a while: Ready=False, container still running."""
        if pod.stage != "running" or not pod.ready or pod.deletion is not None:
            return
        pod.flapping = True
        pod.containers = [{**pod.containers[0], "ready": False}, *pod.containers[1:]]
        self._sync_ready(pod)
        self.write(pod)
        self._plan(pod, seconds, "ready")

    def fail(self, pod: PodState, reason: str, message: str) -> None:
        """Kubelet admission rejects the pod (OutOfcpu, NodeAffinity, …): phase Failed."""
        now = self.sim.t
        pod.stage = "failed"
        pod.failed_reason = (reason, message)
        pod.start_time = pod.start_time or now
        pod.containers = [_waiting(c, "ContainerCreating", "", 0, {}) for c in pod.base.containers]
        self._sync_ready(pod)
        self.write(pod)
        pod.token += 1  # nothing more happens to it until the controller deletes it

    # ------------------------------------------------------------------ node health

    def node_health(self, pod: PodState, down: bool) -> None:
        if pod.node_down == down:
            return
        pod.node_down = down
        self._sync_ready(pod)
        self.write(pod)

    # ------------------------------------------------------------------ deletion

    def delete(self, pod: PodState, graceful: bool = True) -> None:
        """Graceful deletion (Terminating for a moment), or immediate for unbound pods and
        for force deletes (pod GC of a vanished node)."""
        if not graceful or not pod.bound:
            self.remove(pod)
            return
        if pod.deletion is not None:
            return
        pod.deletion = self.sim.t
        self.write(pod)
        # Running containers get SIGTERM and a moment to exit; a Failed pod has none left.
        delay = self.sim.rng.uniform(0.1, 0.5) if pod.terminal else self.sim.rng.uniform(1.0, 4.0)
        self._plan(pod, delay, "remove")

    def _remove(self, pod: PodState) -> None:
        self.remove(pod)

    def remove(self, pod: PodState) -> None:
        sim = self.sim
        pod.token += 1
        sim.store.delete("pods", pod.namespace, pod.name)
        sim.unindex_pod(pod)
        sim.controller.pod_changed(pod)

    # ------------------------------------------------------------------ settled start

    def settled(
        self, base: PodBase, ds_key: str, node: str, created: float, crash: str | None
    ) -> PodState:
        """A pod that has been running for a while, written in one go (initial state only):
        simulating every transition for 150,000 pods would take minutes."""
        sim = self.sim
        rng = sim.rng
        name = ""
        while not name or (base.namespace, name) in sim.pods:
            name = base.generate_name + sim.random_suffix()
        pod = PodState(base.namespace, name, ds_key, node, base, created,
                       "kube-api-access-" + sim.random_suffix(), crash)  # fmt: skip
        nstate = sim.nodes[node]
        pod.bound = True
        pod.spec = pod_spec(base, node, pod.token_volume, bound=True)
        pod.host_ip = nstate.ip
        pod.pod_ip = nstate.next_pod_ip(base.host_network)
        scheduled, started = created + 1, created + rng.uniform(3, 8)
        pod.start_time = scheduled
        for kind in ("PodReadyToStartContainers", "Initialized", "PodScheduled"):
            pod.conds[kind] = ("True", scheduled if kind == "PodScheduled" else started, "", "")
        if base.init_containers:
            pod.init_statuses = [
                {**_running(c, self._cid(), scheduled, 0, True, {}), "started": False,
                 "state": {"terminated": _terminated("Completed", 0, "", rfc3339(scheduled), started)}}
                for c in base.init_containers
            ]  # fmt: skip
        pod.stage = "running"
        bad = next((c["image"] for c in base.containers if c["image"] in sim.bad_images), None)
        if bad is not None:
            pod.stage = "creating"
            pod.conds["PodReadyToStartContainers"] = ("False", scheduled, "", "")
            pod.containers = [_waiting(c, "ContainerCreating", "", 0, {}) for c in base.containers]
            pod.pull_failures = rng.randint(3, 8)
            pod.containers = [
                {**cs, "state": {"waiting": {"reason": "ImagePullBackOff",
                                             "message": f'Back-off pulling image "{bad}"'}}}
                if cs["image"] == bad else cs
                for cs in pod.containers
            ]  # fmt: skip
        else:
            pod.containers = [
                _running(c, self._cid(), started, 0, True, {}) for c in base.containers
            ]
        self._sync_ready(pod)
        # Backdate readiness: it has been Ready since shortly after it started.
        if pod.ready:
            for kind in ("Ready", "ContainersReady"):
                pod.conds[kind] = ("True", started + 2, "", "")
            pod.ready_since = started + 2
        sim.index_pod(pod)
        if crash is not None and bad is None:
            # Mid crash loop: a few restarts behind it, waiting out a back-off.
            pod.restarts = rng.randint(2, 12)
            spec = base.containers[0]
            c0 = pod.containers[0]
            finished = sim.t - rng.uniform(5, 250)
            term = _terminated(crash, 0 if crash == "Completed" else 1, c0["containerID"],
                               rfc3339(finished - rng.uniform(1, 20)), finished)  # fmt: skip
            pod.uid = ""  # the back-off message names the uid: write once to learn it
            pod.containers = [{**c0, "ready": False, "started": False,
                               "state": {"terminated": term}}, *pod.containers[1:]]  # fmt: skip
            self._sync_ready(pod)
            obj = sim.store.put("pods", self.render(pod))
            pod.uid = obj["metadata"]["uid"]
            pod.containers = [
                _waiting(spec, "CrashLoopBackOff",
                         f"back-off {go_duration(CRASH_BACKOFF_CAP)} restarting failed "
                         f"container={spec['name']} pod={pod.name}_{pod.namespace}({pod.uid})",
                         pod.restarts, {"terminated": term}, c0["containerID"]),
                *pod.containers[1:],
            ]  # fmt: skip
            self._plan(pod, rng.uniform(0, CRASH_BACKOFF_CAP - (sim.t - finished)), "restart")
        elif bad is not None:
            self._plan(pod, rng.uniform(0, PULL_BACKOFF_CAP), "start")
        obj = sim.store.put("pods", self.render(pod))
        pod.uid = obj["metadata"]["uid"]
        return pod
