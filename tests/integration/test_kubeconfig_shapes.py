"""Every malformed kubeconfig is a form error, never a 500, and no error page or report
shows a credential — also with DEBUG on."""

from __future__ import annotations

import json
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import got_request_exception
from django.test import Client
from django.views.debug import ExceptionReporter

from dashboard.kube import clients
from dashboard.models import Cluster

SECRET = "dvz-SECRET-shape-token-5e8a1f0c"
SERVER = "https://127.0.0.1:9"


@pytest.fixture(autouse=True)
def debug_on(settings):
    # The worst case: Django's debug page shows frame locals and request data.
    settings.DEBUG = True
    settings.DAEMONVIZ_CHECK_TIMEOUT = 0.5
    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = False


@pytest.fixture
def boss(db):
    user = get_user_model().objects.create_superuser("boss", password="boss-pw-123")
    c = Client(raise_request_exception=False)
    c.force_login(user)
    return c


def _kc(cluster=None, context=None, user=None, **top) -> dict:
    config = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": SERVER} if cluster is None else cluster}],
        "contexts": [
            {"name": "c", "context": {"cluster": "c", "user": "u"} if context is None else context}
        ],
        "users": [{"name": "u", "user": {"token": SECRET} if user is None else user}],
        "current-context": "c",
    }
    config.update(top)
    return config


# (shape, words the form error must contain)
SHAPES = {
    "cluster is a string": (_kc(cluster=SERVER), "cluster 'c': 'cluster' must be a mapping"),
    "context is a list": (_kc(context=["c"]), "context 'c': 'context' must be a mapping"),
    "user is a string": (_kc(user=SECRET), "user 'u': 'user' must be a mapping"),
    "server is a number": (_kc(cluster={"server": 12}), "server must be a string"),
    "proxy-url is a number": (
        _kc(cluster={"server": SERVER, "proxy-url": 5}),
        "proxy-url must be a string",
    ),
    "CA data is not base64": (
        _kc(cluster={"server": SERVER, "certificate-authority-data": "!!not base64"}),
        "certificate-authority-data must be base64 text",
    ),
    "CA data is base64 of no certificate": (
        _kc(cluster={"server": SERVER, "certificate-authority-data": "aGVsbG8="}),
        "not a valid PEM CA certificate",
    ),
    "client key is not base64": (
        _kc(user={"client-certificate-data": "aGVsbG8=", "client-key-data": "!" + SECRET}),
        "client-key-data must be base64 text",
    ),
    "insecure-skip-tls-verify is a string": (
        # The loader would read the string "false" as true and skip verification.
        _kc(cluster={"server": SERVER, "insecure-skip-tls-verify": "false"}),
        "insecure-skip-tls-verify must be true or false",
    ),
    "token is a number": (_kc(user={"token": 12345678}), "token must be a string"),
    "auth-provider is a string": (
        _kc(user={"auth-provider": "x" + SECRET}),
        "auth-provider must be a mapping",
    ),
    "context names a number": (
        _kc(context={"cluster": 5, "user": "u"}),
        "cluster must be a string",
    ),
    "current-context is a number": (_kc(**{"current-context": 5}), "current-context must be"),
    "users is a mapping": (_kc(users={"u": SECRET}), "malformed 'users'"),
    "an entry without a name": (_kc(contexts=[{"context": {}}]), "malformed 'contexts'"),
    "a list": (["a", SECRET], "not a kubeconfig"),
    "a string": (SECRET, "not a kubeconfig"),
    "null": (None, "not a kubeconfig"),
}


def _post(boss, content: bytes, **extra):
    data = {
        "name": "P",
        "slug": "p",
        "enabled": "on",
        "display_order": "0",
        "source": "uploaded",
        "scenario": "demo",
        "sim_seed": "1",
        "kubeconfig_upload": SimpleUploadedFile("kc", content),
        **extra,
    }
    return boss.post("/admin/dashboard/cluster/add/", data)


