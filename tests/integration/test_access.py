"""Access is tested, not assumed: sign-in on every URL and socket, roles, wall tokens,
CSRF, escaping of hostile names, and credentials kept out of pages and logs."""

from __future__ import annotations

import base64
import itertools
import json
import logging

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from dashboard import access
from dashboard.clusters.config import ClusterConfig
from dashboard.collect.collector import ClusterCollector
from dashboard.collect.registry import registry
from dashboard.coverage.matrix import ADDED
from dashboard.grid import frames
from dashboard.grid.frames import group_name
from dashboard.grid.model import GridFilters
from dashboard.models import Cluster, WallDisplay
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.wall.fragments import render_wall_cluster
from tests.helpers import collectors, k8s

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # a real handshake always has one
SCRIPT = "<script>alert(1)</script>"
QUOTED_DS = "agent-\"quoted\"-'single'"
LONG_UNICODE = "名前-ünïcødé-🚀-" * 20
HOSTILE_CLUSTER = f'{SCRIPT} "cluster" {LONG_UNICODE}'
POOL = "eks.amazonaws.com/nodegroup"
TOKEN_SECRET = "dvz-SECRET-token-7f3a9c1e5b2d4068"
KEY_SECRET = "dvz-SECRET-client-key-90e1d2c3b4a5"
PASSWORD_SECRET = "dvz-SECRET-password-55aa66bb"


pytestmark = pytest.mark.usefixtures("no_embedded_collectors")


def _objects(pool_value: str = "general"):
    nodes = [
        k8s.node("node-a", labels={POOL: pool_value}),
        k8s.node("node-b", labels={POOL: pool_value}),
    ]
    proxy = k8s.daemonset("kube-proxy", tolerations=[k8s.toleration()])
    objs = [*nodes, proxy, k8s.controller_revision(proxy, 1, "h1")]
    objs += [k8s.daemon_pod(proxy, "node-a"), k8s.daemon_pod(proxy, "node-b")]
    return objs


def _collector(slug: str, name: str, objs) -> ClusterCollector:
    c = collectors.make(ClusterConfig(slug=slug, name=name), get_channel_layer())
    c.matrix = k8s.build(objs)
    registry.register(c)
    return c


@pytest.fixture
def clusters(db):
    a = Cluster.objects.create(name="Alpha", slug="alpha")
    b = Cluster.objects.create(name="Bravo secret cluster", slug="bravo")
    _collector("alpha", "Alpha", _objects())
    _collector("bravo", "Bravo secret cluster", _objects())
    return a, b


@pytest.fixture
def viewer(db):
    return get_user_model().objects.create_user("viewer", password="viewer-pw-123")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("boss", password="boss-pw-123")


@pytest.fixture
def viewer_client(viewer):
    c = Client()
    c.force_login(viewer)
    return c


@pytest.fixture
def admin_client_(staff):
    c = Client()
    c.force_login(staff)
    return c


def _wall(clusters, *shown) -> tuple[WallDisplay, str]:
    wall = WallDisplay.objects.create(name="Ops room")
    wall.clusters.set(shown)
    return wall, access.issue_token(wall)


# --------------------------------------------------------------------------- sign-in

SAMPLE_KWARGS = {
    "slug": "alpha",
    "namespace": "kube-system",
    "name": "kube-proxy",
    "token": "t",
    "fmt": "csv",
}
# How each named URL is reached signed out. Anything new must be added here, deliberately.
PUBLIC = {"login": 200, "logout": 405}  # logout is POST-only; GET shows nothing
# Probes and Prometheus: open (no cluster data beyond names and counts on /metrics, which
# takes a bearer token when DAEMONVIZ_METRICS_TOKEN is set; see test_metrics.py).
PUBLIC |= {"healthz": 200, "readyz": 200, "metrics": 200}
TOKEN_ONLY = {"wall", "wall-sparklines"}  # the wall and its sparklines


