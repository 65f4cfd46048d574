"""What the collectors and the connection checks need to know of a registered cluster,
detached from the ORM: a frozen value that crosses threads and compares cheaply (a changed
configuration restarts the cluster's collector)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the ORM model is only a type here: configs are built from rows elsewhere
    from dashboard.models import Cluster


def split_names(text: str) -> tuple[str, ...]:
    """ "a, b c" → ("a", "b", "c"): namespace lists are typed comma- or space-separated."""
    return tuple(dict.fromkeys(p for p in text.replace(",", " ").split() if p))


@dataclass(frozen=True)
class ClusterConfig:
    slug: str
    name: str
    source: str = "simulated"  # simulated | kubeconfig | uploaded | in-cluster
    scenario: str = "demo"
    nodes: int | None = None
    daemonsets: int | None = None
    seed: int = 1
    churn: float | None = None
    kubeconfig_path: str = ""
    context: str = ""
    group_by_label: str = ""
    # The uploaded kubeconfig, still encrypted: decrypted only when a client is built
    # (dashboard/clusters/target.py), and kept out of repr() so logging a config can never
    # print it.
    kubeconfig_encrypted: str = field(default="", repr=False)
    namespaces_include: tuple[str, ...] = ()
    namespaces_exclude: tuple[str, ...] = ()
    daemonset_selector: str = ""

    @property
    def single_namespace(self) -> str | None:
        """The one namespace to list and watch, when the scope is exactly one namespace:
        the API server then does the filtering (and RBAC may be namespace-scoped)."""
        included = [n for n in self.namespaces_include if n not in self.namespaces_exclude]
        return included[0] if len(self.namespaces_include) == 1 and included else None

    @classmethod
    def from_model(cls, cluster: Cluster, churn: float | None = None) -> ClusterConfig:
        return cls(
            slug=cluster.slug,
            name=cluster.name,
            source=cluster.source,
            scenario=cluster.scenario,
            nodes=cluster.sim_nodes,
            daemonsets=cluster.sim_daemonsets,
            seed=cluster.sim_seed,
            churn=churn,
            kubeconfig_path=cluster.kubeconfig_path,
            context=cluster.context,
            group_by_label=cluster.group_by_label,
            kubeconfig_encrypted=cluster.kubeconfig_encrypted,
            namespaces_include=split_names(cluster.namespaces_include),
            namespaces_exclude=split_names(cluster.namespaces_exclude),
            daemonset_selector=cluster.daemonset_selector.strip(),
        )
