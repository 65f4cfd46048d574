"""Scale-out with real servers and real processes.

Redis and PostgreSQL (tests/helpers/services.py), a simulated cluster served over HTTP by
`manage.py fakeapiserver` in its own process (so every collector and the test itself see
the same cluster), two daphne web workers with DAEMONVIZ_EMBEDDED_COLLECTOR=false, and
`manage.py collect` processes. The tests run in order on one stack:

1. a websocket client on worker B receives deltas caused by the simulator's churn, while
   worker A renders the same cluster's pages from the snapshot;
2. /metrics parses, with the bearer token;
3. SIGKILL of the collector: the workers call the cluster stale and keep its last matrix;
4. a second collector takes over (after the lock TTL) and the matrix is exact again,
   compared with a fresh list of the fake API server;
5. history rows are in PostgreSQL and show on the timeline pages.

And the embedded default (`make run`: SQLite, no Redis) still starts and serves.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.ports import free_port
from tests.helpers.wait import poll, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")
DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")
METRICS_TOKEN = "metrics-token-for-tests"
SLUG = "sim"
TTL = 3.0
STALE = 2.0


class Stack:
    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp = tmp
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, object] = {}
        self.workers: dict[str, str] = {}
        self.session = ""
        self.kubeconfig = tmp / "fake.kubeconfig"

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop_all)
        self.logs[name] = log
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-4000:]

    def manage(self, *args: str, input: str | None = None) -> str:
        out = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, input=input,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def worker(self, name: str) -> str:
        port = free_port()
        self.spawn(name, [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "daemonviz.asgi:application"])
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _status(url + "/healthz") == 200,
            30,
            f"worker {name} to serve /healthz",
            details=lambda: self.log(name),
        )
        self.workers[name] = url
        return url

    def get(self, worker: str, path: str, headers: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.workers[worker] + path, headers={
            "Cookie": f"sessionid={self.session}", **(headers or {})})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs.values():
            log.close()


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from dashboard.models import Cluster
Cluster.objects.create(name="Simulated over HTTP", slug="{slug}", source="kubeconfig",
                       kubeconfig_path="{kubeconfig}", context="fake")
user = get_user_model().objects.create_user("viewer", password="viewer-pw-123")
s = SessionStore()
s["_auth_user_id"] = str(user.pk)
s["_auth_user_backend"] = "dashboard.auth.local.LocalPasswordBackend"  # as a password sign-in sets it
s["_auth_user_hash"] = user.get_session_auth_hash()
s.create()
print("SESSION=" + s.session_key)
"""


@pytest.fixture(scope="module")
def stack(redis_server, postgres_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scaleout")
    database_url = postgres_server.create_database(f"scaleout_{uuid.uuid4().hex[:8]}")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "DAEMONVIZ_EMBEDDED_COLLECTOR": "false",
        "DAEMONVIZ_LOCK_TTL_SECONDS": str(TTL),
        "DAEMONVIZ_STALE_SECONDS": str(STALE),
        "DAEMONVIZ_SNAPSHOT_SECONDS": "0.3",
        "DAEMONVIZ_RECONCILE_SECONDS": "0.5",
        "DAEMONVIZ_HISTORY_FLUSH_SECONDS": "0.5",
        "DAEMONVIZ_METRICS_TOKEN": METRICS_TOKEN,
        "DAEMONVIZ_DEMO_CLUSTER": "false",
        "DAEMONVIZ_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DAEMONVIZ_DEBUG": "false",
        "DAEMONVIZ_LOG_LEVEL": "INFO",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    s = Stack(tmp, env)
    try:
        s.manage("migrate", "--noinput")
        # ~1 change per second: a crash, a flap, a node joining or leaving...
        s.spawn("apiserver", [PY, "manage.py", "fakeapiserver", "--port", "0", "--churn", "60",
                              "--kubeconfig", str(s.kubeconfig), "--bookmark-interval", "1"])  # fmt: skip
        wait_until(
            s.kubeconfig.exists,
            60,
            "the fake API server's kubeconfig",
            details=lambda: s.log("apiserver"),
        )
        out = s.manage("shell", "-c", SETUP.format(slug=SLUG, kubeconfig=s.kubeconfig))
        s.session = re.search(r"SESSION=(\w+)", out).group(1)
        s.worker("a")
        s.worker("b")
        s.spawn("collector1", [PY, "manage.py", "collect"])
        yield s
    finally:
        s.stop_all()


def _report(redis_server) -> dict | None:
    import redis

    raw = redis.Redis.from_url(redis_server.url).get(f"daemonviz:status:{SLUG}")
    return json.loads(raw) if raw else None


def _grid_status(stack, worker: str) -> str:
    code, html = stack.get(worker, f"/clusters/{SLUG}/status/")
    m = re.search(r'class="conn conn-(\w+)"', html)
    return m.group(1) if code == 200 and m else ""


def test_worker_b_socket_receives_the_simulators_deltas(stack):
    from websockets.sync.client import connect

    wait_until(
        lambda: _grid_status(stack, "b") == "synced",
        60,
        "worker b to show the cluster synced",
        details=lambda: stack.log("collector1"),
    )
    code, html = stack.get("a", f"/clusters/{SLUG}/")
    assert code == 200 and 'id="grid"' in html
    page_revision = int(re.search(r'id="grid"[^>]*data-revision="(\d+)"', html).group(1))
    url = stack.workers["b"].replace("http://", "ws://") + f"/ws/clusters/{SLUG}/grid/"
    headers = {"Cookie": f"sessionid={stack.session}", "Origin": stack.workers["b"]}
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))  # where the matrix stands (from the snapshot)
        assert hello["hello"] == 1 and hello["rev"] >= page_revision
        deadline = time.monotonic() + 30
        revisions = []
        while time.monotonic() < deadline and len(revisions) < 2:
            frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "base" in frame:
                revisions.append(frame["rev"])
        assert len(revisions) >= 2, "no deltas reached worker B"
        assert revisions[-1] > page_revision


