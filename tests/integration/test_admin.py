"""The admin panel: cluster validation that says what is wrong, test connection against the
fake API server, contexts offered from the kubeconfig, encryption at rest, clusters taking
effect in the running collectors, wall display tokens, and the viewer command."""

from __future__ import annotations

import io
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from dashboard import access
from dashboard.clusters import connection as connection_test
from dashboard.clusters import crypto
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.models import Cluster, WallDisplay
from dashboard.pipeline import embedded
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer
from tests.helpers import collectors
from tests.helpers.wait import async_poll

TOKEN = "t0k3n-for-admin-tests"


pytestmark = pytest.mark.usefixtures("no_embedded_collectors")


@pytest.fixture(autouse=True)
def short_check_timeout(settings):
    settings.DAEMONVIZ_CHECK_TIMEOUT = 2.0


@pytest.fixture
def boss(db):
    user = get_user_model().objects.create_superuser("boss", password="boss-pw-123")
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def server():
    sim = Simulator.from_scenario("demo", seed=4)
    s = FakeApiServer(sim.store, port=0, token=TOKEN).start()
    yield s
    s.stop()


@pytest.fixture
def tls_server():
    sim = Simulator.from_scenario("demo", seed=4)
    s = FakeApiServer(sim.store, port=0, token=TOKEN, tls=True).start()
    yield s
    s.stop()


def _kubeconfig(tmp_path, server: FakeApiServer, name="kc", contexts=("fake",)) -> str:
    path = server.write_kubeconfig(tmp_path / name, context=contexts[0])
    if len(contexts) > 1:
        data = json.loads(path.read_text())
        for extra in contexts[1:]:
            data["contexts"].append({"name": extra, "context": data["contexts"][0]["context"]})
        path.write_text(json.dumps(data))
    return str(path)


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _form(**overrides) -> dict:
    data = {
        "name": "Prod",
        "slug": "prod",
        "enabled": "on",
        "display_order": "0",
        "source": "kubeconfig",
        "scenario": "demo",
        "sim_seed": "1",
    }
    data.update(overrides)
    return data


def _errors(resp) -> str:
    assert resp.status_code == 200, "expected the form back with errors"
    form = resp.context["adminform"].form
    return " ".join(str(e) for errs in form.errors.values() for e in errs)


# --------------------------------------------------------------------------- validation


def test_missing_kubeconfig_says_so(boss, tmp_path):
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(tmp_path / "no")))
    assert "file not found" in _errors(resp)
    resp = boss.post("/admin/dashboard/cluster/add/", _form())
    assert "give the path of a kubeconfig file" in _errors(resp)


def test_unreadable_kubeconfig_says_so(boss, tmp_path):
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(tmp_path)))
    assert "is a directory" in _errors(resp)
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(binary)))
    assert "unreadable" in _errors(resp)


def test_bad_yaml_says_where(boss, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nclusters: [\n  - name: x\n")
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(bad)))
    assert re.search(r"invalid YAML at line \d+, column \d+", _errors(resp))
    notkc = tmp_path / "list.yaml"
    notkc.write_text("- a\n- b\n")
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(notkc)))
    assert "not a kubeconfig" in _errors(resp)


def test_unknown_context_names_the_known_ones(boss, tmp_path, server):
    path = _kubeconfig(tmp_path, server, contexts=("one", "two"))
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=path, context="three"))
    assert "unknown context 'three' (contexts in the file: one, two)" in _errors(resp)


def test_unreachable_server_blocks_saving_unless_told(boss, tmp_path, server):
    path = tmp_path / "kc"
    server.write_kubeconfig(path)
    data = json.loads(path.read_text())
    data["clusters"][0]["cluster"]["server"] = _closed_port_url()
    path.write_text(json.dumps(data))
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(path)))
    errors = _errors(resp)
    assert "cannot reach the API server" in errors and "connection refused" in errors
    resp = boss.post(
        "/admin/dashboard/cluster/add/",
        _form(kubeconfig_path=str(path), skip_connection_check="on"),
    )
    assert resp.status_code == 302
    assert Cluster.objects.filter(slug="prod").exists()


def test_bad_certificate_says_so(boss, tmp_path, tls_server):
    path = tmp_path / "kc"
    tls_server.write_kubeconfig(path)
    data = json.loads(path.read_text())
    del data["clusters"][0]["cluster"]["certificate-authority-data"]  # not trusted now
    path.write_text(json.dumps(data))
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(path)))
    assert "TLS: certificate verify failed" in _errors(resp)
    data["clusters"][0]["cluster"]["certificate-authority-data"] = "bm90IGEgY2VydA=="
    path.write_text(json.dumps(data))
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=str(path)))
    assert "certificate-authority is not a valid PEM" in _errors(resp)


