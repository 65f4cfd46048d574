"""The provider's discovery document (OpenID Connect Discovery 1.0), fetched at the first
sign-in and kept for the process's life; a failed fetch is retried at the next sign-in.

mozilla-django-oidc wants its endpoints as settings; the backend and views look them up
here instead, so the only configuration is the issuer URL.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from mozilla_django_oidc.utils import import_from_settings

# mozilla-django-oidc's setting → the discovery document's field.
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}

_lock = threading.Lock()
_document: dict[str, Any] | None = None


def document() -> dict[str, Any]:
    global _document
    with _lock:
        if _document is None:
            issuer = settings.DAEMONVIZ_OIDC_ISSUER
            url = issuer + "/.well-known/openid-configuration"
            try:
                response = requests.get(url, timeout=10)
                response.raise_for_status()
                doc = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise ImproperlyConfigured(f"OIDC discovery at {url} failed: {exc}") from None
            # The document must be the issuer's own (Discovery 1.0, section 4.3).
            if not isinstance(doc, dict) or doc.get("issuer", "").rstrip("/") != issuer:
                raise ImproperlyConfigured(
                    f"OIDC discovery at {url} names issuer {doc.get('issuer')!r}, not {issuer!r}"
                )
            missing = [f for f in ENDPOINTS.values() if not doc.get(f)]
            if missing:
                raise ImproperlyConfigured(f"OIDC discovery at {url} lacks {missing}")
            _document = doc
        return _document


def forget() -> None:
    """Drop the cached document (tests that start another provider)."""
    global _document
    with _lock:
        _document = None


def setting(attr: str, *default: Any) -> Any:
    """mozilla-django-oidc's get_settings, with the endpoints taken from discovery."""
    if attr in ENDPOINTS:
        return document()[ENDPOINTS[attr]]
    return import_from_settings(attr, *default)


def end_session_endpoint() -> str | None:
    try:
        return document().get("end_session_endpoint") or None
    except ImproperlyConfigured:
        return None
