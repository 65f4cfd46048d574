"""Who may see what: sign-in roles and wall display tokens.

Roles. A *viewer* is any active user: every dashboard page and socket, read-only. An
*admin* is a staff user: the Django admin as well (which checks `is_staff` itself). There
is nothing in between on purpose — the dashboard never writes to clusters, so the only
privileged thing is the admin panel.

Wall tokens. A wall display is reached by `/wall/<token>/` without signing in (a TV has no
keyboard). The token is `secrets.token_urlsafe(32)` (256 bits) and only its SHA-256 is
stored: it is shown once to the admin who creates or rotates it, and a database leak does
not expose a live wall URL. A plain fast hash is enough — with 256 bits of entropy there is
nothing to brute-force, and a slow KDF would only slow every reconnecting TV. A token grants
exactly its display's clusters' wall page and socket: it is never turned into a session,
so it opens no other page.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import TypeGuard

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from dashboard.models import Cluster, WallDisplay

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")

# Channel-layer messages to a wall display's group (handled by consumers.WallConsumer).
WALL_REVOKED = "wall.revoked"  # close now: the token no longer works
WALL_CHANGED = "wall.changed"  # re-check the token and re-join the clusters' groups


# --------------------------------------------------------------------------- roles


def is_viewer(user: AbstractUser | AnonymousUser | None) -> TypeGuard[AbstractUser]:
    # True only for an authenticated (so not anonymous) user.
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_admin(user: AbstractUser | AnonymousUser | None) -> bool:
    return is_viewer(user) and bool(user.is_staff)


# Sent to a session's group when it signs out (dashboard/auth/signals.py): its sockets close.
SESSION_ENDED = "session.ended"


def session_group(session_key: str) -> str:
    # Hashed: group names travel through Redis, and a session key is a credential.
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


# --------------------------------------------------------------------------- wall tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def wall_for_token(token: str) -> WallDisplay | None:
    """The wall display this token opens, or None (unknown, revoked, rotated, malformed)."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
        return None
    # Looking up by hash is not a timing oracle worth worrying about: it could at most leak
    # bits of a SHA-256 digest, not of the token.
    return WallDisplay.objects.filter(token_hash=hash_token(token)).first()


def wall_clusters(wall: WallDisplay) -> list[Cluster]:
    """The clusters a wall shows: its own, enabled ones, in display order."""
    return list(wall.clusters.filter(enabled=True).order_by("display_order", "name"))


def issue_token(wall: WallDisplay) -> str:
    """Give `wall` a fresh token (create or rotate) and return it — the only time it exists
    in clear. Sockets opened with the previous token are closed."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    had_token = wall.token_hash is not None
    wall.token_hash = hash_token(token)
    wall.token_hint = token[:4]
    wall.token_created_at = timezone.now()
    wall.save(update_fields=["token_hash", "token_hint", "token_created_at"])
    if had_token:
        notify_wall(wall.pk, WALL_REVOKED)
    return token


def revoke(wall: WallDisplay) -> None:
    wall.token_hash = None
    wall.token_hint = ""
    wall.save(update_fields=["token_hash", "token_hint"])
    notify_wall(wall.pk, WALL_REVOKED)


def wall_group(wall_id: int) -> str:
    return f"wall.{wall_id}"


def notify_wall(wall_id: int, message_type: str) -> None:
    """Tell a wall display's open sockets, once the current transaction commits.

    Called from Django's sync code; async_to_sync runs the send on the ASGI event loop
    when there is one (the in-memory channel layer's queues live there)."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(wall_group(wall_id), {"type": message_type})

    transaction.on_commit(send)