def test_good_kubeconfig_over_tls_saves(boss, tmp_path, tls_server):
    path = _kubeconfig(tmp_path, tls_server)
    resp = boss.post("/admin/dashboard/cluster/add/", _form(kubeconfig_path=path))
    assert resp.status_code == 302
    assert tls_server.non_get_requests == []


def test_scope_fields_are_validated(boss, tmp_path):
    resp = boss.post(
        "/admin/dashboard/cluster/add/",
        _form(
            source="simulated",
            namespaces_include="kube-system, Bad_NS",
            daemonset_selector="tier in (",
        ),
    )
    errors = _errors(resp)
    assert "not a valid namespace name: Bad_NS" in errors
    assert "cannot parse label selector" in errors or "label selector" in errors
    resp = boss.post(
        "/admin/dashboard/cluster/add/",
        _form(source="simulated", namespaces_include="kube-system  logging,"),
    )
    assert resp.status_code == 302
    assert Cluster.objects.get(slug="prod").namespaces_include == "kube-system, logging"


def test_exec_plugins_are_refused_for_uploads(boss):
    kubeconfig = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"exec": {"command": "aws", "apiVersion": "x"}}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    upload = SimpleUploadedFile("kc", json.dumps(kubeconfig).encode())
    resp = boss.post(
        "/admin/dashboard/cluster/add/", _form(source="uploaded", kubeconfig_upload=upload)
    )
    assert "exec plugins are disabled for uploaded kubeconfigs" in _errors(resp)


# --------------------------------------------------------------------------- contexts


def test_change_form_offers_the_files_contexts(boss, tmp_path, server):
    path = _kubeconfig(tmp_path, server, contexts=("alpha-ctx", "beta-ctx"))
    c = Cluster.objects.create(name="P", slug="p", source="kubeconfig", kubeconfig_path=path)
    html = boss.get(f"/admin/dashboard/cluster/{c.pk}/change/").content.decode()
    select = re.search(r'<select name="context"[^>]*>(.*?)</select>', html, re.S).group(1)
    assert 'value="alpha-ctx"' in select and 'value="beta-ctx"' in select
    assert "current-context (alpha-ctx)" in select


def test_contexts_endpoint_reads_a_path_or_an_upload(boss, tmp_path, server):
    path = _kubeconfig(tmp_path, server, contexts=("a", "b"))
    data = boss.post("/admin/dashboard/cluster/contexts/", {"kubeconfig_path": path}).json()
    assert data == {"contexts": ["a", "b"], "current": "a", "error": ""}
    with open(path, "rb") as f:
        upload = SimpleUploadedFile("kc", f.read())
    data = boss.post("/admin/dashboard/cluster/contexts/", {"kubeconfig_upload": upload}).json()
    assert data["contexts"] == ["a", "b"]
    data = boss.post("/admin/dashboard/cluster/contexts/", {"kubeconfig_path": "/nope"}).json()
    assert "file not found" in data["error"]
    assert boss.get("/admin/dashboard/cluster/contexts/").status_code == 405


# --------------------------------------------------------------------------- test connection


def test_test_connection_reports_each_check(tmp_path, server, db):
    c = Cluster.objects.create(
        name="P", slug="p", source="kubeconfig", kubeconfig_path=_kubeconfig(tmp_path, server)
    )
    report = connection_test.test_connection(c)
    assert report.ok
    assert report.probe.reachable.ok and report.probe.authenticated.ok
    assert set(report.probe.resources) == {
        "nodes",
        "pods",
        "daemonsets",
        "controllerrevisions",
        "services",
        "endpointslices",
        "events",
        "priorityclasses",
        "namespaces",
    }
    server.faults.forbid("list", "controllerrevisions")
    report = connection_test.test_connection(c)
    assert not report.ok and report.probe.forbidden == ["controllerrevisions"]
    detail = report.probe.resources["controllerrevisions"].detail
    assert "cannot list controllerrevisions.apps" in detail
    assert all(report.probe.resources[r].ok for r in ("nodes", "pods", "daemonsets"))
    # Limit=1 lists and /version, GET only: never a write, not even an access review.
    assert server.non_get_requests == []
    lists = [p for m, p in server.requests if "limit=1" in p]
    assert len(lists) >= 14


