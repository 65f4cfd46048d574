"""Auth-proxy header mode (opt-in): oauth2-proxy or an authenticating ingress in front
signs the user in and passes the user name (DAEMONVIZ_AUTH_PROXY_HEADER) and, optionally,
the groups (DAEMONVIZ_AUTH_PROXY_GROUPS_HEADER, comma-separated).

The header is believed only from the proxies' addresses (DAEMONVIZ_AUTH_PROXY_TRUSTED,
CIDRs) — the socket peer, REMOTE_ADDR — because anyone who can reach the server directly
can send any header. From anywhere else it is removed from the request and logged. Roles
follow the groups like OIDC's (roles.py) and are set when the session signs in; a trusted
request without the header ends a session the proxy started.

Not Django's RemoteUserMiddleware: it would believe the header from any address.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.backends import RemoteUserBackend
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.auth import roles

log = logging.getLogger(__name__)
BACKEND = "dashboard.auth.proxy.ProxyHeaderBackend"


def meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def trusted_peer(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in net for net in settings.DAEMONVIZ_AUTH_PROXY_TRUSTED)


class ProxyHeaderBackend(RemoteUserBackend):
    """Users named by a trusted proxy; created on first sight, without a password."""

    def authenticate(  # type: ignore[override]  # Django's RemoteUserBackend signature
        self, request: Any, remote_user: str | None = None, **kwargs: Any
    ) -> Any:
        # Only the middleware passes `remote_user`; a password sign-in never reaches here.
        if request is None or not remote_user or len(remote_user) > 150:
            return None
        return super().authenticate(request, remote_user)

    def configure_user(self, request: Any, user: Any, created: bool = True) -> Any:
        if created:
            user.set_unusable_password()
        elif user.has_usable_password():
            # A local account (say the break-glass admin) is never taken over by a header.
            log.warning("auth proxy named local account %r: refused", user.username)
            user.daemonviz_refused = True
            return user
        groups_header = settings.DAEMONVIZ_AUTH_PROXY_GROUPS_HEADER
        groups = (
            roles.groups_from(request.META.get(meta_key(groups_header), ""))
            if groups_header
            else set()
        )
        # Without a groups header every proxied user is a viewer; staff only by group.
        role = roles.role_for(groups) if groups_header else "viewer"
        roles.apply_role(user, role)
        user.save()
        if role is None:
            request.daemonviz_no_access = user.username
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and not getattr(user, "daemonviz_refused", False)


class ProxyHeaderMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.key = meta_key(settings.DAEMONVIZ_AUTH_PROXY_HEADER)
        groups = settings.DAEMONVIZ_AUTH_PROXY_GROUPS_HEADER
        self.keys = [self.key] + ([meta_key(groups)] if groups else [])

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self.process(request)
        return refused or self.get_response(request)

    def process(self, request: HttpRequest) -> HttpResponse | None:
        if not trusted_peer(request):
            if any(key in request.META for key in self.keys):
                log.warning(
                    "auth proxy header from untrusted address %s ignored",
                    request.META.get("REMOTE_ADDR"),
                )
                for key in self.keys:
                    request.META.pop(key, None)
            return None
        name = request.META.get(self.key, "").strip()
        user = request.user
        from_proxy = request.session.get(auth.BACKEND_SESSION_KEY) == BACKEND
        if not name:
            if user.is_authenticated and from_proxy:
                auth.logout(request)
            return None
        if user.is_authenticated:
            if from_proxy and user.get_username() == name:
                return None
            auth.logout(request)
        signed_in = auth.authenticate(request, remote_user=name)
        if signed_in is not None:
            auth.login(request, signed_in, backend=BACKEND)
            request.user = signed_in
            return None
        if getattr(request, "daemonviz_no_access", None):
            return render(request, "registration/no_access.html", status=403)
        return None
