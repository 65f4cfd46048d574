"""Which clusters should have a collector, and how a collector is made: shared by the
embedded default (embedded.py) and `manage.py collect` (supervisor.py)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from dashboard.clusters.config import ClusterConfig
from dashboard.models import Cluster

from .collector import ClusterCollector

# Builds the collector of one cluster, wired to its payload builder, publisher and
# listeners (dashboard/pipeline.py); the collect package itself renders nothing.
CollectorFactory = Callable[[ClusterConfig], ClusterCollector]


def enabled_clusters() -> dict[str, ClusterConfig]:
    """The configuration of every enabled cluster, by slug (a database read)."""
    churn = getattr(settings, "DAEMONVIZ_SIM_CHURN", None)
    return {
        c.slug: ClusterConfig.from_model(c, churn=churn)
        for c in Cluster.objects.filter(enabled=True)
    }