def test_metrics_parse_with_the_token(stack):
    assert stack.get("a", "/metrics")[0] == 401
    code, text = stack.get("a", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert code == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    cov = [s for s in fams["daemonviz_coverage_ratio"].samples if s.labels["cluster"] == SLUG]
    assert cov and all(0 <= s.value <= 1 for s in cov)
    lists = {s.labels["resource"] for s in fams["daemonviz_watch_lists"].samples}
    assert lists == {
        "nodes",
        "pods",
        "daemonsets",
        "controllerrevisions",
        "services",
        "endpointslices",
        "events",
        "events-preempted",
        "events-backoff",
        "events-killing",
        "events-nodenotready",
        "priorityclasses",
    }
    age = fams["daemonviz_collector_heartbeat_age_seconds"].samples[0].value
    assert age < STALE


def test_killed_collector_shows_stale_and_keeps_the_matrix(stack, redis_server):
    _, before = stack.get("a", f"/clusters/{SLUG}/")
    nodes_before = len(re.findall(r'class="rh"', before))
    stack.procs["collector1"].send_signal(signal.SIGKILL)
    stack.procs["collector1"].wait()
    for worker in ("a", "b"):
        wait_until(
            lambda w=worker: _grid_status(stack, w) == "stale",
            STALE + 10,
            f"worker {worker} to call the cluster stale",
        )
    code, html = stack.get("b", f"/clusters/{SLUG}/")
    assert code == 200 and "stopped reporting" in html
    rows = len(re.findall(r'class="rh"', html))
    assert rows > 0 and abs(rows - nodes_before) <= 3  # the last known matrix, still shown
    # A fixed window on purpose: the claim is that nothing happens in it (the last known
    # matrix stays shown while no collector reports), so there is no condition to wait for.
    time.sleep(1)
    assert len(re.findall(r'class="rh"', stack.get("a", f"/clusters/{SLUG}/")[1])) == rows
    # A dead collector does not take the web workers out of service.
    code, body = stack.get("b", "/readyz")
    assert code == 200 and json.loads(body)["checks"]["collectors"] == {SLUG: "stale"}


def _cells(matrix) -> dict:
    return {k: (c.state.value, c.pod, c.restarts) for k, c in matrix.cells.items()}


def test_second_collector_takes_over_and_is_exact(stack, redis_server):
    from dashboard.collect.remote import SnapshotReader
    from dashboard.coverage.matrix import Matrix
    from dashboard.kube.clients import client_from_kubeconfig
    from dashboard.kube.resources import RESOURCES
    from dashboard.kube.snapshot import list_cluster

    dead = _report(redis_server)
    stack.spawn("collector2", [PY, "manage.py", "collect"])
    # Takeover waits for the dead holder's lock to expire (TTL), then syncs.
    wait_until(
        lambda: _grid_status(stack, "a") == "synced",
        TTL + 30,
        "the second collector to take over and sync",
        details=lambda: stack.log("collector2"),
    )
    new = _report(redis_server)
    assert new["holder"] != dead["holder"] and new["token"] > dead["token"]

    import redis

    reader = SnapshotReader(redis.Redis.from_url(redis_server.url), stale_after=STALE)
    api = client_from_kubeconfig(str(stack.kubeconfig), "fake")
    kinds = {key: spec.replace_kind for key, spec in RESOURCES.items()}
    mismatch = None

    def snapshot_matches(fresh: Matrix) -> bool:
        nonlocal mismatch
        snap = reader.get(SLUG).matrix
        if _cells(snap) == _cells(fresh) and set(snap.nodes) == set(fresh.nodes):
            return True
        mismatch = {k for k in _cells(snap).keys() ^ _cells(fresh).keys()}
        return False

    # The simulator keeps churning: compare until a moment when neither side is mid-change.
    # After a fresh list the snapshot catches up within coalesce (0.25 s) + snapshot
    # interval (0.3 s); when churn moved on meanwhile it never will: list again.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        listed = list_cluster(api)
        fresh = Matrix()
        fresh.replace_all({kinds[r]: recs for r, recs in listed.items()})
        if poll(functools.partial(snapshot_matches, fresh), 3, interval=0.1):
            break
    else:
        pytest.fail(f"snapshot never matched a fresh list; last difference: {mismatch}")
    api.close()


def test_history_rows_are_written_and_shown(stack, postgres_server):
    import psycopg

    url = stack.env["DATABASE_URL"]

    def counts():
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT kind, count(*) FROM dashboard_coverageevent GROUP BY kind"
            ).fetchall()
        return dict(rows)

    # Both collectors started recording with a sync row; churn adds cell changes.
    wait_until(
        lambda: counts().get("sync", 0) >= 2 and counts().get("cell", 0) > 0,
        30,
        "two sync rows and a cell row in PostgreSQL",
        details=lambda: repr(counts()),
    )
    code, html = stack.get("b", f"/clusters/{SLUG}/history/?hours=1")
    assert code == 200 and 'id="gaps"' in html
    with psycopg.connect(url) as conn:
        ds = conn.execute(
            "SELECT daemonset FROM dashboard_coverageevent WHERE kind='cell' LIMIT 1"
        ).fetchone()[0]
    ns, name = ds.split("/", 1)
    code, html = stack.get("a", f"/clusters/{SLUG}/daemonsets/{ns}/{name}/history/?hours=1")
    assert code == 200 and f"History of DaemonSet {name}" in html
    assert "recording (re)started" in html and 'id="episodes"' in html


