"""Sign-in beyond passwords: ID tokens checked by the OIDC backend against a real
provider's JWKS (panva's oidc-provider on 127.0.0.1), the auth-proxy header trusted only
from the configured addresses, local sign-in switched off but for the break-glass admin,
and a signed-out session's websockets closed. The full browser flow through the provider
is tests/browser/test_oidc_browser.py."""

from __future__ import annotations

import io
import ipaddress
import logging
import sys
import time

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.core.management import call_command
from django.test import Client, override_settings

from dashboard.auth import discovery
from dashboard.auth.oidc import OIDCBackend
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.models import Cluster
from tests.helpers import collectors, k8s
from tests.helpers.oidc_provider import CLIENT_ID, CLIENT_SECRET, running_provider

NONCE = "nonce-from-the-session"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oidc")
    with running_provider(tmp, "http://127.0.0.1:9", {"alice": ["dv-viewers"]}) as p:
        yield p


@pytest.fixture
def backend(provider):
    with override_settings(
        DAEMONVIZ_OIDC_ISSUER=provider.issuer,
        OIDC_RP_CLIENT_ID=CLIENT_ID,
        OIDC_RP_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_RP_SIGN_ALGO="RS256",
    ):
        discovery.forget()
        yield OIDCBackend()
    discovery.forget()


def _claims(provider, **changes):
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_token_signed_with_the_providers_published_key_is_accepted(provider, backend):
    payload = backend.verify_token(provider.sign(_claims(provider)), nonce=NONCE)
    assert payload["sub"] == "alice"


def _refused(backend, token: str, nonce: str = NONCE) -> str:
    with pytest.raises(SuspiciousOperation) as exc:
        backend.verify_token(token, nonce=nonce)
    return str(exc.value)


def test_a_tampered_token_is_refused(provider, backend):
    header, payload, signature = provider.sign(_claims(provider)).split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"alice"', b'"admin"')
    ).decode()
    assert "signature" in _refused(backend, f"{header}.{forged}.{signature}").lower()


def test_a_token_signed_by_another_key_with_the_providers_kid_is_refused(provider, backend):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "signature" in _refused(backend, provider.sign(_claims(provider), key=other)).lower()


def test_a_token_for_another_audience_is_refused(provider, backend):
    token = provider.sign(_claims(provider, aud="some-other-app"))
    assert "audience" in _refused(backend, token).lower()


def test_an_expired_token_is_refused(provider, backend):
    now = int(time.time())
    token = provider.sign(_claims(provider, iat=now - 3600, exp=now - 600))
    assert "expired" in _refused(backend, token).lower()


def test_a_token_from_another_issuer_is_refused(provider, backend):
    token = provider.sign(_claims(provider, iss="http://127.0.0.1:1"))
    assert "issuer" in _refused(backend, token).lower()


def test_a_token_without_expiry_is_refused(provider, backend):
    assert "exp" in _refused(backend, provider.sign(_claims(provider, exp=None)))


def test_a_token_with_another_nonce_is_refused(provider, backend):
    token = provider.sign(_claims(provider, nonce="someone-elses-nonce"))
    assert "nonce" in _refused(backend, token).lower()


def test_unsigned_and_client_secret_signed_tokens_are_refused(provider, backend):
    unsigned = jwt.encode(_claims(provider), None, algorithm="none", headers={"kid": "x"})
    _refused(backend, unsigned)
    hs = jwt.encode(_claims(provider), CLIENT_SECRET * 2, algorithm="HS256", headers={"kid": "x"})
    _refused(backend, hs)


def test_discovery_must_name_the_configured_issuer(provider):
    with override_settings(DAEMONVIZ_OIDC_ISSUER=provider.issuer.replace("127.0.0.1", "localhost")):
        discovery.forget()
        with pytest.raises(Exception, match="names issuer"):
            discovery.document()
    discovery.forget()


# --------------------------------------------------------------------------- roles


