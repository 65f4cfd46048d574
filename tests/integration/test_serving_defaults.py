"""What `make run` serves with no configuration at all (DEBUG off, static files, the
security headers), and the production switches read from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.helpers.daphne import ROOT, manage, running_daphne


def _settings_under(env: dict[str, str]) -> dict:
    """Selected settings as daemonviz.settings computes them from `env` alone."""
    code = (
        "import json, daemonviz.settings as s; print(json.dumps({k: getattr(s, k) for k in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER', 'X_FRAME_OPTIONS', "
        "'AXES_FAILURE_LIMIT', 'ALLOWED_HOSTS')}, default=str))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DAEMONVIZ_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_defaults_are_safe_and_need_no_configuration():
    s = _settings_under({})
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    # Plain http by default (make run): secure-only cookies would never be sent back.
    assert s["SESSION_COOKIE_SECURE"] is False and s["SECURE_HSTS_SECONDS"] == 0
    assert s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["X_FRAME_OPTIONS"] == "DENY" and s["AXES_FAILURE_LIMIT"] == 5
    assert _settings_under({"DAEMONVIZ_DEBUG": "true"})["DEBUG"] is True


def test_https_and_proxy_switches():
    s = _settings_under(
        {"DAEMONVIZ_HTTPS": "true", "DAEMONVIZ_PROXY_SSL_HEADER": "X-Forwarded-Proto"}
    )
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_HSTS_SECONDS"] == 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    s = _settings_under({"DAEMONVIZ_HTTPS": "1", "DAEMONVIZ_HSTS_SECONDS": "600",
                         "DAEMONVIZ_LOGIN_FAILURE_LIMIT": "3"})  # fmt: skip
    assert s["SECURE_HSTS_SECONDS"] == 600 and s["AXES_FAILURE_LIMIT"] == 3


def _get(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.mark.slow
def test_make_run_serves_with_no_configuration(tmp_path):
    # `make run`'s commands, with nothing set but a database path of the test's own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAEMONVIZ_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env |= {"DAEMONVIZ_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "DAEMONVIZ_DEMO_CLUSTER": "0"}
    manage(env, "migrate", "--noinput")
    with running_daphne(
        tmp_path, env, "daemonviz.asgi:application", "--access-log", "/dev/null"
    ) as url:
        status, headers, body = _get(url + "/accounts/login/")
        assert status == 200 and "Sign in" in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers  # plain http
        # Static files are served by the app itself (WhiteNoise), DEBUG off.
        status, headers, body = _get(url + "/static/js/daemonviz.js")
        assert status == 200 and "daemonviz" in body
        status, _, _ = _get(url + "/static/django_htmx/htmx-2.min.js")
        assert status == 200
        # No debug page: a missing page is a plain 404, an unknown host a plain 400.
        status, _, body = _get(url + "/no-such-page/")
        assert status == 404 and "URLconf" not in body and "DEBUG" not in body
        port = url.rsplit(":", 1)[1]
        status, _, _ = _get(f"http://localhost:{port}/accounts/login/")
        assert status == 200  # both default host names work
        status, _, body = _get(url + "/accounts/login/", {"Host": "evil.example"})
        assert status == 400 and "ALLOWED_HOSTS" not in body