def test_test_connection_admin_action_names_the_forbidden_resource(boss, tmp_path, server):
    c = Cluster.objects.create(
        name="P", slug="p", source="kubeconfig", kubeconfig_path=_kubeconfig(tmp_path, server)
    )
    server.faults.forbid("list", "controllerrevisions")
    resp = boss.post(
        "/admin/dashboard/cluster/", {"action": "test_connection", "_selected_action": [c.pk]}
    )
    html = resp.content.decode()
    assert resp.status_code == 200
    row = re.search(r'data-check="list controllerrevisions">(.*?)</tr>', html, re.S).group(1)
    assert "st-failed" in row and "forbidden: cannot list controllerrevisions.apps" in row
    row = re.search(r'data-check="list nodes">(.*?)</tr>', html, re.S).group(1)
    assert "st-synced" in row
    # The per-cluster button, too.
    resp = boss.post(f"/admin/dashboard/cluster/{c.pk}/test-connection/")
    assert b"controllerrevisions" in resp.content
    assert boss.get(f"/admin/dashboard/cluster/{c.pk}/test-connection/").status_code == 302


def test_test_connection_reports_an_unreachable_server(tmp_path, server, db):
    path = tmp_path / "kc"
    server.write_kubeconfig(path)
    data = json.loads(path.read_text())
    data["clusters"][0]["cluster"]["server"] = _closed_port_url()
    path.write_text(json.dumps(data))
    c = Cluster.objects.create(name="P", slug="p", source="kubeconfig", kubeconfig_path=str(path))
    report = connection_test.test_connection(c)
    assert report.probe.reachable.ok is False
    assert "connection refused" in report.probe.reachable.detail
    assert all(check.ok is None for check in report.probe.resources.values())


def test_test_connection_reports_bad_credentials(tmp_path, server, db):
    path = server.write_kubeconfig(tmp_path / "kc", token="wrong-token")
    c = Cluster.objects.create(name="P", slug="p", source="kubeconfig", kubeconfig_path=str(path))
    report = connection_test.test_connection(c)
    assert report.probe.reachable.ok is True
    assert report.probe.authenticated.ok is False and "401" in report.probe.authenticated.detail


# --------------------------------------------------------------------------- encryption


def test_uploaded_kubeconfig_is_encrypted_and_used(boss, tmp_path, server):
    text = (server.write_kubeconfig(tmp_path / "kc")).read_text()
    upload = SimpleUploadedFile("kc", text.encode())
    resp = boss.post(
        "/admin/dashboard/cluster/add/", _form(source="uploaded", kubeconfig_upload=upload)
    )
    assert resp.status_code == 302
    c = Cluster.objects.get(slug="prod")
    assert TOKEN not in c.kubeconfig_encrypted and crypto.decrypt(c.kubeconfig_encrypted) == text
    assert connection_test.test_connection(c).ok
    # Editing without a new upload keeps it; switching source drops it.
    resp = boss.post(
        f"/admin/dashboard/cluster/{c.pk}/change/", _form(source="uploaded", display_order="3")
    )
    assert resp.status_code == 302
    c.refresh_from_db()
    assert c.display_order == 3 and crypto.decrypt(c.kubeconfig_encrypted) == text
    resp = boss.post(f"/admin/dashboard/cluster/{c.pk}/change/", _form(source="simulated"))
    c.refresh_from_db()
    assert c.kubeconfig_encrypted == ""


def test_encryption_keys(settings):
    settings.DAEMONVIZ_ENCRYPTION_KEY = ""
    old = crypto.encrypt("hello")
    settings.DAEMONVIZ_ENCRYPTION_KEY = "a long random operator chosen secret string"
    new = crypto.encrypt("hello")
    assert crypto.decrypt(new) == "hello"
    assert crypto.decrypt(old) == "hello"  # the SECRET_KEY-derived key still decrypts
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    settings.DAEMONVIZ_ENCRYPTION_KEY = f"{key},a long random operator chosen secret string"
    assert crypto.decrypt(new) == "hello"  # rotation: the old key stays second
    assert Fernet(key.encode()).decrypt(crypto.encrypt("x").encode()) == b"x"
    settings.DAEMONVIZ_ENCRYPTION_KEY = key
    settings.SECRET_KEY = "a different secret key entirely"
    with pytest.raises(crypto.DecryptionError) as exc:
        crypto.decrypt(new)
    assert "cannot be decrypted" in str(exc.value) and new not in str(exc.value)


# --------------------------------------------------------------------------- status


def test_changelist_shows_live_status_badges(boss, db):
    c = Cluster.objects.create(name="Sim", slug="sim")
    Cluster.objects.create(name="Off", slug="off", enabled=False)
    collector = collectors.make(ClusterConfig(slug="sim", name="Sim", seed=2))
    collector.start_source(run_clock=False)
    collector.tick()
    registry.register(collector)
    html = boss.get("/admin/dashboard/cluster/").content.decode()
    assert 'class="sbadge st-synced"' in html and "disabled" in html
    assert f'hx-get="/admin/dashboard/cluster/{c.pk}/badge/"' in html
    badge = boss.get(f"/admin/dashboard/cluster/{c.pk}/badge/").content.decode()
    rt = collector.runtime_status()
    assert f"{rt.nodes} nodes" in badge and rt.nodes > 0 and rt.pods > 0
    page = boss.get(f"/admin/dashboard/cluster/{c.pk}/change/").content.decode()
    assert "last sync" in page and "daemon pods" in page


