"""How nodes are grouped, ordered and tallied for display: the pool and zone labels of the
common providers, the node's role, natural name order, and the proportion buckets a
collapsed group (grid) or a node group (wall) shows. One copy, used by the grid and the
wall alike."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .records import Node
from .states import State

# Pool labels of the common providers, in the order we prefer them for grouping.
POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "node.kubernetes.io/pool",
    "agentpool",
    "kubernetes.azure.com/agentpool",
)
ZONE_LABEL = "topology.kubernetes.io/zone"
ROLE_PREFIX = "node-role.kubernetes.io/"


def node_role(labels: Mapping[str, str]) -> str:
    roles = [k[len(ROLE_PREFIX) :] for k in labels if k.startswith(ROLE_PREFIX)]
    return ",".join(sorted(r for r in roles if r)) or labels.get("kubernetes.io/role", "")


def node_pool(labels: Mapping[str, str]) -> str:
    return next((labels[k] for k in POOL_LABELS if k in labels), "")


def default_group_label(nodes: Iterable[Node]) -> str:
    """The first pool label any node carries, else the zone label, else "" (no grouping)."""
    present: set[str] = set()
    candidates = (*POOL_LABELS, ZONE_LABEL)
    for node in nodes:
        present.update(k for k in candidates if k in node.labels)
        if POOL_LABELS[0] in present:
            break
    return next((k for k in candidates if k in present), "")


_DIGITS = re.compile(r"([0-9]+)")


def natural_key(name: str) -> list[str | int]:
    """node-2 before node-10: operators read names, not code points.

    Only ASCII digit runs count as numbers. `str.isdigit()` and `\\d` also accept other
    digits ("²", "٣"), which `int()` may then refuse: a node named `node-1²` must sort, not
    crash the grid. re.split puts the captured digit runs at the odd positions, so two keys
    always compare str with str and int with int.
    """
    parts: list[str | int] = _DIGITS.split(name)
    parts[1::2] = [int(t) for t in parts[1::2]]
    return parts


# A proportion bar's buckets, in drawing order; `proportion_bucket` maps a state to one.
BUCKETS = ("healthy", "outdated", "progressing", "bad", "idle")
_BAD = ("failing", "missing", "misscheduled")


def proportion_bucket(state: State) -> int:
    """The index in BUCKETS a cell of this state is tallied under."""
    return BUCKETS.index("bad" if state.bucket in _BAD else state.bucket)
