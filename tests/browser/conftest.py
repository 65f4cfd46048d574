"""A real daphne server (websockets included) with the simulated demo cluster, and Chromium.

pytest-django's live_server speaks HTTP only, so the server runs as a subprocess with its
own temporary SQLite database, migrated and bootstrapped like `make run` does.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.daphne import manage, running_daphne

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
USER, PASSWORD = "browser", "browser-test-pw-1"
# Init script: keep the page's live socket (what htmx opened), to hand it frames of our own.
CAPTURE_SOCKET = """document.addEventListener('htmx:wsOpen',
  (e) => { window.__socket = e.detail.event.target; }, true);"""


_FUNCTION = re.compile(r"^\s*(async\s+)?(function\b|\(?[\w\s,{}\[\]=]*\)?\s*=>)")


def _as_function(expression: str) -> str:
    """A bare expression as a function: Playwright polls a bare expression with eval() in
    the page, which the app's Content-Security-Policy refuses (no 'unsafe-eval');
    a function it calls directly."""
    return expression if _FUNCTION.match(expression) else f"() => ({expression})"


def _install_csp_safe_wait_for_function() -> None:
    from playwright.sync_api import Page

    original = Page.wait_for_function
    if getattr(original, "csp_safe", False):
        return

    def wait_for_function(self, expression: str, *args, **kwargs):
        return original(self, _as_function(expression), *args, **kwargs)

    wait_for_function.csp_safe = True  # type: ignore[attr-defined]
    Page.wait_for_function = wait_for_function  # type: ignore[method-assign]


_install_csp_safe_wait_for_function()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (make browser-deps installs Debian's chromium)")
    tmp = tmp_path_factory.mktemp("server")
    env = {
        **os.environ,
        "DAEMONVIZ_SQLITE_PATH": str(tmp / "db.sqlite3"),
        "DAEMONVIZ_ADMIN_USER": USER,
        "DAEMONVIZ_ADMIN_PASSWORD": PASSWORD,
        # The simulator changes things by itself (events per minute): crashes, node joins...
        "DAEMONVIZ_SIM_CHURN": os.environ.get("DAEMONVIZ_SIM_CHURN", "600"),
        "DAEMONVIZ_DEBUG": "0",  # as `make run` serves
        # One simulated cluster (two churning clusters would double the suite's load); the
        # fleet test adds a second one itself.
        "DAEMONVIZ_DEMO_FLEET": "false",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap")
    with running_daphne(tmp, env) as url:
        yield url
    sys.stdout.write((tmp / "daphne.log").read_text()[-2000:])


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@contextmanager
def signed_in_page(browser, server: str) -> Iterator:
    """A fresh browser context signed in to `server`; page errors collect in `page.errors`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(server + "/accounts/login/")
    pg.fill("#id_username", USER)
    pg.fill("#id_password", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url(server + "/")
    try:
        yield pg
    finally:
        context.close()


def save_admin_form(pg, model: str) -> None:
    """Click the admin's Save and wait for its change list; when the save does not get
    there, fail with what the page said (a form error, a server error) rather than only
    "timeout"."""
    pg.click("input[name=_save]")
    try:
        pg.wait_for_url(re.compile(rf".*/admin/dashboard/{model}/$"), timeout=60_000)
    except Exception as exc:
        said = pg.inner_text("body")[:1500] if pg.query_selector("body") else "(no page)"
        raise AssertionError(f"the admin save stayed on {pg.url}: {said}") from exc


@pytest.fixture
def page(browser, server):
    with signed_in_page(browser, server) as pg:
        yield pg
