"""The websocket Origin check: a socket is accepted only from a page of this very site.

Browsers send cookies with a websocket handshake whatever page opens it, and the
same-origin policy does not apply to websockets: the Origin header is the only defence
against another site (or another service on the same host) opening a signed-in user's
grid socket. Channels' `AllowedHostsOriginValidator` compares the Origin's host name with
ALLOWED_HOSTS only, so `http://localhost:6666` passed for a site served on :8000. Here the
Origin must equal the handshake's own origin — scheme, host and port, as a browser
defines an origin — or one of CSRF_TRUSTED_ORIGINS (the same list Django's CSRF check
trusts for forms).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host name (lower case), port
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_origin(text: str) -> Origin | None:
    """(scheme, host, port) of an origin such as `https://dash.example:8443`; None if it
    is not one (`null`, no host, an unknown scheme, a bad port)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _headers(scope: Scope) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for name, value in scope.get("headers", []):
        # The first of a repeated header wins; latin-1 never fails to decode.
        found.setdefault(bytes(name).lower(), bytes(value).decode("latin-1"))
    return found


def _is_secure(scope: Scope, headers: dict[bytes, str]) -> bool:
    if scope.get("scheme") == "wss":
        return True
    # Behind a TLS-terminating ingress the socket arrives as plain ws: trust the proxy's
    # header exactly as Django does for HTTP requests (SECURE_PROXY_SSL_HEADER).
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, expected = proxy
        header = name.upper().removeprefix("HTTP_").replace("_", "-").lower().encode()
        value = headers.get(header, "")
        return value.split(",", 1)[0].strip() == expected
    return False


def own_origin(scope: Scope) -> Origin | None:
    """The origin of the site this handshake was sent to, from its Host header (checked
    against ALLOWED_HOSTS, as Django checks HTTP requests); None without a valid host."""
    headers = _headers(scope)
    host = headers.get(b"host", "")
    if settings.USE_X_FORWARDED_HOST and b"x-forwarded-host" in headers:
        host = headers[b"x-forwarded-host"].split(",", 1)[0].strip()
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if _is_secure(scope, headers) else "http"
    try:
        number = int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, domain, number


def _trusted(origin: Origin) -> bool:
    for pattern in settings.CSRF_TRUSTED_ORIGINS:
        scheme, _, rest = pattern.partition("://")
        wildcard = rest.startswith("*.")
        allowed = parse_origin(f"{scheme}://{rest[2:] if wildcard else rest}")
        if allowed is None:
            continue
        if wildcard:
            # `https://*.example.com` trusts subdomains, as in Django's CSRF check.
            if (
                origin[0] == allowed[0]
                and origin[2] == allowed[2]
                and origin[1].endswith("." + allowed[1])
            ):
                return True
        elif origin == allowed:
            return True
    return False


def origin_allowed(scope: Scope) -> bool:
    origin_header = _headers(scope).get(b"origin")
    if origin_header is None:
        return False  # every browser sends one with a websocket handshake
    origin = parse_origin(origin_header)
    if origin is None:
        return False
    return origin == own_origin(scope) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: refuse (close before accepting) a websocket whose Origin is not
    this site's own origin or a trusted one."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            await receive()  # the websocket.connect message
            await send({"type": "websocket.close", "code": 403})
            return
        await self.application(scope, receive, send)
