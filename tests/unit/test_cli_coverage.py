"""`manage.py coverage --snapshot …`: table and JSON output, inputs, filters, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.helpers.k8s import (
    controller_revision,
    daemon_pod,
    daemonset,
    fixture_with_kind,
    load_fixture,
    node,
    toleration,
    v1_list,
)

ROOT = Path(__file__).resolve().parents[2]
EFA = "kube-system/aws-efa-k8s-device-plugin-daemonset"
EXPORTER = "monitoring/node-exporter"
EKS_SIBLING = "ip-192-168-2-48.ec2.internal"
NODE_NAMES = [
    "ci-ln-ywdpkbt-f76d1-vw6lz-worker-d-rmh8w",
    "ip-192-168-0-161.ec2.internal",
    "ip-192-168-2-48.ec2.internal",
    "ip-192-168-25-169.ec2.internal",
    "master-0.imeixner20210707.lab.upshift.rdu2.redhat.com",
]


def _snapshot_items() -> list[dict]:
    """A kubectl snapshot built from the fixtures, plus a fully healthy node-exporter."""
    efa = load_fixture("daemonset-efa-device-plugin-eks.json")
    ready = load_fixture("node-eks-ready-worker.json")
    sibling = node(
        EKS_SIBLING, labels=ready["metadata"]["labels"] | {"kubernetes.io/hostname": EKS_SIBLING}
    )
    nodes = [
        ready,
        load_fixture("node-eks-ready-missing-extended-resource.json"),
        sibling,
        fixture_with_kind("node-openshift-master-tainted.json", "Node"),
        fixture_with_kind("node-openshift-gcp-worker-ready.json", "Node"),
    ]
    exporter = daemonset("node-exporter", "monitoring", tolerations=[toleration(operator="Exists")])
    pods = [
        load_fixture("pod-daemonset-owned-running-eks.json"),
        load_fixture("pod-daemonset-crashloopbackoff-eks.DERIVED.json"),
        fixture_with_kind("pod-init-crashloopbackoff-pending.json", "Pod"),  # not a daemon pod
        *(daemon_pod(exporter, n) for n in NODE_NAMES),
    ]
    revisions = [
        controller_revision(efa, 1, "5bc5db57b"),
        controller_revision(exporter, 1, "rev1hash"),
    ]
    return [*nodes, efa, exporter, *pods, *revisions]


@pytest.fixture
def snapshot(tmp_path) -> Path:
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(v1_list(_snapshot_items())))
    return path


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "coverage", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )


def call(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("coverage", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _json(*args: str) -> dict:
    out, _ = call(*args, "--format", "json")
    return json.loads(out)


def _without_time(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "generated_at"}


# --------------------------------------------------------------------------- output


def test_json_document(snapshot):
    doc = _json("--snapshot", str(snapshot))
    assert doc["schema"] == "daemonviz.coverage/v1"
    assert set(doc) >= {"schema", "generated_at", "summary", "daemonsets", "nodes", "cells"}

    s = doc["summary"]
    # 2 EFA pods + 5 exporter pods; the ReplicaSet pod is not a daemon pod.
    assert (s["nodes"], s["daemonsets"], s["pods"], s["nodes_not_ready"]) == (5, 2, 7, 0)
    assert (s["targeted"], s["healthy"], s["missing"], s["failing"], s["crash_looping"]) == (
        8,
        6,
        1,
        1,
        1,
    )
    assert s["coverage"] == 75.0

    by_key = {f"{d['namespace']}/{d['name']}": d for d in doc["daemonsets"]}
    efa = by_key[EFA]
    assert (efa["targeted"], efa["healthy"], efa["missing"], efa["failing"]) == (3, 1, 1, 1)
    assert efa["coverage"] == 33.3
    assert efa["strategy"] == "RollingUpdate"
    assert efa["status"]["desired"] == 8 and efa["status"]["available"] == 3
    assert "desiredNumberScheduled 8 ≠ 3 seen" in efa["status_mismatches"]
    assert efa["status_lag"] is None
    assert by_key[EXPORTER]["coverage"] == 100.0 and by_key[EXPORTER]["targeted"] == 5

    assert [n["name"] for n in doc["nodes"]] == NODE_NAMES
    assert {n["name"]: n["status"] for n in doc["nodes"]}[NODE_NAMES[1]] == "Ready"

    assert len(doc["cells"]) == 10
    cells = {(c["node"], c["daemonset"]): c for c in doc["cells"]}
    crash = cells[("ip-192-168-25-169.ec2.internal", EFA)]
    assert crash["state"] == "crash-looping"
    assert crash["pod"] == "aws-efa-k8s-device-plugin-daemonset-4kwqn"
    assert (crash["status"], crash["restarts"], crash["ready"]) == ("CrashLoopBackOff", 8, "0/1")
    assert crash["last_termination"]["reason"] == "Completed"
    assert crash["last_termination"]["exit_code"] == 0
    assert cells[("ip-192-168-0-161.ec2.internal", EFA)]["state"] == "missing"
    assert cells[("ip-192-168-0-161.ec2.internal", EFA)]["pod"] is None
    assert cells[(EKS_SIBLING, EFA)]["state"] == "healthy"
    master = cells[(NODE_NAMES[4], EFA)]
    assert master["state"] == "not-targeted" and master["should_run"] is False
    assert master["reason"].startswith("required node affinity not matched")


def test_table_output(snapshot):
    out, err = call("--snapshot", str(snapshot))
    assert err == ""
    lines = out.splitlines()
    assert any(EFA in line and re.search(r"coverage +33\.3% ", line) for line in lines)
    assert any(EXPORTER in line and re.search(r"coverage +100% ", line) for line in lines)
    rows = {line.split()[0]: line for line in lines if line.startswith(("ip-", "ci-", "master-"))}
    assert set(rows) == set(NODE_NAMES)
    # Columns are sorted by key: 1 = EFA, 2 = node-exporter.
    assert rows["ip-192-168-25-169.ec2.internal"].split()[-2:] == ["↻", "✓"]
    assert rows["ip-192-168-0-161.ec2.internal"].split()[-2:] == ["∅", "✓"]
    assert rows[NODE_NAMES[4]].split()[-2:] == ["·", "✓"]
    legend = next(line for line in lines if line.startswith("Legend:"))
    for part in ("✓ healthy", "↻ crash-looping", "∅ missing", "· not targeted", "≠ misscheduled"):
        assert part in legend
    assert "Problems (2):" in out
    crash_line = next(line for line in lines if "crash-looping pod" in line)
    assert "on ip-192-168-25-169.ec2.internal" in crash_line
    assert "last Completed (exit 0)" in crash_line and "8 restarts" in crash_line
    assert "Not targeted (why the cell is empty):" in out
    # Grouped by reason: the two OpenShift nodes fail the affinity differently.
    assert f"· {EFA} on 1 node(s) [{NODE_NAMES[0]}]: required node affinity not matched" in out
    assert "(node has no node.kubernetes.io/instance-type label)" in out
    assert out.rstrip().splitlines()[-1].startswith("Cluster: 5 nodes, 2 DaemonSets, 7 daemon pods")


def test_several_files_and_a_directory_give_the_same_matrix(snapshot, tmp_path):
    items = _snapshot_items()
    one = _without_time(_json("--snapshot", str(snapshot)))
    nodes = [i for i in items if i["kind"] == "Node"]
    rest = [i for i in items if i["kind"] != "Node"]
    d = tmp_path / "split"
    d.mkdir()
    (d / "a-nodes.json").write_text(json.dumps(v1_list(nodes)))
    (d / "b-rest.json").write_text(json.dumps(v1_list(rest)))
    (d / "notes.txt").write_text("not json, and not read")
    files = _without_time(_json("--snapshot", str(d / "a-nodes.json"), str(d / "b-rest.json")))
    directory = _without_time(_json("--snapshot", str(d)))
    assert files == one
    assert directory == one
    # Single objects (as `kubectl get … -o json` prints one) are accepted too.
    singles = tmp_path / "singles"
    singles.mkdir()
    for i, item in enumerate(items):
        (singles / f"{i:03}.json").write_text(json.dumps(item))
    assert _without_time(_json("--snapshot", str(singles))) == one


def test_stdin(snapshot):
    proc = run_cli("--snapshot", "-", "--format", "json", stdin=snapshot.read_bytes())
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["coverage"] == 75.0
    assert _without_time(doc) == _without_time(_json("--snapshot", str(snapshot)))


def test_daemonset_filter(snapshot):
    doc = _json("--snapshot", str(snapshot), "--daemonset", EFA)
    assert [f"{d['namespace']}/{d['name']}" for d in doc["daemonsets"]] == [EFA]
    assert {c["daemonset"] for c in doc["cells"]} == {EFA}
    assert len(doc["cells"]) == 5
    out, _ = call("--snapshot", str(snapshot), "--daemonset", EXPORTER)
    assert EFA not in out and EXPORTER in out


def test_unknown_daemonset_filter_is_an_error(snapshot):
    with pytest.raises(CommandError, match=r"DaemonSet 'kube-system/nope' not found \(known: "):
        call("--snapshot", str(snapshot), "--daemonset", "kube-system/nope")


# --------------------------------------------------------------------------- exit codes


def test_fail_under_exit_codes(snapshot):
    below = run_cli("--snapshot", str(snapshot), "--fail-under", "50")
    assert below.returncode == 2
    assert (
        b"coverage of kube-system/aws-efa-k8s-device-plugin-daemonset is 33.3%, below 50%"
        in below.stderr
    )
    assert b"node-exporter" not in below.stderr
    assert b"Legend:" in below.stdout  # the report is still printed

    ok = run_cli("--snapshot", str(snapshot), "--fail-under", "33.3", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == b""

    scoped = run_cli("--snapshot", str(snapshot), "--fail-under", "100", "--daemonset", EXPORTER)
    assert scoped.returncode == 0, scoped.stderr


def test_fail_under_in_process(snapshot):
    with pytest.raises(SystemExit) as exc:
        call("--snapshot", str(snapshot), "--fail-under", "90")
    assert exc.value.code == 2
    out, _ = call("--snapshot", str(snapshot), "--fail-under", "30")
    assert "Legend:" in out


BAD_INPUTS = {
    "not-json": (b"this is not json", "not a JSON object"),
    "empty": (b"  \n", "empty input"),
    "json-array": (b"[1, 2]", "Expected `object`, got `array`"),
    "json-but-not-a-list": (b'{"apiVersion": "v1", "items": []}', "expected a List"),
    "missing-name": (
        json.dumps(
            v1_list([{"kind": "Pod", "apiVersion": "v1", "metadata": {"namespace": "x"}}])
        ).encode(),
        "malformed Pod: metadata.name is missing",
    ),
    "wrong-type": (
        json.dumps(
            v1_list(
                [
                    {
                        "kind": "Node",
                        "apiVersion": "v1",
                        "metadata": {"name": "n"},
                        "spec": {"taints": "x"},
                    }
                ]
            )
        ).encode(),
        "malformed Node",
    ),
    "list-item-not-an-object": (b'{"apiVersion":"v1","kind":"List","items":[1]}', "list item 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line(tmp_path, case):
    data, message = BAD_INPUTS[case]
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(CommandError) as exc:
        call("--snapshot", str(path))
    text = str(exc.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text


def test_bad_input_exits_nonzero_without_traceback(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{}}]}')
    for args in (("--snapshot", str(path)), ("--snapshot", str(tmp_path / "missing.json"))):
        proc = run_cli(*args)
        assert proc.returncode != 0
        assert b"Traceback" not in proc.stderr
        lines = proc.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("CommandError: "), proc.stderr
    assert b"no such file or directory" in proc.stderr


def test_unknown_kinds_are_skipped_with_a_note(tmp_path):
    items = [
        node("n1"),
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm", "namespace": "default"},
        },
        {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e1", "namespace": "default"}},
        {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e2", "namespace": "default"}},
    ]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(v1_list(items)))
    proc = run_cli("--snapshot", str(path), "--format", "json")
    assert proc.returncode == 0
    # Events are read (they explain cells, dashboard/coverage/why.py); ConfigMaps are not.
    assert proc.stderr.decode().strip() == (
        "note: skipped objects of kinds the matrix does not use: 1 ConfigMap"
    )
    assert json.loads(proc.stdout)["summary"]["nodes"] == 1


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="directory has no .json files"):
        call("--snapshot", str(tmp_path))


# --------------------------------------------------------------------------- access, static


def _access_snapshot(tmp_path) -> Path:
    from tests.helpers.k8s import endpoint, endpoint_slice, mirror_pod, service

    cp = {"node-role.kubernetes.io/control-plane": ""}
    ds = daemonset(
        "log-agent",
        "logging",
        match_labels={"app": "log-agent"},
        ports=[{"name": "metrics", "containerPort": 9100, "hostPort": 9100}],
    )
    pods = {n: daemon_pod(ds, n, pod_ip=f"10.244.{i}.5") for i, n in enumerate(("a", "b"), 1)}
    svc = service(
        "log-agent",
        "logging",
        selector={"app": "log-agent"},
        headless=True,
        ports=[{"name": "metrics", "port": 80, "targetPort": "metrics"}],
    )
    es = endpoint_slice(
        svc,
        [
            endpoint(pods["a"], "10.244.1.5"),
            endpoint(pods["b"], "10.244.2.5", ready=False),
        ],
        ports=[{"name": "metrics", "port": 9100, "protocol": "TCP"}],
    )
    items = [
        node("a", labels=cp, internal_ip="192.0.2.1"),
        node("b", labels=cp, internal_ip="192.0.2.2"),
        ds,
        *pods.values(),
        svc,
        es,
        mirror_pod("kube-apiserver", "a"),
    ]
    path = tmp_path / "access.json"
    path.write_text(json.dumps(v1_list(items)))
    return path


def test_json_carries_access_paths_and_static_columns(tmp_path):
    doc = _json("--snapshot", str(_access_snapshot(tmp_path)), "--cluster-domain", "corp.local")
    (ds,) = [d for d in doc["daemonsets"] if d["kind"] == "DaemonSet"]
    assert ds["access"] == {
        "services": [
            {
                "namespace": "logging",
                "name": "log-agent",
                "type": "ClusterIP",
                "headless": True,
                "dns": "log-agent.logging.svc.corp.local",
                "ports": [
                    {
                        "name": "metrics",
                        "port": 80,
                        "protocol": "TCP",
                        "target_port": "metrics",
                        "container_port": 9100,
                    }
                ],
                "internal_traffic_policy": "Cluster",
            }
        ],
        "host_ports": [{"port": 9100, "protocol": "TCP", "container": "log-agent"}],
        "host_network": False,
    }
    assert ds["out_of_endpoints"] == 1
    cells = {(c["node"], c["daemonset"]): c for c in doc["cells"]}
    a = cells[("a", "logging/log-agent")]
    assert sorted(a["addresses"]) == ["10.244.1.5:9100", "192.0.2.1:9100"]
    assert a["in_service_endpoints"] is True
    b = cells[("b", "logging/log-agent")]
    assert b["in_service_endpoints"] is False and b["out_of_endpoints"] is True
    (static,) = [d for d in doc["daemonsets"] if d["kind"] == "StaticPod"]
    assert (static["namespace"], static["name"]) == ("kube-system", "kube-apiserver")
    sa = cells[("a", "kube-system/kube-apiserver")]
    assert sa["should_run"] is None and sa["state"] == "healthy"
    # Absent on b while present on its only control-plane peer: "missing".
    assert cells[("b", "kube-system/kube-apiserver")]["state"] == "missing"
    assert doc["schema"] == "daemonviz.coverage/v1"


def test_table_and_fail_under_ignore_static_columns_unless_asked(tmp_path):
    path = str(_access_snapshot(tmp_path))
    out, _ = call("--snapshot", path)
    assert "(static)" not in out
    assert "! logging/log-agent on b: listed by Service logging/log-agent as not ready" in out
    out, _ = call("--snapshot", path, "--include-static")
    assert "kube-system/kube-apiserver (static)" in out
    assert "absent on this control-plane node while present on the other 1" in out
    # The DaemonSet is fully healthy; the static column is at 50 %.
    assert run_cli("--snapshot", path, "--fail-under", "90").returncode == 0
    proc = run_cli("--snapshot", path, "--fail-under", "90", "--include-static")
    assert proc.returncode == 2
    assert b"kube-system/kube-apiserver (static) is 50%" in proc.stderr


# --------------------------------------------------------------------------- nothing to judge


@pytest.mark.parametrize(
    "items",
    [[], [node("n1")], [node("n1"), daemonset("picky", "kube-system", node_selector={"x": "y"})]],
    ids=["empty-list", "nodes-only", "targets-nothing"],
)
def test_fail_under_with_nothing_to_judge_fails_with_its_own_code(tmp_path, items):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(v1_list(items)))
    proc = run_cli("--snapshot", str(path), "--fail-under", "95")
    assert proc.returncode == 3, proc.stderr
    assert b"nothing to judge" in proc.stderr
    # Without a gate the same file is just an empty report.
    assert run_cli("--snapshot", str(path)).returncode == 0


def test_a_kubeconfig_is_not_a_snapshot(tmp_path):
    path = tmp_path / "config.json"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [],
        "users": [],
    }
    path.write_text(json.dumps(kubeconfig))
    proc = run_cli("--snapshot", str(path), "--fail-under", "95")
    assert proc.returncode == 1
    assert b"holds no Kubernetes objects" in proc.stderr and b"kubeconfig" in proc.stderr


# --------------------------------------------------------------------------- in a terminal


def _numbered_snapshot(tmp_path, count: int = 12) -> Path:
    """node-1 … node-12 with long names, one DaemonSet whose image never pulls anywhere."""
    ds = daemonset("agent-with-a-rather-long-name", "observability-platform")
    suffix = ".eu-central-1.compute.internal"
    nodes = [node(f"node-{i}{suffix}") for i in range(1, count + 1)]
    pods = []
    for n in nodes:
        pod = daemon_pod(ds, n["metadata"]["name"])
        pod["status"]["phase"] = "Pending"
        pod["status"]["containerStatuses"] = [
            {
                "name": "agent",
                "ready": False,
                "restartCount": 0,
                "image": "registry.example/agent:v0.8.99",
                "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}},
            }
        ]
        pods.append(pod)
    path = tmp_path / "numbered.json"
    path.write_text(json.dumps(v1_list([*nodes, ds, *pods, controller_revision(ds, 1, "h1")])))
    return path


def _cli_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    return {**env, **extra}


def test_nodes_in_natural_order(tmp_path):
    out, _ = call("--snapshot", str(_numbered_snapshot(tmp_path)))
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("node-")]
    assert [r.split(".")[0] for r in rows] == [f"node-{i}" for i in range(1, 13)]


def test_output_fits_the_terminal_width_and_wide_keeps_everything(tmp_path):
    path = _numbered_snapshot(tmp_path)
    fitted = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "coverage", "--snapshot", str(path)],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        env=_cli_env(COLUMNS="60"),
    )
    assert fitted.returncode == 0, fitted.stderr
    lines = fitted.stdout.decode().splitlines()
    assert max(len(line) for line in lines) <= 60, [ln for ln in lines if len(ln) > 60]
    text = "\n".join(lines)
    # The twelve identical image errors are one group with its nodes, not twelve lines.
    assert "image error on 12 nodes" in text and "+" in text and "more" in text
    assert "Back-off" in text  # the reason is wrapped, never cut away

    wide = run_cli("--snapshot", str(path), "-o", "wide")
    assert any(len(line) > 60 for line in wide.stdout.decode().splitlines())
    assert "node-12.eu-central-1.compute.internal" in wide.stdout.decode()


def test_colours_only_on_a_terminal_and_never_with_no_color(tmp_path):
    import pty

    path = _numbered_snapshot(tmp_path, 3)
    args = [sys.executable, str(ROOT / "manage.py"), "coverage", "--snapshot", str(path)]

    def on_a_tty(env: dict[str, str]) -> bytes:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(args, stdout=follower, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        os_close(follower)
        chunks = []
        while True:
            try:
                chunk = os_read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
        os_close(leader)
        return b"".join(chunks)

    from os import close as os_close
    from os import read as os_read

    assert b"\x1b[" in on_a_tty(_cli_env())
    assert b"\x1b[" not in on_a_tty(_cli_env(NO_COLOR="1"))
    assert b"\x1b[" not in run_cli("--snapshot", str(path)).stdout  # piped: plain


def test_a_failed_create_event_is_the_missing_cells_reason_in_json_and_table(tmp_path):
    efa = load_fixture("daemonset-efa-device-plugin-eks.json")
    quota = (
        'Error creating: pods "aws-efa-k8s-device-plugin-daemonset-x7k2p" is forbidden: '
        "exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0"
    )
    failed_create = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "efa.1", "namespace": efa["metadata"]["namespace"]},
        "involvedObject": {
            "kind": "DaemonSet",
            "namespace": efa["metadata"]["namespace"],
            "name": efa["metadata"]["name"],
        },
        "reason": "FailedCreate",
        "message": quota,
        "type": "Warning",
        "count": 4,
        "lastTimestamp": "2024-05-01T11:59:00Z",
        "source": {"component": "daemonset-controller"},
    }
    # The event comes first in the file, before the DaemonSet it describes.
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(v1_list([failed_create, *_snapshot_items()])))
    doc = _json("--snapshot", str(path))
    missing = {(c["node"], c["daemonset"]): c for c in doc["cells"]}[
        ("ip-192-168-0-161.ec2.internal", EFA)
    ]
    assert missing["state"] == "missing"
    assert missing["reason"] == "FailedCreate: " + quota.removeprefix("Error creating: ")
    assert [(e["reason"], e["count"], e["source"]) for e in missing["events"]] == [
        ("FailedCreate", 4, "daemonset-controller")
    ]
    table, _ = call("--snapshot", str(path))
    assert "exceeded quota: no-pods, requested: pods=1" in table


def test_daemon_size_asks_which_pools_have_no_room(snapshot):
    doc = _json("--snapshot", str(snapshot), "--daemon-size", "cpu=200m,memory=256Mi")
    assert doc["daemon_size"] == "cpu=200m,memory=256Mi"
    assert all({"pool", "nodes", "room", "nodes_without_room"} <= set(p) for p in doc["pools"])
    assert all({"allocatable", "daemon_requests", "daemon_pods"} <= set(n) for n in doc["nodes"])
    with pytest.raises(CommandError, match="'lots' is not a quantity"):
        call("--snapshot", str(snapshot), "--daemon-size", "cpu=lots")
