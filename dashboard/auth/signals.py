"""A signed-out session's websockets close: every dashboard socket joins its session's
group (dashboard/access.session_group) and is told here when that session signs out."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from dashboard import access


@receiver(user_logged_out)
def close_session_sockets(sender: Any, request: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    layer = get_channel_layer()
    if key and layer is not None:
        async_to_sync(layer.group_send)(access.session_group(key), {"type": access.SESSION_ENDED})
