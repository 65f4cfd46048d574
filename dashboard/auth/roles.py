"""Roles from the identity provider's groups, for OIDC and the auth proxy alike.

An admin group makes the user staff and superuser (the admin panel, dashboard/access.py);
a viewer group an active non-staff user; neither an inactive user, who is shown the
"no access" page and sees no data (every page and socket checks `is_active`). Roles are
set again at every sign-in, so a group change takes effect at the next one, and nothing
but an admin group ever grants staff.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from django.conf import settings
from django.contrib.auth.models import AbstractUser

Role = Literal["admin", "viewer"]


def groups_from(value: object) -> set[str]:
    """The groups of a claim or header: a list of names, or one comma-separated string."""
    if isinstance(value, str):
        return {part.strip() for part in value.split(",") if part.strip()}
    if isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        return {item for item in value if isinstance(item, str) and item}
    return set()


def role_for(groups: set[str]) -> Role | None:
    if groups & set(settings.DAEMONVIZ_ADMIN_GROUPS):
        return "admin"
    if groups & set(settings.DAEMONVIZ_VIEWER_GROUPS):
        return "viewer"
    return None


def apply_role(user: AbstractUser, role: Role | None) -> None:
    """Set the user's flags for `role` (the caller saves)."""
    user.is_staff = user.is_superuser = role == "admin"
    user.is_active = role is not None
