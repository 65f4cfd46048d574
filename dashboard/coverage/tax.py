"""The "DaemonSet tax": what daemons request on each node, against its allocatable, and
whether a pool has room for one more daemon.

Every node pays for its daemons before any workload lands on it. Per node: the requests of
the daemon pods bound to it (capacity.Load keeps them apart from the other pods) and its
allocatable; per pool (grouping.node_pool): the sums, and which nodes have less free than
a daemon of a given size needs — the scheduler would leave that daemon Pending there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .grouping import natural_key, node_pool
from .quantity import format_milli, parse_milli

if TYPE_CHECKING:
    from .matrix import Matrix

# What the tax is told in: the resources every daemon asks for. Others (GPUs, hugepages)
# appear when daemons request them.
MAIN_RESOURCES = ("cpu", "memory")
NO_POOL = "(no pool)"


@dataclass(frozen=True)
class NodeTax:
    name: str
    pool: str
    allocatable: dict[str, int]
    daemon_requests: dict[str, int]
    requested: dict[str, int]  # every non-terminal pod's, daemons included
    daemon_pods: int
    pods: int

    def share(self, resource: str) -> float | None:
        """The daemons' part of the allocatable, in percent (None: none allocatable)."""
        have = self.allocatable.get(resource, 0)
        if have <= 0:
            return None
        return 100.0 * self.daemon_requests.get(resource, 0) / have

    def free(self, resource: str) -> int:
        used = self.pods * 1000 if resource == "pods" else self.requested.get(resource, 0)
        return self.allocatable.get(resource, 0) - used

    @property
    def resources(self) -> list[str]:
        extra = sorted(r for r in self.daemon_requests if r not in MAIN_RESOURCES)
        return [r for r in MAIN_RESOURCES if r in self.allocatable] + extra

    @property
    def worst_share(self) -> float | None:
        shares = [s for r in self.resources if (s := self.share(r)) is not None]
        return max(shares) if shares else None

    def summary(self) -> str:
        """`daemons (7 pods) request cpu 350m of 4 (8.8%), memory 512Mi of 16Gi (3.1%)`"""
        parts = []
        for r in self.resources:
            share = self.share(r)
            parts.append(
                f"{r} {format_milli(r, self.daemon_requests.get(r, 0))} of "
                f"{format_milli(r, self.allocatable.get(r, 0))}"
                + (f" ({share:.1f}%)" if share is not None else "")
            )
        pods = "pod" if self.daemon_pods == 1 else "pods"
        return f"daemons ({self.daemon_pods} {pods}) request " + (", ".join(parts) or "nothing")


def node_tax(matrix: Matrix, name: str) -> NodeTax:
    node = matrix.nodes[name]
    load = matrix.load.by_node.get(name)
    return NodeTax(
        name=name,
        pool=node_pool(node.labels) or NO_POOL,
        allocatable=dict(node.allocatable),
        daemon_requests={r: v for r, v in (load.daemon_requested if load else {}).items() if v},
        requested={r: v for r, v in (load.requested if load else {}).items() if v},
        daemon_pods=load.daemon_pods if load else 0,
        pods=load.pods if load else 0,
    )


def compact(tax: NodeTax) -> str:
    """The row head's word: the daemons' largest share of any resource, e.g. `9%`."""
    worst = tax.worst_share
    if worst is None or not tax.daemon_requests:
        return ""
    return f"{worst:.0f}%" if worst >= 1 else "<1%"


@dataclass
class PoolTax:
    pool: str
    nodes: list[str] = field(default_factory=list)
    allocatable: dict[str, int] = field(default_factory=dict)
    daemon_requests: dict[str, int] = field(default_factory=dict)
    # The least free of each resource on any of its nodes: the biggest daemon that fits
    # on every node of the pool.
    room: dict[str, int] = field(default_factory=dict)
    # Nodes with too little free for one more daemon of the size asked about.
    without_room: list[str] = field(default_factory=list)

    def share(self, resource: str) -> float | None:
        have = self.allocatable.get(resource, 0)
        return 100.0 * self.daemon_requests.get(resource, 0) / have if have > 0 else None


def parse_size(text: str) -> dict[str, int]:
    """`cpu=200m,memory=256Mi` → thousandths by resource; ValueError names the bad part."""
    size: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        resource, sep, quantity = part.partition("=")
        if not sep or not resource.strip():
            raise ValueError(f"{part!r} is not resource=quantity (e.g. cpu=200m,memory=256Mi)")
        try:
            size[resource.strip()] = parse_milli(quantity.strip())
        except ValueError:
            raise ValueError(f"{quantity.strip()!r} is not a quantity (e.g. 200m, 256Mi)") from None
    return size


def format_size(size: Mapping[str, int]) -> str:
    return ",".join(f"{r}={format_milli(r, v)}" for r, v in sorted(size.items()))


def largest_daemon(matrix: Matrix) -> dict[str, int]:
    """The requests of the largest daemon pod running now (by cpu, then memory): the
    default size of "one more daemon"."""
    best: tuple[int, int] = (0, 0)
    size: dict[str, int] = {}
    for pod in matrix.pods.values():
        req = dict(pod.requests)
        rank = (req.get("cpu", 0), req.get("memory", 0))
        if rank > best:
            best, size = rank, req
    return size


def fits(tax: NodeTax, size: Mapping[str, int]) -> bool:
    return all(tax.free(r) >= v for r, v in size.items() if v > 0)


def pool_taxes(matrix: Matrix, size: Mapping[str, int] | None = None) -> list[PoolTax]:
    """Every pool's tax, by pool name; `without_room` filled when a size is given."""
    pools: dict[str, PoolTax] = {}
    for name in sorted(matrix.nodes, key=natural_key):
        tax = node_tax(matrix, name)
        pool = pools.setdefault(tax.pool, PoolTax(tax.pool))
        pool.nodes.append(name)
        for r, v in tax.allocatable.items():
            pool.allocatable[r] = pool.allocatable.get(r, 0) + v
        for r, v in tax.daemon_requests.items():
            pool.daemon_requests[r] = pool.daemon_requests.get(r, 0) + v
        for r in tax.allocatable:
            free = tax.free(r)
            pool.room[r] = min(pool.room.get(r, free), free)
        if size and not fits(tax, size):
            pool.without_room.append(name)
    return [pools[k] for k in sorted(pools, key=natural_key)]


def amounts_json(amounts: Mapping[str, int]) -> dict[str, str]:
    """Quantities as kubectl writes them, by resource (the coverage JSON's form)."""
    return {r: format_milli(r, v) for r, v in sorted(amounts.items())}