def _patterns(resolver, prefix=""):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            if getattr(p, "namespace", None) == "admin":
                continue  # the admin is covered by its own tests below
            yield from _patterns(p, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield p.name, prefix + str(p.pattern), p


def _sample_url(p: URLPattern) -> str:
    names = p.pattern.regex.groupindex
    return reverse(p.name, kwargs={k: SAMPLE_KWARGS[k] for k in names})


def test_every_url_is_accounted_for():
    names = {name for name, _, _ in _patterns(get_resolver())}
    assert names == {
        "login",
        "logout",
        "password_change",
        "password_change_done",
        "overview",
        "overview-cards",
        "grid",
        "grid-body",
        "grid-status",
        "grid-summary",
        "cell",
        "cell-log",  # signed-in users; only with the cluster's logs allowed (test_cell_logs)
        "daemonset",
        "node",
        "preview",
        "export",
        "daemonset-export",
        "history",
        "daemonset-history",
        "node-history",
        "healthz",
        "readyz",
        "metrics",
        "wall",
        "wall-sparklines",
    }, "a URL was added or removed: decide its access rule here"


@pytest.mark.parametrize("htmx", [False, True])
def test_signed_out_every_page_redirects_to_sign_in(client, clusters, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for name, _, pattern in _patterns(get_resolver()):
        url = _sample_url(pattern)
        resp = client.get(url, **headers)
        if name in PUBLIC:
            assert resp.status_code == PUBLIC[name], url
        elif name in TOKEN_ONLY:
            assert resp.status_code == 404, url  # a bad token: nothing to see
        else:
            assert resp.status_code == 302, url
            assert resp["Location"].startswith("/accounts/login/?next="), url


def test_sign_in_page_is_in_the_app_style(client):
    html = client.get("/accounts/login/").content.decode()
    assert "daemonviz.css" in html and 'class="login card"' in html


def test_admin_sign_in_goes_to_the_app_sign_in(client):
    resp = client.get("/admin/", follow=True)
    assert resp.redirect_chain[-1][0].startswith("/accounts/login/?next=/admin/")
    assert b'name="username"' in resp.content


@pytest.mark.django_db(transaction=True)
async def test_signed_out_sockets_are_refused(clusters):
    for path in ("/ws/clusters/alpha/grid/", "/ws/clusters/bravo/grid/"):
        comm = WebsocketCommunicator(_app(), path, headers=[ORIGIN, HOST])
        connected, code = await comm.connect()
        assert not connected and code == 4401


# A socket that reaches the consumer signed out is closed by it with 4401; one refused for
# its Origin never gets there (closed with 403 before the handshake is accepted).
@pytest.mark.parametrize(
    ("host", "origin", "reaches_the_app"),
    [
        (b"127.0.0.1:8000", b"http://127.0.0.1:8000", True),
        (b"localhost:8000", b"http://LOCALHOST:8000", True),
        (b"127.0.0.1", b"http://127.0.0.1:80", True),  # the default port, spelled or not
        # The same host on another port is another site (another service on the machine).
        (b"localhost:8000", b"http://localhost:6666", False),
        (b"127.0.0.1:8000", b"http://127.0.0.1", False),
        (b"127.0.0.1:8000", b"https://127.0.0.1:8000", False),  # another scheme
        (b"127.0.0.1:8000", b"http://localhost:8000", False),  # another host, though allowed
        (b"127.0.0.1:8000", b"http://evil.example:8000", False),
        (b"127.0.0.1:8000", b"null", False),
        (b"evil.example", b"http://evil.example", False),  # a host not in ALLOWED_HOSTS
        (b"127.0.0.1:8000", None, False),
    ],
)
@pytest.mark.django_db(transaction=True)
async def test_socket_origin_must_be_this_site_scheme_host_and_port(
    clusters, host, origin, reaches_the_app
):
    headers = [(b"host", host)] + ([(b"origin", origin)] if origin else [])
    for path in ("/ws/clusters/alpha/grid/", f"/ws/wall/{'x' * 43}/"):
        comm = WebsocketCommunicator(_app(), path, headers=headers)
        connected, code = await comm.connect()
        assert not connected
        assert (code in (4401, 4403)) is reaches_the_app, (path, code)


@pytest.mark.django_db(transaction=True)
async def test_socket_origin_behind_a_tls_ingress_and_trusted_origins(clusters, settings):
    settings.ALLOWED_HOSTS = ["dash.example"]
    headers = [(b"host", b"dash.example"), (b"origin", b"https://dash.example")]
    proto = (b"x-forwarded-proto", b"https")

    async def code_of(*extra):
        comm = WebsocketCommunicator(_app(), "/ws/clusters/alpha/grid/", headers=[*headers, *extra])
        return (await comm.connect())[1]

    assert await code_of(proto) == 403  # the proxy header is not trusted unless configured
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await code_of(proto) == 4401
    assert await code_of() == 403  # plain http to the pod: the https page is another origin
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example"]
    assert await code_of() == 4401


# --------------------------------------------------------------------------- roles


ADMIN_URLS = [
    "/admin/",
    "/admin/dashboard/cluster/",
    "/admin/dashboard/cluster/add/",
    "/admin/dashboard/walldisplay/",
    "/admin/auth/user/",
    "/admin/auth/user/add/",
]


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_viewer_never_reaches_the_admin(viewer_client, clusters, url):
    resp = viewer_client.get(url, follow=True)
    assert resp.redirect_chain, url
    assert resp.redirect_chain[-1][0].startswith("/accounts/login/"), url
    assert "doesn't have access" in resp.content.decode()


def test_viewer_cannot_post_to_admin_views(viewer_client, clusters, staff):
    a, _ = clusters
    wall, token = _wall(clusters, a)
    posts = [
        (f"/admin/dashboard/cluster/{a.pk}/test-connection/", {}),
        ("/admin/dashboard/cluster/contexts/", {"kubeconfig_path": "/etc/passwd"}),
        (f"/admin/dashboard/walldisplay/{wall.pk}/rotate/", {}),
        (f"/admin/dashboard/walldisplay/{wall.pk}/revoke/", {}),
        ("/admin/dashboard/cluster/add/", {"name": "x", "slug": "x", "source": "simulated"}),
        (
            "/admin/dashboard/cluster/",
            {"action": "disable", "_selected_action": [a.pk]},
        ),
    ]
    for url, data in posts:
        resp = viewer_client.post(url, data)
        assert resp.status_code == 302 and "/login/" in resp["Location"], url
    a.refresh_from_db()
    wall.refresh_from_db()
    assert a.enabled and wall.active and not Cluster.objects.filter(slug="x").exists()
    assert access.wall_for_token(token) == wall


def test_viewer_sees_the_dashboards(viewer_client, clusters):
    assert viewer_client.get("/").status_code == 200
    assert viewer_client.get("/clusters/alpha/").status_code == 200
    assert b"/admin/" not in viewer_client.get("/").content  # no admin link for viewers


def test_admin_reaches_the_admin(admin_client_, clusters):
    resp = admin_client_.get("/admin/dashboard/cluster/")
    assert resp.status_code == 200
    assert b"daemonviz admin" in resp.content and b"css/admin.css" in resp.content


def test_inactive_user_is_signed_out(client, viewer, clusters):
    client.force_login(viewer)
    viewer.is_active = False
    viewer.save()
    assert client.get("/").status_code == 302


# --------------------------------------------------------------------------- wall tokens


def test_wall_page_shows_exactly_its_clusters(client, clusters):
    a, _ = clusters
    _, token = _wall(clusters, a)
    resp = client.get(f"/wall/{token}/")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "Alpha" in html and "Bravo" not in html
    assert f"/ws/wall/{token}/" in html
    assert resp["Cache-Control"] == "no-store" and resp["Referrer-Policy"] == "no-referrer"
    assert "sessionid" not in resp.cookies  # the token never becomes a session


def test_wall_token_opens_nothing_else(client, clusters):
    a, _ = clusters
    _, token = _wall(clusters, a)
    assert client.get(f"/wall/{token}/").status_code == 200
    urls = [
        "/",
        "/overview/cards/",
        "/clusters/alpha/",
        "/clusters/alpha/grid/",
        "/clusters/alpha/status/",
        "/clusters/alpha/cell/?node=node-a&ds=kube-system/kube-proxy",
        "/clusters/alpha/nodes/node-a/",
        "/clusters/alpha/daemonsets/kube-system/kube-proxy/",
        "/clusters/bravo/",
    ]
    for url in urls:
        for extra in (
            {},
            {"HTTP_AUTHORIZATION": f"Bearer {token}"},
            {"QUERY_STRING": f"token={token}"},
        ):
            resp = client.get(url, **extra)
            assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/"), (
                url,
                extra,
            )
    client.cookies["token"] = token
    assert client.get("/admin/").status_code == 302
    assert client.get(f"/admin/dashboard/cluster/{a.pk}/change/").status_code == 302


def test_unknown_revoked_and_rotated_tokens_are_404(client, clusters):
    a, _ = clusters
    wall, token = _wall(clusters, a)
    assert client.get("/wall/" + "x" * 43 + "/").status_code == 404
    assert client.get("/wall/short/").status_code == 404
    new = access.issue_token(wall)
    assert client.get(f"/wall/{token}/").status_code == 404
    assert client.get(f"/wall/{new}/").status_code == 200
    access.revoke(wall)
    assert client.get(f"/wall/{new}/").status_code == 404
    assert access.wall_for_token(new) is None


def test_token_is_stored_only_as_a_hash(clusters):
    a, _ = clusters
    wall, token = _wall(clusters, a)
    wall.refresh_from_db()
    assert token not in wall.token_hash and wall.token_hash == access.hash_token(token)
    assert len(token) >= 43  # token_urlsafe(32)


def test_wall_tokens_are_redacted_from_request_logs(client, clusters, caplog):
    a, _ = clusters
    _, token = _wall(clusters, a)
    caplog.set_level(logging.DEBUG)
    client.get(f"/wall/{token}x/")  # a 404: django.request logs the path
    assert "/wall/" in caplog.text and token not in caplog.text


async def _wall_socket(token: str) -> tuple[WebsocketCommunicator, bool, int | None]:
    comm = WebsocketCommunicator(_app(), f"/ws/wall/{token}/", headers=[ORIGIN, HOST])
    connected, code = await comm.connect()
    return comm, connected, code


async def _first_frames(comm: WebsocketCommunicator) -> list[dict]:
    """What a wall socket sends on connect: hello, one `cluster` frame per cluster, status."""
    frames = [json.loads(await comm.receive_from())]
    while frames[-1]["t"] != "status":
        frames.append(json.loads(await comm.receive_from()))
    return frames


@pytest.mark.django_db(transaction=True)
async def test_wall_socket_gets_only_its_clusters(clusters):
    a, _ = clusters
    _, token = await database_sync_to_async(_wall)(clusters, a)
    comm, connected, _ = await _wall_socket(token)
    assert connected
    first = await _first_frames(comm)
    assert [f["t"] for f in first] == ["hello", "cluster", "status"]
    assert first[0]["clusters"] == ["alpha"] and first[1]["name"] == "Alpha"
    assert first[1]["data"]["headline"]["nodes"] == 2 and list(first[2]["clusters"]) == ["alpha"]
    assert "Bravo" not in json.dumps(first) and "bravo" not in json.dumps(first)
    assert await comm.receive_nothing(0.1)
    layer = get_channel_layer()
    headline = {"coverage": 50.0, "nodes": 2, "missing": 1}
    other = _delta_message("bravo", headline)
    await layer.group_send(group_name("bravo"), other)
    assert await comm.receive_nothing(0.2)
    # Even a message for another cluster delivered to this socket's groups is dropped.
    await layer.group_send(access.wall_group(await _wall_id(token)), other)
    assert await comm.receive_nothing(0.2)
    mine = _delta_message("alpha", headline)
    await layer.group_send(group_name("alpha"), mine)
    frame = json.loads(await comm.receive_from())
    assert frame["name"] == "Alpha" and frame["headline"]["coverage"] == 50.0
    await comm.send_to(text_data="anything")  # read-only: ignored
    assert await comm.receive_nothing(0.1)
    await comm.disconnect()


@pytest.fixture
def redis_layer(settings, redis_server, redis_client, monkeypatch):
    """Scale-out settings (REDIS_URL, the channels-redis layer), and every delta by
    reference however small (dashboard/collect/deltarefs.py)."""
    from daemonviz.settings import redis_channel_layer
    from dashboard.collect import deltarefs

    settings.REDIS_URL = redis_server.url
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    monkeypatch.setattr(deltarefs, "INLINE_BYTES", 0)
    return redis_client


@pytest.mark.django_db(transaction=True)
async def test_wall_socket_reads_deltas_by_reference_and_resyncs_when_gone(redis_layer, clusters):
    from dashboard import pipeline
    from dashboard.collect import deltarefs

    a, _ = clusters
    _, token = await database_sync_to_async(_wall)(clusters, a)
    comm, connected, _ = await _wall_socket(token)
    assert connected
    await _first_frames(comm)
    publish = pipeline.channel_publisher(get_channel_layer())
    revision = next(_revisions)
    await publish({"slug": "alpha", "revision": revision, "headline": {"coverage": 42.0}})
    assert redis_layer.exists(deltarefs.ref_key("alpha", "", revision))
    frame = json.loads(await comm.receive_from())
    assert frame["t"] == "headline" and frame["headline"] == {"coverage": 42.0}

    revision = next(_revisions)
    gone = frames.reference_message(
        {"slug": "alpha", "revision": revision}, deltarefs.ref_key("alpha", "", revision)
    )
    await get_channel_layer().group_send(group_name("alpha"), gone)
    # The payload is not in Redis: the socket gets the cluster's whole frame as of now.
    frame = json.loads(await comm.receive_from())
    assert frame["t"] == "cluster" and frame["name"] == "Alpha"
    assert frame["data"]["headline"]["nodes"] == 2
    await comm.disconnect()


def _delta_message(slug: str, headline: dict) -> dict:
    """What a collector publishes, reduced to what a wall reads (the revision keeps each
    message apart in the consumers' unpacking cache)."""
    return frames.delta_message({"slug": slug, "revision": next(_revisions), "headline": headline})


_revisions = itertools.count(1)


@database_sync_to_async
def _wall_id(token: str) -> int:
    return access.wall_for_token(token).pk


@pytest.mark.django_db(transaction=True)
async def test_wall_token_does_not_open_grid_sockets(clusters):
    a, _ = clusters
    _, token = await database_sync_to_async(_wall)(clusters, a)
    for path in (f"/ws/clusters/alpha/grid/?token={token}", f"/ws/clusters/bravo/grid/?t={token}"):
        comm = WebsocketCommunicator(
            _app(), path, headers=[ORIGIN, HOST, (b"authorization", f"Bearer {token}".encode())]
        )
        connected, _ = await comm.connect()
        assert not connected, path


@pytest.mark.django_db(transaction=True)
async def test_bad_wall_token_socket_is_refused(clusters):
    _, connected, code = await _wall_socket("x" * 43)
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["revoke", "rotate", "delete"])
async def test_revoking_closes_open_sockets(clusters, how):
    a, _ = clusters
    wall, token = await database_sync_to_async(_wall)(clusters, a)
    comm, connected, _ = await _wall_socket(token)
    assert connected
    await _first_frames(comm)
    if how == "revoke":
        await database_sync_to_async(access.revoke)(wall)
    elif how == "rotate":
        await database_sync_to_async(access.issue_token)(wall)
    else:
        await database_sync_to_async(wall.delete)()
    out = await comm.receive_output(timeout=2)
    assert out == {"type": "websocket.close", "code": 4403}
    _, connected, _ = await _wall_socket(token)
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_changing_a_walls_clusters_moves_its_open_sockets(clusters):
    a, b = clusters
    wall, token = await database_sync_to_async(_wall)(clusters, a)
    comm, connected, _ = await _wall_socket(token)
    assert connected
    await _first_frames(comm)
    await database_sync_to_async(wall.clusters.set)([b])
    frame = json.loads(await comm.receive_from(timeout=2))
    assert frame["t"] == "cluster" and frame["name"] == "Bravo secret cluster"
    assert json.loads(await comm.receive_from(timeout=2)) == {"t": "reload"}
    layer = get_channel_layer()
    headline = {"coverage": 10.0}
    await layer.group_send(
        group_name("alpha"),
        _delta_message("alpha", headline),
    )
    assert await comm.receive_nothing(0.2)
    await comm.disconnect()


