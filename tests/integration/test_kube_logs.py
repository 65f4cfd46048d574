"""Container logs through the kube layer (dashboard/kube/logs.py), against the fake API
server over real HTTP: the previous instance's last lines, bounded in lines, bytes and
time, and a refusal that names the RBAC rule to add."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.kube.clients import client_from_kubeconfig
from dashboard.kube.errors import FORBIDDEN, NOT_FOUND
from dashboard.kube.logs import LogError, read_log
from dashboard.simulator.apiserver import FakeApiServer
from dashboard.simulator.store import ObjectStore
from tests.helpers.kube_support import TOKEN, pod, read_only_server

LOG = "".join(f"line {i}: starting\n" for i in range(1, 200)) + "panic: out of memory\n"


def crashed_pod(name: str = "agent-x1") -> dict:
    p = pod("kube-system", name, "node-0")
    p["status"]["containerStatuses"] = [
        {
            "name": "c",
            "restartCount": 4,
            "ready": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        }
    ]
    return p


@pytest.fixture
def server():
    store = ObjectStore()
    store.put("pods", crashed_pod())
    store.put("pods", pod("kube-system", "fresh", "node-0"))  # never restarted
    with read_only_server(store) as srv:
        srv.set_log("kube-system", "agent-x1", "c", LOG, previous=True)
        srv.set_log("kube-system", "agent-x1", "c", "running again\n", previous=False)
        yield srv


@pytest.fixture
def client(server, tmp_path):
    return client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))


def _log_queries(server: FakeApiServer) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(p).query) for m, p in server.requests if "/log" in p]


def test_previous_log_tail_is_read_with_the_bounds_asked_of_the_server(server, client):
    tail = read_log(client, "kube-system", "agent-x1", "c", tail_lines=3, limit_bytes=4096)
    assert tail.text == "line 198: starting\nline 199: starting\npanic: out of memory\n"
    assert tail.previous and not tail.truncated
    (query,) = _log_queries(server)
    assert query == {
        "container": ["c"],
        "previous": ["true"],
        "tailLines": ["3"],
        "limitBytes": ["4096"],
    }


def test_the_running_instance_when_not_previous(client):
    tail = read_log(client, "kube-system", "agent-x1", "c", previous=False)
    assert tail.text == "running again\n" and not tail.previous


def test_size_bound_truncates(client):
    tail = read_log(client, "kube-system", "agent-x1", "c", tail_lines=100, limit_bytes=50)
    assert len(tail.text.encode()) == 50 and tail.truncated


def test_size_bound_holds_when_the_server_ignores_limit_bytes(server, client):
    """A server (or proxy) that sends more than limitBytes is read no further."""
    server.set_log("kube-system", "fresh", "c", "x" * 100_000, previous=False)
    tail = read_log(client, "kube-system", "fresh", "c", previous=False, limit_bytes=100)
    assert tail.truncated and len(tail.text) <= 100


def test_time_bound_cuts_a_server_that_trickles(server, client):
    server.log_trickle = 0.2  # 200 lines, one every 0.2 s: 40 s if read to the end
    started = time.monotonic()
    tail = read_log(client, "kube-system", "agent-x1", "c", tail_lines=200, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    assert tail.truncated and tail.text.startswith("line 1: starting\n")


def test_rbac_refusal_names_the_rule_to_add(server, client):
    server.faults.forbid("get", "pods/log")
    with pytest.raises(LogError) as err:
        read_log(client, "kube-system", "agent-x1", "c")
    problem = err.value.problem
    assert problem.kind == FORBIDDEN
    assert 'get on "pods/log"' in problem.message and '"kube-system"' in problem.message
    assert TOKEN not in problem.message


def test_no_previous_instance_says_so(client):
    with pytest.raises(LogError) as err:
        read_log(client, "kube-system", "fresh", "c", previous=True)
    assert 'previous terminated container "c" in pod "fresh" not found' in str(err.value)


def test_gone_pod(client):
    with pytest.raises(LogError) as err:
        read_log(client, "kube-system", "nope", "c")
    assert err.value.problem.kind == NOT_FOUND and '"nope"' in str(err.value)


def test_unknown_container(client):
    with pytest.raises(LogError) as err:
        read_log(client, "kube-system", "agent-x1", "sidecar")
    assert "container sidecar is not valid" in str(err.value)
