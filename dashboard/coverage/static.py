"""Static pods beside DaemonSets: daemons the kubelet runs from manifest files on the node,
which the API only mirrors (docs/access.md, "Static pods").

A mirror pod carries the `kubernetes.io/config.mirror` annotation and a controller
ownerReference to its Node; the kubelet names it `<manifest name>-<node name>`. Pods of one
manifest on different nodes form one column, named without the node suffix. There is no
desired set: a node without the pod is "absent", unless every other node of its role runs
one (then the one missing here is worth a look: "missing").
"""

from __future__ import annotations

import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from msgspec import Struct

from .access import APP_LABELS
from .cells import Cell
from .records import DaemonSet, Node, Pod
from .states import CONFIG_REASONS, IMAGE_REASONS, State

if TYPE_CHECKING:
    from .matrix import Matrix

ROLE_PREFIX = "node-role.kubernetes.io/"
STATIC_KIND = "StaticPod"


def component_of(pod: Pod) -> str:
    """The manifest's name: the pod's name without the `-<node name>` suffix the kubelet
    appends (node names may hold dots and dashes; the kubelet lowercases them)."""
    suffix = "-" + pod.node.lower()
    if pod.node and pod.name.endswith(suffix) and len(pod.name) > len(suffix):
        return pod.name[: -len(suffix)]
    return pod.name


def role_of(node: Node) -> str:
    roles = sorted(k[len(ROLE_PREFIX) :] for k in node.labels if k.startswith(ROLE_PREFIX))
    return ",".join(r for r in roles if r) or ""


def role_word(role: str) -> str:
    return f"{role} node" if role else "node without a role label"


class StaticColumn(Struct, frozen=True):
    namespace: str
    name: str  # the component: the pod name without the node suffix
    cells: dict[str, Cell]  # node -> cell (every node of the matrix)
    pods: dict[str, Pod]  # node -> the mirror pod there
    images: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def classify_static(pod: Pod) -> Cell:
    """A mirror pod's state, with the same words as a daemon cell (no desired set, no
    revision: a static pod is changed by editing its file)."""
    problem = pod.problem
    if pod.deleting:
        state, reason = State.TERMINATING, "mirror pod is being deleted"
    elif pod.phase in ("Failed", "Succeeded"):
        state, reason = State.FAILED, f"static pod {pod.phase.lower()}"
    elif pod.crash_looping:
        t = pod.last_termination
        last = f"last {t.reason} (exit {t.exit_code})" if t else "no exit recorded"
        state, reason = State.CRASH_LOOPING, f"CrashLoopBackOff, {last}, {pod.restarts} restarts"
    elif problem is not None and problem.reason in IMAGE_REASONS:
        state, reason = State.IMAGE_ERROR, f"container {problem.container}: {problem.reason}"
    elif problem is not None and problem.reason in CONFIG_REASONS:
        state, reason = State.CONFIG_ERROR, f"container {problem.container}: {problem.reason}"
    elif pod.phase == "Pending" or not pod.initialized:
        state, reason = State.STARTING, f"starting: {pod.status_word}"
    elif not pod.ready:
        state, reason = State.NOT_READY, "running but not Ready"
    else:
        state = State.HEALTHY
        reason = f"running, ready, {pod.restarts} restarts" if pod.restarts else "running, ready"
    return Cell(
        state,
        "static: managed by the kubelet from a manifest file; " + reason,
        False,
        pod=pod.name,
        pods=1,
        status_word=pod.status_word,
        ready_containers=f"{pod.ready_containers}/{pod.total_containers}",
        restarts=pod.restarts,
        last_termination=pod.last_termination,
        ready=pod.ready,
        available=pod.ready,
    )


def static_columns(nodes: Mapping[str, Node], mirror_pods: Iterable[Pod]) -> list[StaticColumn]:
    """One column per (namespace, component), sorted; a cell for every node."""
    grouped: defaultdict[tuple[str, str], dict[str, Pod]] = defaultdict(dict)
    for pod in mirror_pods:
        if pod.node in nodes:
            grouped[(pod.namespace, component_of(pod))][pod.node] = pod
    # Each node's role once, and per role how many nodes it has: a delta of a 1,000-node
    # cluster rebuilds these columns (the wall's payload), and comparing every node
    # without the pod with every peer of its role was O(nodes²) per column.
    role = {name: role_of(node) for name, node in nodes.items()}
    role_size = Counter(role.values())
    columns = []
    for (namespace, component), pods in sorted(grouped.items()):
        with_pod = Counter(role[name] for name in pods)
        cells: dict[str, Cell] = {}
        for name in nodes:
            here = pods.get(name)
            if here is not None:
                cells[name] = classify_static(here)
                continue
            peers = role_size[role[name]] - 1
            # This node has none, so every peer has one exactly when they all count.
            if peers and with_pod[role[name]] == peers:
                cells[name] = Cell(
                    State.MISSING,
                    f"absent on this {role_word(role[name])} while present on the other {peers}",
                    False,
                )
            else:
                cells[name] = Cell(State.ABSENT, "no static pod of this manifest here", False)
        images = tuple(dict.fromkeys(i for p in pods.values() for i in p.images))
        columns.append(StaticColumn(namespace, component, cells, pods, images))
    return columns


# Per matrix, its static columns at a static generation (Matrix.static_generation).
_columns: weakref.WeakKeyDictionary[Matrix, tuple[int, list[StaticColumn]]] = (
    weakref.WeakKeyDictionary()
)


def columns_of(matrix: Matrix) -> list[StaticColumn]:
    """The matrix's static columns, rebuilt only when a mirror pod, the set of nodes or a
    node's labels changed (O(nodes × columns) to build; the wall's and the grid's part of
    every delta asked for them). Shared between callers: read them, never change them."""
    if not matrix.static_pods:
        return []
    cached = _columns.get(matrix)
    if cached is None or cached[0] != matrix.static_generation:
        cached = (
            matrix.static_generation,
            static_columns(matrix.nodes, matrix.static_pods.values()),
        )
        _columns[matrix] = cached
    return cached[1]


def duplicates(
    columns: Iterable[StaticColumn],
    daemonsets: Mapping[str, DaemonSet],
    pods_on: Mapping[tuple[str, str], list[Pod]],
) -> list[str]:
    """Daemons running twice on a node: a DaemonSet pod and a static pod of the same
    component (a kube-proxy DaemonSet beside a static kube-proxy). `pods_on` maps
    (node, DaemonSet key) to that cell's pods."""
    out = []
    for col in columns:
        for ds in daemonsets.values():
            names = {ds.name} | {
                v for k in (*APP_LABELS, "component") if (v := ds.template_labels.get(k))
            }
            if col.name not in names:
                continue
            for node, static in sorted(col.pods.items()):
                ds_pods = [p for p in pods_on.get((node, ds.key), []) if not p.deleting]
                if ds_pods:
                    out.append(
                        f"{col.name} runs twice on {node}: DaemonSet {ds.key} (pod "
                        f"{ds_pods[0].name}) and static pod {static.key}"
                    )
    return out