# --------------------------------------------------------------------------- CSRF


def test_csrf_is_enforced_on_forms(viewer, staff, clusters):
    a, _ = clusters
    wall, token = _wall(clusters, a)
    anon = Client(enforce_csrf_checks=True)
    assert (
        anon.post(
            "/accounts/login/", {"username": "viewer", "password": "viewer-pw-123"}
        ).status_code
        == 403
    )
    signed = Client(enforce_csrf_checks=True)
    signed.force_login(viewer)
    assert signed.post("/accounts/logout/").status_code == 403
    assert signed.post("/accounts/password/", {}).status_code == 403
    assert signed.post(f"/clusters/{a.slug}/preview/", {"plan": "label * a=b"}).status_code == 403
    boss = Client(enforce_csrf_checks=True)
    boss.force_login(staff)
    for url, data in [
        ("/admin/dashboard/cluster/add/", {"name": "x", "slug": "x", "source": "simulated"}),
        (f"/admin/dashboard/cluster/{a.pk}/test-connection/", {}),
        ("/admin/dashboard/cluster/contexts/", {"kubeconfig_path": "/tmp"}),
        (f"/admin/dashboard/walldisplay/{wall.pk}/rotate/", {}),
        (f"/admin/dashboard/walldisplay/{wall.pk}/revoke/", {}),
        ("/admin/dashboard/cluster/", {"action": "disable", "_selected_action": [a.pk]}),
    ]:
        assert boss.post(url, data).status_code == 403, url
    assert access.wall_for_token(token) is not None
    assert not Cluster.objects.filter(slug="x").exists()
    # With the token, the same sign-in works: the check is CSRF, not something else.
    page = anon.get("/accounts/login/")
    csrf = page.cookies["csrftoken"].value
    resp = anon.post(
        "/accounts/login/",
        {"username": "viewer", "password": "viewer-pw-123", "csrfmiddlewaretoken": csrf},
    )
    assert resp.status_code == 302


