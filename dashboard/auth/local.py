"""Password sign-in. With DAEMONVIZ_LOCAL_LOGIN=false only break-glass admins
(`manage.py breakglass NAME`, members of the BREAK_GLASS_GROUP) may still use a password:
the way in when the identity provider is down or misconfigured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

BREAK_GLASS_GROUP = "daemonviz-break-glass"


def is_break_glass(user: Any) -> bool:
    return bool(user.groups.filter(name=BREAK_GLASS_GROUP).exists())


class LocalPasswordBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return bool(settings.DAEMONVIZ_LOCAL_LOGIN) or is_break_glass(user)
