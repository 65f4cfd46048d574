"""Sign-in through a real OpenID Connect provider (panva's oidc-provider, started on
127.0.0.1), in Chromium: the provider's own login page, roles from groups, "no access",
sign-out ending the session (its websocket closes) and the provider's session, and
refused callbacks (a replayed one, another session's)."""

from __future__ import annotations

import os
import sys

import pytest

from tests.browser.conftest import ARTIFACTS, CAPTURE_SOCKET
from tests.helpers.daphne import manage, running_daphne
from tests.helpers.oidc_provider import CLIENT_ID, CLIENT_SECRET, running_provider
from tests.helpers.ports import free_port

PROVIDER_NAME = "Test IdP"
ACCOUNTS = {
    "alice": ["dv-viewers"],
    "bob": ["dv-admins", "other"],
    "carol": ["unrelated"],
    "dave": ["dv-viewers"],
    "erin": ["dv-viewers"],
}
BREAK_GLASS_USER, BREAK_GLASS_PASSWORD = "glass", "break-glass-test-pw-1"
LOCAL_ADMIN, LOCAL_PASSWORD = "local-admin", "local-admin-test-pw-1"


@pytest.fixture(scope="module")
def sso(tmp_path_factory, browser):
    tmp = tmp_path_factory.mktemp("oidc")
    secret_file = tmp / "client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    provider_port = free_port()
    env = {
        **os.environ,
        "DAEMONVIZ_SQLITE_PATH": str(tmp / "db.sqlite3"),
        "DAEMONVIZ_DEBUG": "1",
        "DAEMONVIZ_ADMIN_USER": LOCAL_ADMIN,
        "DAEMONVIZ_ADMIN_PASSWORD": LOCAL_PASSWORD,
        "DAEMONVIZ_OIDC_ISSUER": f"http://127.0.0.1:{provider_port}",
        "DAEMONVIZ_OIDC_CLIENT_ID": CLIENT_ID,
        "DAEMONVIZ_OIDC_CLIENT_SECRET_FILE": str(secret_file),
        "DAEMONVIZ_OIDC_PROVIDER_NAME": PROVIDER_NAME,
        "DAEMONVIZ_OIDC_ADMIN_GROUPS": "dv-admins",
        "DAEMONVIZ_OIDC_VIEWER_GROUPS": "dv-viewers,dv-readonly",
        "DAEMONVIZ_LOCAL_LOGIN": "false",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap")
    manage(env, "breakglass", BREAK_GLASS_USER, "--password-stdin", input=BREAK_GLASS_PASSWORD)
    with (
        running_daphne(tmp, env) as url,
        running_provider(tmp, url, ACCOUNTS, port=provider_port) as provider,
    ):
        yield url, provider
    sys.stdout.write((tmp / "daphne.log").read_text()[-3000:])


@pytest.fixture
def context(browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    yield ctx
    ctx.close()


def sign_in_with_provider(page, url: str, username: str) -> None:
    """From the dashboard's sign-in page through the provider's login page."""
    page.goto(url + "/")
    page.wait_for_url(f"{url}/accounts/login/**")
    page.click(f"text=Sign in with {PROVIDER_NAME}")
    # The provider's own login form (oidc-provider's development interactions).
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", "any-password")
    page.click("button[type=submit]")


def confirm_provider_sign_out(page, url: str, screenshot: str = "") -> None:
    """The provider's end-session page asks before ending its session, then sends the
    browser back to the dashboard's sign-in page."""
    page.wait_for_selector("text=Do you want to sign-out")
    if screenshot:
        page.screenshot(path=str(ARTIFACTS / screenshot))
    page.click("button[name=logout][value=yes]")
    page.wait_for_url(f"{url}/accounts/login/**")


def sign_out(page, url: str) -> None:
    page.click("text=Sign out")
    confirm_provider_sign_out(page, url)


def test_viewer_group_lands_on_the_overview_as_a_viewer(sso, context):
    url, _ = sso
    page = context.new_page()
    page.goto(url + "/accounts/login/")
    # Password sign-in is switched off: no form, only the provider's button.
    assert page.locator("#id_password").count() == 0
    assert page.locator("#oidc-sign-in").inner_text() == f"Sign in with {PROVIDER_NAME}"
    page.screenshot(path=str(ARTIFACTS / "oidc-login.png"))
    sign_in_with_provider(page, url, "alice")
    page.wait_for_url(url + "/")
    assert page.locator(".signout").inner_text().count("alice") == 1
    assert page.locator("a", has_text="Admin").count() == 0
    page.screenshot(path=str(ARTIFACTS / "oidc-viewer-overview.png"))
    # Not staff: the admin sends a viewer to the sign-in page.
    page.goto(url + "/admin/")
    assert "/accounts/login/?next=/admin/" in page.url


def test_admin_group_reaches_the_admin(sso, context):
    url, _ = sso
    page = context.new_page()
    sign_in_with_provider(page, url, "bob")
    page.wait_for_url(url + "/")
    page.click("a:has-text('Admin')")
    page.wait_for_url(url + "/admin/")
    assert page.title().startswith("Clusters, wall displays and users")
    page.screenshot(path=str(ARTIFACTS / "oidc-admin.png"))


def test_a_user_in_no_group_gets_no_access_and_no_data(sso, context):
    url, _ = sso
    page = context.new_page()
    sign_in_with_provider(page, url, "carol")
    page.wait_for_selector("#no-access")
    assert "carol" in page.inner_text("#no-access")
    page.screenshot(path=str(ARTIFACTS / "oidc-no-access.png"))
    # Not signed in: the overview, a cluster page and its data still send to sign-in.
    for path in ("/", "/clusters/demo/", "/clusters/demo/grid/"):
        response = page.goto(url + path)
        assert "/accounts/login/" in page.url, path
        assert response is not None and "demo" not in page.inner_text("main").split("Sign in")[0]


def test_group_changes_take_effect_at_the_next_sign_in(sso, context):
    url, provider = sso
    page = context.new_page()
    sign_in_with_provider(page, url, "dave")
    page.wait_for_url(url + "/")
    assert page.locator("a", has_text="Admin").count() == 0
    provider.set_accounts({**ACCOUNTS, "dave": ["dv-admins"]})
    try:
        # Still a viewer in the current session...
        page.reload()
        assert page.locator("a", has_text="Admin").count() == 0
        sign_out(page, url)
        # ... an admin from the next sign-in on.
        sign_in_with_provider(page, url, "dave")
        page.wait_for_url(url + "/")
        assert page.locator("a", has_text="Admin").count() == 1
        # And out of every group: refused at the following one, staff taken away.
        provider.set_accounts({**ACCOUNTS, "dave": []})
        sign_out(page, url)
        sign_in_with_provider(page, url, "dave")
        page.wait_for_selector("#no-access")
    finally:
        provider.set_accounts(ACCOUNTS)


def test_sign_out_closes_the_sessions_websocket_and_ends_the_provider_session(sso, context):
    url, _ = sso
    context.add_init_script(CAPTURE_SOCKET)
    page = context.new_page()
    sign_in_with_provider(page, url, "erin")
    page.wait_for_url(url + "/")
    page.goto(url + "/clusters/demo/")
    page.wait_for_function("window.__socket && window.__socket.readyState === 1")
    page.evaluate("window.__socket.addEventListener('close', (e) => { window.__closed = e.code; })")
    # Sign out in another tab of the same browser session.
    other = context.new_page()
    other.goto(url + "/")
    other.click("text=Sign out")
    # The grid's socket is closed by the server: 4401, signed out.
    page.wait_for_function("window.__closed !== undefined", timeout=10_000)
    assert page.evaluate("window.__closed") == 4401
    # Then the provider's end-session page: confirm, and back to the dashboard's sign-in.
    confirm_provider_sign_out(other, url, screenshot="oidc-end-session.png")
    # The provider's session has ended too: signing in again asks for the login again.
    other.click(f"text=Sign in with {PROVIDER_NAME}")
    other.wait_for_selector("input[name=login]")


def _callback_url(page, url: str, username: str) -> str:
    """Sign in, keeping the callback URL the provider sent the browser to."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/oidc/callback/" in r.url else None)
    sign_in_with_provider(page, url, username)
    page.wait_for_url(url + "/")
    assert len(seen) == 1
    return seen[0]


def test_a_replayed_callback_is_refused(sso, context):
    url, _ = sso
    page = context.new_page()
    callback = _callback_url(page, url, "alice")
    # Same code, same state, same browser session: the state was used up at the first use.
    response = page.goto(callback)
    assert response is not None and response.status == 400
    # And after signing out (no state left in the session at all): refused, not signed in.
    page.goto(url + "/")
    sign_out(page, url)
    page.goto(callback)
    assert f"Sign-in with {PROVIDER_NAME} failed" in page.inner_text("main")
    page.goto(url + "/")
    assert "/accounts/login/" in page.url


def test_a_callback_with_a_state_this_session_never_issued_is_refused(sso, browser, context):
    """Login CSRF: another browser's callback (its code and state) delivered to a session
    that started a sign-in of its own is refused — the state is not this session's."""
    url, _ = sso
    callback = _callback_url(context.new_page(), url, "alice")
    victim = browser.new_context()
    try:
        page = victim.new_page()
        page.goto(url + "/oidc/authenticate/")  # this session's own state and nonce
        page.wait_for_selector("input[name=login]")
        response = page.goto(callback)
        assert response is not None and response.status == 400
        page.goto(url + "/")
        assert "/accounts/login/" in page.url
    finally:
        victim.close()


def test_password_sign_in_is_off_except_for_the_break_glass_admin(sso, context):
    url, _ = sso
    page = context.new_page()
    page.goto(url + "/accounts/login/?local=1")
    page.fill("#id_username", LOCAL_ADMIN)
    page.fill("#id_password", LOCAL_PASSWORD)
    page.click("form button[type=submit]")
    assert "Password sign-in is switched off" in page.inner_text("main")
    page.fill("#id_username", BREAK_GLASS_USER)
    page.fill("#id_password", BREAK_GLASS_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(url + "/")
    page.goto(url + "/admin/")
    assert page.title().startswith("Clusters, wall displays and users")