# --------------------------------------------------------------------------- escaping


def _hostile_objects():
    nodes = [
        k8s.node("node-a", labels={POOL: SCRIPT, "team": f'"{LONG_UNICODE}"'}),
        k8s.node("node-b", labels={POOL: SCRIPT}),
    ]
    ds = k8s.daemonset(QUOTED_DS, "kube-system", tolerations=[k8s.toleration()])
    ds["metadata"]["labels"]["evil"] = "x"
    crash = k8s.daemon_pod(
        ds,
        "node-b",
        container_state=k8s.waiting("CrashLoopBackOff", f"back-off {SCRIPT}"),
        restarts=3,
        last_state=k8s.terminated("Error", 1),
    )
    return [*nodes, ds, k8s.controller_revision(ds, 1, "h1"), k8s.daemon_pod(ds, "node-a"), crash]


@pytest.fixture
def hostile(db):
    c = Cluster.objects.create(name=HOSTILE_CLUSTER, slug="evil", group_by_label=POOL)
    collector = _collector("evil", HOSTILE_CLUSTER, _hostile_objects())
    return c, collector


def test_hostile_names_are_escaped_on_every_page(viewer_client, admin_client_, hostile):
    cluster, _ = hostile
    ds_key = f"kube-system/{QUOTED_DS}"
    from urllib.parse import quote

    pages = [
        "/",
        "/overview/cards/",
        "/clusters/evil/",
        f"/clusters/evil/?group={quote(POOL)}",
        "/clusters/evil/grid/",
        "/clusters/evil/status/",
        f"/clusters/evil/cell/?node=node-b&ds={quote(ds_key)}",
        "/clusters/evil/nodes/node-a/",
        f"/clusters/evil/daemonsets/kube-system/{quote(QUOTED_DS)}/",
    ]
    seen_escaped = False
    for url in pages:
        resp = viewer_client.get(url)
        assert resp.status_code == 200, url
        html = resp.content.decode()
        assert "<script>alert" not in html, url
        seen_escaped |= "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert seen_escaped
    wall = WallDisplay.objects.create(name=f"{SCRIPT} wall")
    wall.clusters.set([cluster])
    token = access.issue_token(wall)
    for url in [
        "/admin/dashboard/cluster/",
        f"/admin/dashboard/cluster/{cluster.pk}/change/",
        "/admin/dashboard/walldisplay/",
        f"/admin/dashboard/walldisplay/{wall.pk}/change/",
    ]:
        html = admin_client_.get(url).content.decode()
        assert "<script>alert" not in html, url
    html = Client().get(f"/wall/{token}/").content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_hostile_names_are_escaped_in_websocket_fragments(hostile):
    _, collector = hostile
    base = collector.matrix.revision
    node = k8s.node("node-c", labels={POOL: SCRIPT, "x": f"{SCRIPT}'\""})
    with collector.lock:
        delta = collector.matrix.apply(ADDED, k8s.to_record(node))
        payload = collector._payload(delta, base)
    assert payload["rows_added"] and payload["headline"] is not None
    pushed = [
        frames.client_frame(payload, GridFilters()),
        frames.client_frame(payload, GridFilters(group=POOL)),
        render_wall_cluster("evil", HOSTILE_CLUSTER, payload["headline"], oob=True),
    ]
    frames.delta_message(payload)  # plain data: it crosses Redis in the scale-out setup
    for frame in pushed:
        assert frame and "<script>alert" not in frame
    assert "&lt;script&gt;" in pushed[2]


