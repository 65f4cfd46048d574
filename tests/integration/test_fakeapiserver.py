"""The fake API server, over real HTTP: what kubectl, the official client and the reflectors
rely on (docs/list-watch.md) — pagination, watch, bookmarks, 410s, selectors,
faults, auth and the read-only guarantee."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore

TOKEN = "secret-token"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
PLURALS = {"Node": "nodes", "Pod": "pods", "DaemonSet": "daemonsets"}


# ---------------------------------------------------------------------------- fixtures


def fill(store: ObjectStore, fixtures_dir: Path) -> None:
    for path in sorted(fixtures_dir.glob("*.json")):
        obj = json.loads(path.read_text())
        # A few captured objects lack kind/apiVersion (kubectl's "items" dumps).
        kind = obj.get("kind") or ("Node" if path.name.startswith("node") else "Pod")
        store.put(PLURALS[kind], obj)
    for ns in ("default", "kube-system"):
        store.put("namespaces", {"metadata": {"name": ns}})
    for i in range(30):
        store.put("pods", synthetic_pod(i))


def synthetic_pod(i: int, app: str | None = None) -> dict:
    return {
        "metadata": {
            "name": f"p{i:03}",
            "namespace": "default",
            "labels": {"tier": app or ("x" if i % 2 else "y")},
        },
        "spec": {"nodeName": f"n{i % 3}"},
        "status": {"phase": "Running"},
    }


@pytest.fixture
def store(fixtures_dir) -> ObjectStore:
    s = ObjectStore()
    fill(s, fixtures_dir)
    return s


@pytest.fixture
def server(store):
    srv = FakeApiServer(store, port=0, token=TOKEN, bookmark_interval=0.2).start()
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------- HTTP helpers


def request(server, path, method="GET", token=TOKEN, body=None):
    """(status, headers, decoded JSON body); error statuses are returned, not raised."""
    req = urllib.request.Request(server.url + path, method=method, data=body)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


def get(server, path, **kw):
    status, _, body = request(server, path, **kw)
    assert status == 200, body
    return body


class Stream:
    """An open watch: read its JSON lines one at a time, with a timeout."""

    def __init__(self, server, path, timeout=5.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        self.resp = self.conn.getresponse()

    def next(self) -> dict | None:
        line = self.resp.readline()
        return json.loads(line) if line else None

    def take(self, n: int) -> list[dict]:
        return [self.next() for _ in range(n)]

    def close(self):
        self.conn.close()


@pytest.fixture
def open_stream(server):
    streams = []

    def _open(path, timeout=5.0):
        streams.append(Stream(server, path, timeout))
        return streams[-1]

    yield _open
    for s in streams:
        s.close()


def names(body) -> list[str]:
    return [o["metadata"]["name"] for o in body["items"]]


# ---------------------------------------------------------------------------- discovery


def test_discovery_describes_the_served_resources(server):
    assert get(server, "/version")["major"] == "1"
    core = {r["name"]: r for r in get(server, "/api/v1")["resources"]}
    apps = {r["name"]: r for r in get(server, "/apis/apps/v1")["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"]
    assert core["nodes"]["shortNames"] == ["no"] and not core["nodes"]["namespaced"]
    assert apps["daemonsets"]["shortNames"] == ["ds"]
    assert set(apps) == {"daemonsets", "controllerrevisions"}
    assert all(r["verbs"] == ["get", "list", "watch"] for r in [*core.values(), *apps.values()])
    assert get(server, "/apis")["groups"][0]["name"] == "apps"


# ---------------------------------------------------------------------------- list


def test_list_body_has_the_real_shape(server, store):
    body = get(server, "/api/v1/pods")
    assert (body["kind"], body["apiVersion"]) == ("PodList", "v1")
    assert body["metadata"] == {"resourceVersion": str(store.resource_version)}
    assert len(body["items"]) == store.count("pods")
    assert get(server, "/apis/apps/v1/daemonsets")["kind"] == "DaemonSetList"


def test_pages_form_one_snapshot_despite_concurrent_writes(server, store):
    before = names(get(server, "/api/v1/pods"))
    page = get(server, "/api/v1/pods?limit=7")
    rv, seen = page["metadata"]["resourceVersion"], names(page)
    assert page["metadata"]["remainingItemCount"] == len(before) - 7
    # Writes between pages must not show up in (or vanish from) the paginated result.
    store.put("pods", synthetic_pod(999))
    store.delete("pods", "default", before[-1])
    while token := page["metadata"].get("continue"):
        page = get(server, f"/api/v1/pods?limit=7&continue={token}")
        assert page["metadata"]["resourceVersion"] == rv
        seen += names(page)
    assert seen == before


def test_continue_token_older_than_history_is_410_expired(server, store):
    token = get(server, "/api/v1/pods?limit=5")["metadata"]["continue"]
    store.put("pods", synthetic_pod(500))
    store.compact()
    status, _, body = request(server, f"/api/v1/pods?limit=5&continue={token}")
    assert status == 410
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Expired", 410)
    assert body["metadata"]["continue"]  # the real server offers an inconsistent resume token


def test_namespaced_collection_and_single_objects(server):
    kube_system = get(server, "/api/v1/namespaces/kube-system/pods")
    assert {o["metadata"]["namespace"] for o in kube_system["items"]} == {"kube-system"}
    pod = get(server, "/api/v1/namespaces/default/pods/p001")
    assert pod["metadata"]["name"] == "p001" and pod["kind"] == "Pod"
    assert get(server, "/api/v1/namespaces/default")["kind"] == "Namespace"
    ds = get(server, "/apis/apps/v1/daemonsets")["items"][0]["metadata"]
    path = f"/apis/apps/v1/namespaces/{ds['namespace']}/daemonsets/{ds['name']}"
    assert get(server, path)["kind"] == "DaemonSet"


def test_missing_object_is_a_404_status(server):
    status, _, body = request(server, "/apis/apps/v1/namespaces/default/daemonsets/nope")
    assert status == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'daemonsets.apps "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "daemonsets", "group": "apps"}


# Expected counts as a function of the total: 30 synthetic pods carry tier=x (15) or tier=y
# (15); the fixture pods have no "tier" label, which != and notin also select (as upstream).
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=x", lambda total: 15),
        ("tier==x", lambda total: 15),
        ("tier!=x", lambda total: total - 15),
        ("tier in (x,y)", lambda total: 30),
        ("tier notin (x)", lambda total: total - 15),
        ("tier", lambda total: 30),
        ("!tier", lambda total: total - 30),
        ("tier=x,tier!=y", lambda total: 15),
    ],
)
def test_label_selectors(server, store, selector, expected):
    query = urllib.request.quote(selector)
    got = get(server, f"/api/v1/pods?labelSelector={query}")["items"]
    assert len(got) == expected(store.count("pods"))


def test_unparseable_label_selector_is_400(server):
    status, _, body = request(server, "/api/v1/pods?labelSelector=a%20in%20b")
    assert (status, body["reason"]) == (400, "BadRequest")


def test_field_selectors(server):
    on_n1 = get(server, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
    assert len(on_n1["items"]) == 10
    assert {o["spec"]["nodeName"] for o in on_n1["items"]} == {"n1"}
    by_name = get(
        server, "/api/v1/pods?fieldSelector=metadata.name%3Dp004,metadata.namespace=default"
    )
    assert names(by_name) == ["p004"]
    status, _, body = request(server, "/api/v1/pods?fieldSelector=spec.bogus%3Dx")
    assert status == 400 and body["message"] == "field label not supported: spec.bogus"


def test_selectors_combine_with_pagination(server):
    page = get(server, "/api/v1/pods?labelSelector=tier%3Dx&limit=4")
    seen = names(page)
    assert "remainingItemCount" not in page["metadata"]  # an estimate the server omits here
    while token := page["metadata"].get("continue"):
        page = get(server, f"/api/v1/pods?labelSelector=tier%3Dx&limit=4&continue={token}")
        seen += names(page)
    assert len(seen) == 15 == len(set(seen))


def test_list_resource_version_rules(server, store):
    rv = store.resource_version
    assert get(server, f"/api/v1/nodes?resourceVersion={rv}&limit=2")["metadata"][
        "resourceVersion"
    ] == str(rv)
    store.put("pods", synthetic_pod(600))
    store.compact()
    status, _, body = request(server, f"/api/v1/nodes?resourceVersion={rv}&limit=2")
    assert (status, body["reason"]) == (410, "Expired")  # exact RV no longer available
    status, _, _ = request(server, "/api/v1/nodes?resourceVersionMatch=NotOlderThan")
    assert status == 400  # resourceVersionMatch needs a resourceVersion
    token = get(server, "/api/v1/pods?limit=2")["metadata"]["continue"]
    status, _, _ = request(server, f"/api/v1/pods?limit=2&continue={token}&resourceVersion=5")
    assert status == 400


# ---------------------------------------------------------------------------- watch


def test_watch_from_rv_sends_only_later_changes_in_order(server, store, open_stream):
    rv = get(server, "/api/v1/pods?limit=1")["metadata"]["resourceVersion"]
    store.put("pods", synthetic_pod(700))
    store.put("nodes", {"metadata": {"name": "n-other"}})  # another resource: not on this stream
    store.put("pods", synthetic_pod(700, app="z"))
    store.delete("pods", "default", "p000")
    events = open_stream(f"/api/v1/pods?watch=1&resourceVersion={rv}").take(3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[2]["object"]["metadata"]["name"] == "p000"


def test_watch_without_rv_starts_with_synthetic_added(server, store, open_stream):
    stream = open_stream("/apis/apps/v1/daemonsets?watch=true")
    first = stream.take(store.count("daemonsets"))
    assert {e["type"] for e in first} == {"ADDED"}
    store.put("daemonsets", {**first[0]["object"], "status": {"numberReady": 99}})
    event = stream.next()
    assert event["type"] == "MODIFIED" and event["object"]["status"]["numberReady"] == 99


def test_watch_sends_bookmarks_and_ends_cleanly_at_timeout(server, store, open_stream):
    rv = store.resource_version
    t0 = time.monotonic()
    stream = open_stream(
        f"/api/v1/nodes?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    events = []
    while (event := stream.next()) is not None:  # None = clean end of the chunked body
        events.append(event)
    assert 1.0 <= time.monotonic() - t0 < 2.0
    assert events and {e["type"] for e in events} == {"BOOKMARK"}
    assert events[0]["object"] == {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(rv)},
    }


def test_bookmark_advances_past_other_resources_writes(server, store, open_stream):
    rv = store.resource_version
    stream = open_stream(f"/api/v1/nodes?watch=1&resourceVersion={rv}&allowWatchBookmarks=1")
    store.put("pods", synthetic_pod(800))
    bookmark = stream.next()
    # The pod write is after rv; a bookmark lets a quiet node watch move past it.
    assert bookmark["type"] == "BOOKMARK"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) == store.resource_version


def test_watch_from_a_compacted_rv_gets_an_expired_error_event(server, store, open_stream):
    old = store.resource_version
    store.put("pods", synthetic_pod(900))
    store.compact()
    stream = open_stream(f"/api/v1/pods?watch=1&resourceVersion={old}")
    assert stream.resp.status == 200  # as the real server: an ERROR event on the stream
    event = stream.next()
    assert event == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {old} ({store.resource_version})",
            "reason": "Expired",
            "code": 410,
        },
    }
    assert stream.next() is None


def test_compact_ends_open_watches_with_410(server, store, open_stream):
    stream = open_stream(f"/api/v1/pods?watch=1&resourceVersion={store.resource_version}")
    store.compact()
    event = stream.next()
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


def test_watch_selector_turns_leaving_objects_into_deleted(server, store, open_stream):
    rv = store.resource_version
    stream = open_stream(f"/api/v1/pods?watch=1&resourceVersion={rv}&labelSelector=tier%3Dx")
    store.put("pods", synthetic_pod(2, app="z"))  # p002 was app=y: never shown, stays hidden
    store.put("pods", synthetic_pod(1, app="z"))  # p001 was app=x: leaves the selection
    store.put("pods", synthetic_pod(4, app="x"))  # p004 joins it
    events = [(e["type"], e["object"]["metadata"]["name"]) for e in stream.take(2)]
    assert events == [("DELETED", "p001"), ("ADDED", "p004")]


def test_watch_field_selector(server, store, open_stream):
    rv = store.resource_version
    stream = open_stream(
        f"/api/v1/pods?watch=1&resourceVersion={rv}&fieldSelector=spec.nodeName%3Dn2"
    )
    store.put("pods", synthetic_pod(3))  # n0
    store.put("pods", synthetic_pod(5))  # n2
    event = stream.next()
    assert (event["type"], event["object"]["metadata"]["name"]) == ("MODIFIED", "p005")


def test_streaming_list_ends_initial_events_with_an_annotated_bookmark(server, store, open_stream):
    stream = open_stream(
        "/apis/apps/v1/daemonsets?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&resourceVersion="
    )
    n = store.count("daemonsets")
    events = stream.take(n + 1)
    assert [e["type"] for e in events] == ["ADDED"] * n + ["BOOKMARK"]
    meta = events[-1]["object"]["metadata"]
    assert meta["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert meta["resourceVersion"] == str(store.resource_version)


def test_watch_options_are_validated_as_kube_apiserver_does(server, store):
    # resourceVersionMatch on a watch only with sendInitialEvents, and then only NotOlderThan.
    status, _, body = request(server, "/api/v1/pods?watch=1&resourceVersionMatch=NotOlderThan")
    assert (status, body["reason"]) == (422, "Invalid")
    assert "unless sendInitialEvents" in body["message"]
    status, _, body = request(server, "/api/v1/pods?watch=1&sendInitialEvents=true")
    assert (status, body["reason"]) == (422, "Invalid")
    assert "NotOlderThan" in body["message"]


def test_without_watch_list_a_streaming_list_is_refused_like_a_gate_that_is_off(store):
    srv = FakeApiServer(store, port=0, token=TOKEN, watch_list=False).start()
    try:
        status, _, body = request(
            srv,
            "/api/v1/pods?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
            "&resourceVersionMatch=NotOlderThan",
        )
        assert (status, body["kind"], body["reason"]) == (422, "Status", "Invalid")
        assert "WatchList feature gate" in body["message"]
        # Everything else is served as before.
        assert get(srv, "/api/v1/pods?limit=2")["kind"] == "PodList"
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- faults


def test_cut_watches_breaks_streams_mid_flight(server, store, open_stream):
    stream = open_stream(f"/api/v1/pods?watch=1&resourceVersion={store.resource_version}")
    store.put("pods", synthetic_pod(1000))
    assert stream.next()["type"] == "ADDED"
    assert server.faults.cut_watches() == 1
    # No terminating chunk: the client sees a broken body, not a clean end.
    with pytest.raises((http.client.IncompleteRead, ConnectionError, ValueError)):
        stream.resp.read()


def test_break_next_event_cut_sends_half_a_line_then_breaks_the_body(server, store, open_stream):
    stream = open_stream(f"/api/v1/pods?watch=1&resourceVersion={store.resource_version}")
    server.faults.break_next_event("cut")
    assert server.faults.armed() == 1
    store.put("pods", synthetic_pod(1001))
    with pytest.raises((http.client.IncompleteRead, ConnectionError, ValueError)) as caught:
        stream.resp.read()
    assert isinstance(caught.value, http.client.IncompleteRead), caught.value
    partial = caught.value.partial
    assert partial.startswith(b'{"type":"ADDED"') and not partial.endswith(b"\n")
    assert server.faults.armed() == 0


def test_break_next_event_truncate_ends_the_stream_after_a_half_line(server, store, open_stream):
    stream = open_stream(f"/api/v1/pods?watch=1&resourceVersion={store.resource_version}")
    server.faults.break_next_event("truncate")
    store.put("pods", synthetic_pod(1002))
    line = stream.resp.readline()
    assert line.startswith(b'{"type":"ADDED"') and line.endswith(b"\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert stream.resp.read() == b""  # then a clean end of the body
    with pytest.raises(ValueError):
        server.faults.break_next_event("sideways")


def test_fail_next_matches_resource_and_count(server):
    server.faults.fail_next(500, count=2, resource="pods")
    assert get(server, "/api/v1/nodes")["kind"] == "NodeList"  # other resources unaffected
    for _ in range(2):
        status, _, body = request(server, "/api/v1/pods")
        assert (status, body["reason"], body["code"]) == (500, "InternalError", 500)
    assert get(server, "/api/v1/pods")["kind"] == "PodList"


def test_fail_next_429_carries_retry_after(server):
    server.faults.fail_next(429, retry_after=3)
    status, headers, body = request(server, "/api/v1/pods")
    assert (status, headers["Retry-After"], body["reason"]) == (429, "3", "TooManyRequests")
    assert body["details"]["retryAfterSeconds"] == 3


def test_fail_next_can_target_watches_only(server, store):
    server.faults.fail_next(410, watch=True)
    assert get(server, "/api/v1/pods?limit=1")["kind"] == "PodList"
    status, _, body = request(
        server, f"/api/v1/pods?watch=1&resourceVersion={store.resource_version}"
    )
    assert (status, body["reason"]) == (410, "Expired")  # the HTTP-status form of a 410


def test_delay_adds_latency_until_cleared(server):
    server.faults.delay(0.2)
    t0 = time.monotonic()
    get(server, "/api/v1/nodes")
    assert time.monotonic() - t0 >= 0.2
    server.faults.clear()
    t0 = time.monotonic()
    get(server, "/api/v1/nodes")
    assert time.monotonic() - t0 < 0.2


def test_forbid_answers_like_rbac(server):
    server.faults.forbid("list", "controllerrevisions")
    server.faults.forbid("watch", "pods")
    status, _, body = request(server, "/apis/apps/v1/controllerrevisions")
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'controllerrevisions.apps is forbidden: User "system:serviceaccount:daemonviz:daemonviz" '
        'cannot list resource "controllerrevisions" in API group "apps" at the cluster scope'
    )
    status, _, body = request(server, "/api/v1/namespaces/default/pods?watch=1")
    assert status == 403
    assert body["message"].endswith(
        'cannot watch resource "pods" in API group "" in the namespace "default"'
    )
    assert get(server, "/api/v1/pods")["kind"] == "PodList"  # list of pods still allowed
    server.faults.clear()
    assert get(server, "/apis/apps/v1/controllerrevisions")["kind"] == "ControllerRevisionList"


@pytest.mark.parametrize("token", [None, "wrong"])
def test_requests_without_the_token_are_401(server, token):
    status, _, body = request(server, "/api/v1/nodes", token=token)
    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_non_get_is_rejected_and_recorded(server, method):
    path = "/api/v1/namespaces/default/pods/p001"
    status, _, body = request(server, path, method=method, body=b"{}")
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
    assert server.non_get_requests == [(method, path)]
    assert (method, path) in server.requests


def test_stop_ends_open_watches_promptly(store):
    srv = FakeApiServer(store, token=None).start()
    stream = Stream(srv, "/api/v1/pods?watch=1")
    stream.take(store.count("pods"))
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 1.0
    stream.close()


# ---------------------------------------------------------------------------- real clients


def test_official_client_lists_and_watches_raw(server, store, tmp_path):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(server.write_kubeconfig(tmp_path / "kc")))
    core = client.CoreV1Api(api)
    resp = core.list_pod_for_all_namespaces(limit=500, _preload_content=False)
    body = json.loads(resp.data)
    assert len(body["items"]) == store.count("pods")
    watch = core.list_node(
        watch=True,
        resource_version=body["metadata"]["resourceVersion"],
        allow_watch_bookmarks=True,
        timeout_seconds=5,
        _preload_content=False,
        _request_timeout=(2, 5),
    )
    store.put("nodes", {"metadata": {"name": "n-new"}})
    events = (json.loads(line) for line in watch.stream(amt=None) for line in line.splitlines())
    first_change = next(e for e in events if e["type"] != "BOOKMARK")
    assert first_change["object"]["metadata"]["name"] == "n-new"
    watch.release_conn()


def test_official_client_raises_api_exception_on_403(server, tmp_path):
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    server.faults.forbid("list", "nodes")
    api = config.new_client_from_config(config_file=str(server.write_kubeconfig(tmp_path / "kc")))
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(api).list_node(_preload_content=False)
    assert exc.value.status == 403
    assert 'cannot list resource \\"nodes\\"' in exc.value.body or "cannot list" in exc.value.body


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    cache = kubeconfig.parent / "kubectl-cache"  # don't touch ~/.kube
    cmd = [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


@pytest.fixture
def tls_server(store):
    # kubectl never sends a token over plain http (kubernetes/kubectl#744), so with auth on
    # it needs the TLS mode.
    srv = FakeApiServer(store, token=TOKEN, tls=True).start()
    yield srv
    srv.stop()


def test_official_client_verifies_the_tls_certificate(tls_server, tmp_path):
    from kubernetes import client, config

    kc = tls_server.write_kubeconfig(tmp_path / "kc")
    api = config.new_client_from_config(config_file=str(kc))
    assert client.VersionApi(api).get_code().git_version.startswith("v1.32")
    assert tls_server.url.startswith("https://127.0.0.1:")


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")
def test_kubectl_get_table_and_json(tls_server, store, tmp_path):
    kc = tls_server.write_kubeconfig(tmp_path / "kubeconfig")
    table = kubectl(kc, "get", "nodes,pods,ds", "-A")
    assert table.returncode == 0, table.stderr
    assert "pod/p029" in table.stdout and "daemonset.apps/" in table.stdout
    dump = kubectl(kc, "get", "nodes,daemonsets,pods,controllerrevisions", "-A", "-o", "json")
    assert dump.returncode == 0, dump.stderr
    items = json.loads(dump.stdout)["items"]
    expected = sum(store.count(r) for r in ("nodes", "daemonsets", "pods", "controllerrevisions"))
    assert len(items) == expected
    assert tls_server.non_get_requests == []


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")
def test_kubectl_over_plain_http_without_auth(store, tmp_path):
    with FakeApiServer(store, token=None) as srv:
        result = kubectl(srv.write_kubeconfig(tmp_path / "kc"), "get", "ds", "-A")
    assert result.returncode == 0, result.stderr
    assert "aws-efa-k8s-device-plugin-daemonset" in result.stdout