@pytest.mark.django_db
@override_settings(DAEMONVIZ_ADMIN_GROUPS=["dv-admins"], DAEMONVIZ_VIEWER_GROUPS=["dv-viewers"])
def test_roles_follow_the_groups_claim_at_every_sign_in(rf):
    backend = OIDCBackend.__new__(OIDCBackend)  # no provider needed for the user mapping
    backend.request = rf.get("/oidc/callback/")
    user = backend.create_user({"preferred_username": "pat", "groups": ["dv-viewers"]})
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert not user.has_usable_password()
    user = backend.update_user(user, {"preferred_username": "pat", "groups": ["x", "dv-admins"]})
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, True, True)
    user = backend.update_user(user, {"preferred_username": "pat", "groups": "dv-viewers"})
    assert (user.is_active, user.is_staff) == (True, False)
    user = backend.update_user(user, {"preferred_username": "pat", "groups": []})
    assert (user.is_active, user.is_staff) == (False, False)
    assert backend.request.daemonviz_no_access == "pat"
    # Staff comes from nothing else: not a claim that looks like one.
    user = backend.update_user(
        user, {"preferred_username": "pat", "is_staff": True, "groups": {"dv-admins": 1}}
    )
    assert not user.is_staff and not user.is_active


@pytest.mark.django_db
def test_an_idp_name_never_takes_over_a_local_account(rf):
    get_user_model().objects.create_superuser("root", password="root-password-1")
    backend = OIDCBackend.__new__(OIDCBackend)
    with pytest.raises(SuspiciousOperation, match="local account"):
        backend.filter_users_by_claims({"preferred_username": "root"})


# --------------------------------------------------------------------------- local sign-in


def _password_sign_in(username: str, password: str) -> bool:
    """Through the sign-in page, as a browser does (and as sign-in throttling sees it)."""
    resp = Client().post("/accounts/login/?local=1", {"username": username, "password": password})
    return resp.status_code == 302 and resp["Location"] == "/"


@pytest.mark.django_db
def test_local_sign_in_off_leaves_only_the_break_glass_admin():
    User = get_user_model()
    User.objects.create_superuser("admin", password="admin-password-1")
    with override_settings(DAEMONVIZ_LOCAL_LOGIN=False):
        assert not _password_sign_in("admin", "admin-password-1")
    # The command, as an operator runs it (the password on stdin).
    old = sys.stdin
    sys.stdin = io.StringIO("glass-password-1\n")
    try:
        call_command("breakglass", "admin", "--password-stdin", stdout=io.StringIO())
    finally:
        sys.stdin = old
    with override_settings(DAEMONVIZ_LOCAL_LOGIN=False):
        assert _password_sign_in("admin", "glass-password-1")
        call_command("breakglass", "admin", "--remove", stdout=io.StringIO())
        assert not _password_sign_in("admin", "glass-password-1")
    assert _password_sign_in("admin", "glass-password-1")


@pytest.mark.django_db
def test_the_sign_in_page_hides_the_password_form_when_local_sign_in_is_off():
    with override_settings(DAEMONVIZ_LOCAL_LOGIN=False):
        assert b'name="password"' not in Client().get("/accounts/login/").content
        assert b'name="password"' in Client().get("/accounts/login/?local=1").content
    assert b'name="password"' in Client().get("/accounts/login/").content


# --------------------------------------------------------------------------- auth proxy

PROXY = "dashboard.auth.proxy.ProxyHeaderMiddleware"


