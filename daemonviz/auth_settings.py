"""Sign-in settings, read from the environment (README "Signing in"): local passwords,
OpenID Connect (mozilla-django-oidc) and the opt-in auth-proxy header mode.

Kept apart from daemonviz/settings.py, which takes AUTHENTICATION_BACKENDS, the extra
middleware and the OIDC_* names from here. Nothing here talks to the provider: its
endpoints come from its discovery document, fetched at the first sign-in
(dashboard/auth/discovery.py), so a provider that is down does not stop the dashboard.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daemonviz.env import EnvError, env_bool, env_list, env_str

# Password sign-in on the sign-in page. Off: only break-glass admins (`manage.py breakglass`)
# may still use a password, on /accounts/login/?local=1.
LOCAL_LOGIN = env_bool("DAEMONVIZ_LOCAL_LOGIN", default=True)

# Roles from groups, for OIDC and the auth proxy alike: the admin groups give staff (the
# admin panel), the viewer groups the read-only dashboard; anyone in neither is refused.
ADMIN_GROUPS = env_list("DAEMONVIZ_OIDC_ADMIN_GROUPS", [])
VIEWER_GROUPS = env_list("DAEMONVIZ_OIDC_VIEWER_GROUPS", [])

# ---- OpenID Connect
OIDC_ISSUER = env_str("DAEMONVIZ_OIDC_ISSUER").rstrip("/")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_PROVIDER_NAME = env_str("DAEMONVIZ_OIDC_PROVIDER_NAME", "single sign-on")
# The provider's origin: sign-out's form redirects there (CSP form-action, settings.py).
FORM_ACTION_ORIGINS = (
    [urlsplit(OIDC_ISSUER)._replace(path="", query="", fragment="").geturl()]
    if OIDC_ENABLED
    else []
)
OIDC_USERNAME_CLAIM = env_str("DAEMONVIZ_OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env_str("DAEMONVIZ_OIDC_GROUPS_CLAIM", "groups")


def _client_secret() -> str:
    path = env_str("DAEMONVIZ_OIDC_CLIENT_SECRET_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise EnvError(f"DAEMONVIZ_OIDC_CLIENT_SECRET_FILE={path!r}: {exc}") from None
    return env_str("DAEMONVIZ_OIDC_CLIENT_SECRET")


def _token_auth_basic() -> bool:
    method = env_str("DAEMONVIZ_OIDC_TOKEN_AUTH_METHOD", "client_secret_basic")
    if method not in ("client_secret_basic", "client_secret_post"):
        raise EnvError(
            f"DAEMONVIZ_OIDC_TOKEN_AUTH_METHOD={method!r}: use client_secret_basic or "
            "client_secret_post"
        )
    return method == "client_secret_basic"


OIDC_SETTINGS: dict[str, Any] = {}
if OIDC_ENABLED:
    _client_id = env_str("DAEMONVIZ_OIDC_CLIENT_ID")
    if not _client_id:
        raise EnvError("DAEMONVIZ_OIDC_ISSUER is set but DAEMONVIZ_OIDC_CLIENT_ID is empty")
    OIDC_SETTINGS = {
        "OIDC_RP_CLIENT_ID": _client_id,
        "OIDC_RP_CLIENT_SECRET": _client_secret(),
        "OIDC_RP_SCOPES": " ".join(
            env_list("DAEMONVIZ_OIDC_SCOPES", ["openid", "profile", "email", "groups"])
        ),
        # Signed by the provider's keys (its JWKS), never by the client secret.
        "OIDC_RP_SIGN_ALGO": env_str("DAEMONVIZ_OIDC_SIGN_ALGO", "RS256"),
        # How the client secret reaches the token endpoint: HTTP Basic (the OAuth default,
        # client_secret_basic) or in the form body (client_secret_post).
        "OIDC_TOKEN_USE_BASIC_AUTH": _token_auth_basic(),
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        # Kept for the provider's end-session endpoint (id_token_hint) at sign-out.
        "OIDC_STORE_ID_TOKEN": True,
        "OIDC_TIMEOUT": 10,
        "OIDC_CALLBACK_CLASS": "dashboard.auth.views.OIDCCallbackView",
        "OIDC_AUTHENTICATE_CLASS": "dashboard.auth.views.OIDCAuthenticateView",
        "OIDC_ALLOW_UNSECURED_JWT": False,
    }

# ---- Auth proxy (oauth2-proxy, an authenticating ingress): opt-in, trusted only from
# the proxies' own addresses.
AUTH_PROXY_HEADER = env_str("DAEMONVIZ_AUTH_PROXY_HEADER")
AUTH_PROXY_GROUPS_HEADER = env_str("DAEMONVIZ_AUTH_PROXY_GROUPS_HEADER")
AUTH_PROXY_ENABLED = bool(AUTH_PROXY_HEADER)


def _networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in env_list(name, []):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise EnvError(f"{name}: {part!r} is not an address or CIDR") from None
    return nets


AUTH_PROXY_TRUSTED = _networks("DAEMONVIZ_AUTH_PROXY_TRUSTED")
if AUTH_PROXY_ENABLED and not AUTH_PROXY_TRUSTED:
    raise EnvError(
        "DAEMONVIZ_AUTH_PROXY_HEADER is set but DAEMONVIZ_AUTH_PROXY_TRUSTED is empty: "
        "list the proxies' addresses (CIDRs) whose header is believed"
    )

AUTHENTICATION_BACKENDS = ["dashboard.auth.local.LocalPasswordBackend"]
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("dashboard.auth.oidc.OIDCBackend")
if AUTH_PROXY_ENABLED:
    AUTHENTICATION_BACKENDS.append("dashboard.auth.proxy.ProxyHeaderBackend")
# After AuthenticationMiddleware.
MIDDLEWARE = ["dashboard.auth.proxy.ProxyHeaderMiddleware"] if AUTH_PROXY_ENABLED else []