def _errors(resp) -> str:
    assert resp.status_code == 200, f"expected the form back with errors, got {resp.status_code}"
    form = resp.context["adminform"].form
    return " ".join(str(e) for errs in form.errors.values() for e in errs)


@pytest.mark.parametrize("skip_check", [True, False], ids=["unchecked", "checked"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_malformed_uploaded_kubeconfig_is_a_form_error(boss, shape, skip_check):
    config, words = SHAPES[shape]
    extra = {"skip_connection_check": "on"} if skip_check else {}
    resp = _post(boss, json.dumps(config).encode(), **extra)
    assert words in _errors(resp)
    assert SECRET.encode() not in resp.content
    assert not Cluster.objects.exists()


def test_a_malformed_kubeconfig_file_on_the_server_is_a_form_error(boss, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(_kc(cluster=SERVER)))
    resp = boss.post(
        "/admin/dashboard/cluster/add/",
        {"name": "P", "slug": "p", "enabled": "on", "display_order": "0",
         "source": "kubeconfig", "kubeconfig_path": str(path), "scenario": "demo",
         "sim_seed": "1"},
    )  # fmt: skip
    assert "'cluster' must be a mapping" in _errors(resp)
    big = tmp_path / "big"
    big.write_text("# padding\n" * 200_000)
    resp = boss.post("/admin/dashboard/cluster/contexts/", {"kubeconfig_path": str(big)})
    assert "larger than 1 MiB" in resp.json()["error"]


def _laughs(levels: int, width: int = 10) -> str:
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels + 1):
        refs = ", ".join(f"*a{i - 1}" for _ in range(width))
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # A million nodes from 700 bytes (the old code accepted and walked it); deeper
        # ones would never finish.
        (_laughs(6), "too large once its YAML aliases are expanded"),
        (_laughs(9), "too large once its YAML aliases are expanded"),
        ("a: &x [*x]\n", "an alias refers to itself"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: " + "{b: " * 100 + "1" + "}" * 100 + "\n", "nested too deeply"),
        ("clusters: [\n  - bad: : :\n", "invalid YAML at line"),
        ("\t" + SECRET + ": [", "invalid YAML"),
    ],
    ids=["laughs-1e6", "laughs-1e9", "recursive", "deep-list", "deep-map", "bad", "bad-tab"],
)
def test_hostile_yaml_is_a_form_error(boss, text, words):
    resp = _post(boss, text.encode(), skip_connection_check="on")
    assert words in _errors(resp)
    assert SECRET.encode() not in resp.content
    resp = boss.post(
        "/admin/dashboard/cluster/contexts/",
        {"kubeconfig_upload": SimpleUploadedFile("kc", text.encode())},
    )
    assert words in resp.json()["error"]


def test_no_error_page_or_report_shows_the_token(boss, monkeypatch):
    # An unforeseen failure deep in the client builder, where the parsed kubeconfig is a
    # local variable: the debug page (DEBUG on) and the mailed report (DEBUG off) hide
    # every local of the functions that hold it.
    def broken(*args, **kwargs):
        raise RuntimeError("an unforeseen failure")

    monkeypatch.setattr(clients, "_check_referenced_files", broken)
    caught: list = []

    def keep(sender, request, **kwargs):
        caught.append((request, sys.exc_info()))

    got_request_exception.connect(keep)
    try:
        resp = _post(boss, json.dumps(_kc()).encode(), skip_connection_check="on")
    finally:
        got_request_exception.disconnect(keep)
    assert resp.status_code == 500
    page = resp.content.decode()
    assert "an unforeseen failure" in page and "_build" in page  # the debug page it is
    assert SECRET not in page
    request, exc_info = caught[0]
    report = ExceptionReporter(request, *exc_info)
    assert SECRET not in report.get_traceback_text()
    assert SECRET not in report.get_traceback_html()