@pytest.fixture
def proxy_mode():
    with override_settings(
        MIDDLEWARE=[*settings.MIDDLEWARE, PROXY],
        AUTHENTICATION_BACKENDS=[
            *settings.AUTHENTICATION_BACKENDS,
            "dashboard.auth.proxy.ProxyHeaderBackend",
        ],
        DAEMONVIZ_AUTH_PROXY_HEADER="X-Forwarded-User",
        DAEMONVIZ_AUTH_PROXY_GROUPS_HEADER="X-Forwarded-Groups",
        DAEMONVIZ_AUTH_PROXY_TRUSTED=[ipaddress.ip_network("10.20.0.0/16")],
        DAEMONVIZ_ADMIN_GROUPS=["dv-admins"],
        DAEMONVIZ_VIEWER_GROUPS=["dv-viewers"],
    ):
        yield


def _via(addr: str, user: str | None, groups: str = "dv-viewers") -> dict:
    headers = {"REMOTE_ADDR": addr}
    if user is not None:
        headers |= {"HTTP_X_FORWARDED_USER": user, "HTTP_X_FORWARDED_GROUPS": groups}
    return headers


@pytest.mark.django_db
def test_proxy_header_from_a_trusted_address_signs_in(proxy_mode):
    client = Client()
    resp = client.get("/", **_via("10.20.3.4", "pat"))
    assert resp.status_code == 200 and b"pat" in resp.content
    user = get_user_model().objects.get(username="pat")
    assert user.is_active and not user.is_staff and not user.has_usable_password()
    # The proxy stops sending the header (its session ended): so does ours.
    assert client.get("/", **_via("10.20.3.4", None)).status_code == 302


@pytest.mark.django_db
def test_proxy_header_from_elsewhere_is_ignored_and_logged(proxy_mode, caplog):
    with caplog.at_level(logging.WARNING, logger="dashboard.auth.proxy"):
        resp = Client().get("/", **_via("192.168.7.7", "pat", "dv-admins"))
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]
    assert not get_user_model().objects.filter(username="pat").exists()
    assert "untrusted address 192.168.7.7" in caplog.text


@pytest.mark.django_db
def test_proxy_groups_give_roles_and_no_group_gets_no_access(proxy_mode):
    admin = Client()
    admin.get("/", **_via("10.20.0.1", "ada", "dv-admins"))
    assert get_user_model().objects.get(username="ada").is_staff
    assert admin.get("/admin/", **_via("10.20.0.1", "ada", "dv-admins")).status_code == 200
    resp = Client().get("/", **_via("10.20.0.1", "nobody", "other"))
    assert resp.status_code == 403 and b"No access" in resp.content


@pytest.mark.django_db
def test_proxy_header_never_signs_in_a_local_account(proxy_mode):
    get_user_model().objects.create_superuser("root", password="root-password-1")
    resp = Client().get("/admin/", **_via("10.20.0.1", "root", "dv-admins"))
    assert resp.status_code == 302


# --------------------------------------------------------------------------- websockets

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # a real handshake always has one


@pytest.fixture
def alpha(db, no_embedded_collectors):
    Cluster.objects.create(name="Alpha", slug="alpha")
    c = collectors.make(ClusterConfig(slug="alpha", name="Alpha"), get_channel_layer())
    c.matrix = k8s.build([k8s.node("node-a")])
    registry.register(c)


@pytest.mark.django_db(transaction=True)
async def test_signing_out_closes_that_sessions_sockets_only(alpha):
    from daemonviz.asgi import application

    User = get_user_model()
    user = await database_sync_to_async(User.objects.create_user)("v", password="viewer-pw-123")
    leaving, staying = Client(), Client()
    for c in (leaving, staying):
        await database_sync_to_async(c.force_login)(user)

    async def socket(client):
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        comm = WebsocketCommunicator(
            application, "/ws/clusters/alpha/grid/", headers=[ORIGIN, HOST, (b"cookie", cookie)]
        )
        connected, _ = await comm.connect()
        assert connected
        await comm.receive_from()  # the hello frame
        return comm

    gone, kept = await socket(leaving), await socket(staying)
    await database_sync_to_async(leaving.post)("/accounts/logout/")
    assert await gone.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert await kept.receive_nothing(timeout=0.3)
    await kept.disconnect()
