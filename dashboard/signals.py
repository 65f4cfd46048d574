"""Model changes that running parts of the app must hear about.

Cluster rows → the embedded collectors reconcile (start, restart, stop) without a restart.
Wall displays → their open sockets re-check their token and clusters (`wall.changed`), or
close at once when the token is revoked, rotated or the display deleted (`wall.revoked`).
Both act on commit: the loop must read what the admin's transaction wrote.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from dashboard import access
from dashboard.models import Cluster, WallDisplay
from dashboard.pipeline import embedded


def _reconcile_collectors() -> None:
    embedded.request_reconcile()


@receiver(post_save, sender=Cluster)
@receiver(post_delete, sender=Cluster)
def cluster_changed(sender: type[Cluster], instance: Cluster, **kwargs: Any) -> None:
    transaction.on_commit(_reconcile_collectors)
    if kwargs.get("created") is False:
        # A renamed slug or a disabled cluster changes what its walls' sockets listen to.
        for wall_id in instance.wall_displays.values_list("pk", flat=True):
            access.notify_wall(wall_id, access.WALL_CHANGED)


@receiver(post_save, sender=WallDisplay)
def wall_saved(sender: type[WallDisplay], instance: WallDisplay, **kwargs: Any) -> None:
    access.notify_wall(instance.pk, access.WALL_CHANGED)


@receiver(m2m_changed, sender=WallDisplay.clusters.through)
def wall_clusters_changed(
    sender: type[models.Model], instance: WallDisplay | Cluster, action: str, **kwargs: Any
) -> None:
    if not action.startswith("post_"):
        return
    if isinstance(instance, WallDisplay):
        access.notify_wall(instance.pk, access.WALL_CHANGED)
    else:  # cluster.wall_displays.add(...): pk_set holds wall display ids
        for wall_id in kwargs.get("pk_set") or ():
            access.notify_wall(wall_id, access.WALL_CHANGED)


@receiver(post_delete, sender=WallDisplay)
def wall_deleted(sender: type[WallDisplay], instance: WallDisplay, **kwargs: Any) -> None:
    access.notify_wall(instance.pk, access.WALL_REVOKED)