def test_embedded_default_still_runs_without_redis_or_postgres(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env |= {"DAEMONVIZ_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "DAEMONVIZ_SIM_CHURN": "60",
            "DAEMONVIZ_ADMIN_PASSWORD": "admin-pw-123", "DAEMONVIZ_HISTORY_FLUSH_SECONDS": "0.5",
            "DAEMONVIZ_DEMO_FLEET": "false"}  # fmt: skip
    s = Stack(tmp_path, env)
    try:
        s.manage("migrate", "--noinput")
        s.manage("bootstrap")
        url = s.worker("embedded")
        wait_until(
            lambda: _status(url + "/readyz") == 200,
            30,
            "/readyz to answer 200",
            details=lambda: s.log("embedded"),
        )

        def coverage_clusters():
            with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            return {s.labels["cluster"] for s in fams["daemonviz_coverage_ratio"].samples}

        wait_until(
            lambda: coverage_clusters() == {"demo"},
            20,
            "the demo cluster's coverage in /metrics",
            details=lambda: s.log("embedded"),
        )
        # History is recorded in the embedded default too (SQLite).
        import sqlite3

        def synced_rows():
            with sqlite3.connect(tmp_path / "db.sqlite3") as db:
                return db.execute(
                    "SELECT count(*) FROM dashboard_coverageevent WHERE kind='sync'"
                ).fetchone()[0]

        wait_until(
            lambda: synced_rows() >= 1,
            20,
            "a sync row in SQLite",
            details=lambda: s.log("embedded"),
        )
    finally:
        s.stop_all()