# --------------------------------------------------------------------------- reconcile


@pytest.mark.django_db(transaction=True)
async def test_cluster_changes_take_effect_without_a_restart(settings):
    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = True
    settings.DAEMONVIZ_SIM_CHURN = 0.0
    await embedded.ensure_started()
    try:
        # Saves happen in a worker thread, as admin requests do under ASGI.
        cluster = await sync_to_async(Cluster.objects.create)(name="A", slug="a")
        assert await async_poll(lambda: registry.get("a") is not None)
        first = registry.get("a")

        cluster.sim_seed = 7
        await sync_to_async(cluster.save)()
        assert await async_poll(lambda: registry.get("a") not in (None, first))
        assert registry.get("a").cluster.seed == 7

        cluster.enabled = False
        await sync_to_async(cluster.save)()
        assert await async_poll(lambda: registry.get("a") is None)

        cluster.enabled = True
        await sync_to_async(cluster.save)()
        assert await async_poll(lambda: registry.get("a") is not None)

        cluster.slug = "a2"
        await sync_to_async(cluster.save)()
        assert await async_poll(
            lambda: registry.get("a") is None and registry.get("a2") is not None
        )

        await sync_to_async(cluster.delete)()
        assert await async_poll(lambda: registry.get("a2") is None)
    finally:
        await embedded.stop()


# --------------------------------------------------------------------------- walls


def test_wall_admin_shows_the_token_once(boss, db):
    c = Cluster.objects.create(name="A", slug="a")
    resp = boss.post(
        "/admin/dashboard/walldisplay/add/",
        {"name": "NOC", "clusters": [c.pk], "rotation_seconds": "20", "theme": "dark"},
    )
    assert resp.status_code == 200 and "no-store" in resp["Cache-Control"]
    url = re.search(r'<pre class="cmds wall-url">(http[^<]+)</pre>', resp.content.decode()).group(1)
    token = url.rstrip("/").rsplit("/", 1)[1]
    wall = WallDisplay.objects.get(name="NOC")
    assert access.wall_for_token(token) == wall
    page = boss.get(f"/admin/dashboard/walldisplay/{wall.pk}/change/").content.decode()
    assert token not in page and f"active ({token[:4]}…" in page
    assert token not in boss.get("/admin/dashboard/walldisplay/").content.decode()

    resp = boss.post(f"/admin/dashboard/walldisplay/{wall.pk}/rotate/")
    new = re.search(r"/wall/([^/<]+)/", resp.content.decode()).group(1)
    assert new != token and access.wall_for_token(token) is None
    assert access.wall_for_token(new) == wall

    boss.post(
        "/admin/dashboard/walldisplay/",
        {"action": "revoke_tokens", "_selected_action": [wall.pk]},
    )
    assert access.wall_for_token(new) is None
    assert "revoked" in boss.get("/admin/dashboard/walldisplay/").content.decode()
    resp = boss.post(
        "/admin/dashboard/walldisplay/",
        {"action": "rotate_tokens", "_selected_action": [wall.pk]},
    )
    newest = re.search(r"/wall/([^/<]+)/", resp.content.decode()).group(1)
    assert access.wall_for_token(newest) == wall


# --------------------------------------------------------------------------- users


def test_createviewer_makes_a_non_staff_user(db):
    out = io.StringIO()
    call_command("createviewer", "alice", stdout=out)
    password = out.getvalue().strip().rsplit(": ", 1)[1]
    user = get_user_model().objects.get(username="alice")
    assert not user.is_staff and not user.is_superuser and user.check_password(password)
    c = Client()
    # Through the sign-in page: django-axes wants the request with every authentication.
    resp = c.post("/accounts/login/", {"username": "alice", "password": password})
    assert resp.status_code == 302
    assert c.get("/").status_code == 200
    assert c.get("/admin/").status_code == 302


def test_createviewer_refuses_to_demote_an_admin(db):
    get_user_model().objects.create_superuser("root", password="root-pw-123")
    with pytest.raises(CommandError, match="is an admin"):
        call_command("createviewer", "root", stdout=io.StringIO())


def test_createviewer_reads_the_password_from_stdin(db, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    call_command("createviewer", "bob", "--password-stdin", stdout=io.StringIO())
    assert get_user_model().objects.get(username="bob").check_password("correct horse battery")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="too short"):
        call_command("createviewer", "carol", "--password-stdin", stdout=io.StringIO())