# --------------------------------------------------------------------------- credentials


def _secret_kubeconfig(url: str, *, key: bool = False) -> str:
    user = {"token": TOKEN_SECRET, "password": PASSWORD_SECRET, "username": "ops"}
    if key:
        user = {
            "client-certificate-data": base64.b64encode(b"not a certificate").decode(),
            "client-key-data": base64.b64encode(KEY_SECRET.encode()).decode(),
        }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [
                {"name": "prod", "context": {"cluster": "c", "user": "u"}},
                {"name": "staging", "context": {"cluster": "c", "user": "u"}},
            ],
            "current-context": "prod",
        },
        indent=1,
    )


def _secrets_in(text: str) -> list[str]:
    key_b64 = base64.b64encode(KEY_SECRET.encode()).decode()
    return [s for s in (TOKEN_SECRET, KEY_SECRET, PASSWORD_SECRET, key_b64) if s in text]


@pytest.fixture
def fake_server():
    sim = Simulator.from_scenario("demo", seed=2)
    server = FakeApiServer(sim.store, port=0, token=TOKEN_SECRET).start()
    yield server
    server.stop()


def _upload(admin_client_, content: str, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {
        "name": "Uploaded",
        "slug": "uploaded",
        "enabled": "on",
        "display_order": "0",
        "source": "uploaded",
        "scenario": "demo",
        "sim_seed": "1",
        "kubeconfig_upload": SimpleUploadedFile("kubeconfig", content.encode()),
        **extra,
    }
    return admin_client_.post("/admin/dashboard/cluster/add/", data)


def test_credentials_never_reach_pages_or_logs(admin_client_, fake_server, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    good = _secret_kubeconfig(fake_server.url)

    # A failing upload: unknown context. The error names contexts, never credentials.
    resp = _upload(admin_client_, good, context="nope")
    bodies.append(resp.content.decode())
    assert resp.status_code == 200 and "unknown context" in bodies[-1]
    assert "prod, staging" in bodies[-1]

    # Bad YAML right after a secret: the message gives line/column, not the text.
    broken = f"users:\n- name: u\n  user:\n    token: {TOKEN_SECRET}\n    x: [unclosed\n"
    resp = _upload(admin_client_, broken)
    bodies.append(resp.content.decode())
    assert "invalid YAML" in bodies[-1]

    # A bad client key (client certificates are only used over https): the loader refuses
    # it without quoting it.
    resp = _upload(admin_client_, _secret_kubeconfig("https://127.0.0.1:9", key=True))
    bodies.append(resp.content.decode())
    assert "not valid PEM" in bodies[-1]

    # A good upload: saved encrypted, and nothing shows it afterwards.
    resp = _upload(admin_client_, good, context="staging")
    assert resp.status_code == 302, resp.context["adminform"].form.errors
    cluster = Cluster.objects.get(slug="uploaded")
    assert cluster.context == "staging"
    assert not _secrets_in(cluster.kubeconfig_encrypted)
    for url in (
        "/admin/dashboard/cluster/",
        f"/admin/dashboard/cluster/{cluster.pk}/change/",
    ):
        bodies.append(admin_client_.get(url).content.decode())
    resp = admin_client_.post(f"/admin/dashboard/cluster/{cluster.pk}/test-connection/")
    bodies.append(resp.content.decode())
    assert "credentials accepted" in bodies[-1]

    # The collector with a wrong token: 401 in words, no token.
    wrong = good.replace(TOKEN_SECRET, TOKEN_SECRET + "-expired")
    from dashboard.clusters.crypto import encrypt

    cluster.kubeconfig_encrypted = encrypt(wrong)
    cluster.save()
    resp = admin_client_.post(f"/admin/dashboard/cluster/{cluster.pk}/test-connection/")
    bodies.append(resp.content.decode())
    assert "401" in bodies[-1]
    collector = collectors.make(ClusterConfig.from_model(cluster))
    try:
        collector.start_source()
        import time

        deadline = time.monotonic() + 10
        while collector.status.state != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
        rt = collector.runtime_status()
        assert rt.state == "failed" and "401" in rt.last_error
        registry.register(collector)
        bodies.append(admin_client_.get("/admin/dashboard/cluster/").content.decode())
        bodies.append(repr(collector.cluster) + repr(rt))
    finally:
        collector.stop_source()

    for body in bodies:
        assert not _secrets_in(body), body[:2000]
    assert not _secrets_in(caplog.text)


def test_kubeconfig_file_secrets_are_scrubbed_from_messages(tmp_path, admin_client_):
    from dashboard.clusters.redact import kubeconfig_secrets, scrub

    text = f"users:\n- name: u\n  user:\n    token: {TOKEN_SECRET}\n"
    secrets = kubeconfig_secrets(text)
    assert TOKEN_SECRET in secrets
    assert scrub(f"oops {TOKEN_SECRET} leaked", secrets) == "oops [redacted] leaked"


def _app():
    from daemonviz.asgi import application

    return application
