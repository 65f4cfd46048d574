"""Sign-in throttling (django-axes): repeated failures lock a username and an address out,
the right password included, with a clear message, until the cool-off ends or an admin
unlocks; wall tokens and signed-in sessions are not affected."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import access
from dashboard.models import WallDisplay

PASSWORD = "alice-right-pw-1"
LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    # Dozens of sign-ins: the production hasher's work factor is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


def _sign_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def _signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_repeated_failures_lock_the_account_even_for_the_right_password(alice):
    assert settings.AXES_FAILURE_LIMIT == 5  # the documented default
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        resp = _sign_in(attacker, "alice", "wrong")
        assert resp.status_code == 200 and b"match" in resp.content
    resp = _sign_in(attacker, "alice", "wrong")
    assert resp.status_code == 429
    # The right password, from the attacker's address or any other, is refused now.
    for client in (attacker, Client(REMOTE_ADDR="198.51.100.2")):
        resp = _sign_in(client, "alice", PASSWORD)
        assert resp.status_code == 429
        page = resp.content.decode()
        assert "Sign-in locked" in page and "Too many failed sign-ins (5)" in page
        assert "Try again in 15 minutes" in page and "administrator" in page
        assert not _signed_in(client)
    # The admin's sign-in (the same page) and a direct authenticate share the lock.
    resp = _sign_in(Client(), "alice", PASSWORD)
    assert resp.status_code == 429


def test_repeated_failures_lock_the_address_for_every_account(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.8")
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(attacker, f"guess-{i}", "wrong")  # a different username each time
    assert _sign_in(attacker, "alice", PASSWORD).status_code == 429
    elsewhere = Client(REMOTE_ADDR="198.51.100.3")
    assert _sign_in(elsewhere, "alice", PASSWORD).status_code == 302
    assert _signed_in(elsewhere)


def test_a_success_resets_the_count(alice):
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            _sign_in(client, "alice", "typo")
        assert _sign_in(client, "alice", PASSWORD).status_code == 302
        client.post("/accounts/logout/")


def test_an_admin_unlocks_in_the_admin(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.10")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(attacker, "alice", "wrong")
    assert _sign_in(Client(), "alice", PASSWORD).status_code == 429

    boss = Client()
    boss.force_login(get_user_model().objects.create_superuser("boss", password="boss-pw-123"))
    page = boss.get("/admin/axes/accessattempt/").content.decode()
    assert "alice" in page and "203.0.113.10" in page
    from axes.models import AccessAttempt

    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    resp = boss.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert resp.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert _sign_in(Client(), "alice", PASSWORD).status_code == 302


@pytest.mark.django_db(transaction=True)
async def test_wall_tokens_and_open_sessions_are_not_throttled(settings):
    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = False

    def setup():
        user = get_user_model().objects.create_user("alice", password=PASSWORD)
        session = Client()
        session.force_login(user)
        wall = WallDisplay.objects.create(name="Ops room")
        token = access.issue_token(wall)
        # Lock out both the user and the address every test client uses (127.0.0.1).
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _sign_in(Client(), "alice", "wrong")
        assert _sign_in(Client(), "alice", PASSWORD).status_code == 429
        return session, token

    session, token = await sync_to_async(setup)()
    # The signed-in session keeps working; the wall's page and socket open by token.
    assert await sync_to_async(_signed_in)(session)
    resp = await sync_to_async(Client().get)(f"/wall/{token}/")
    assert resp.status_code == 200

    from daemonviz.asgi import application

    comm = WebsocketCommunicator(
        application,
        f"/ws/wall/{token}/",
        headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")],
    )
    connected, _ = await comm.connect()
    assert connected
    await comm.disconnect()
