"""Records share the strings pods repeat (bench/RESULTS.md, *Beyond 5,000 nodes*): one
object per node name, owner, phase... instead of one per pod, which cut the memory a
600,000-pod matrix keeps by 30 %. Equal values were always equal; this checks identity."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import msgspec

from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import decode_list

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _pods(n: int) -> bytes:
    template = json.loads((FIXTURES / "pod-daemonset-owned-running-eks.json").read_text())
    items = []
    for i in range(n):
        p = copy.deepcopy(template)
        p["metadata"]["name"] = f"agent-{i}"
        p["metadata"]["uid"] = f"uid-{i}"
        items.append(p)
    return msgspec.json.encode({"kind": "PodList", "metadata": {}, "items": items})


def test_pods_of_one_daemonset_share_their_repeated_strings():
    a, b = decode_list(_pods(2), "Pod").records
    assert a.name != b.name and a.uid != b.uid  # what is distinct stays distinct
    for field in (
        "namespace",
        "owner_uid",
        "owner_name",
        "node",
        "phase",
        "status_word",
        "revision_hash",
        "template_generation",
        "images",
    ):
        assert getattr(a, field) == getattr(b, field), field
        assert getattr(a, field) is getattr(b, field), f"{field} is not shared"


def test_cells_share_their_ready_ratio_and_reason():
    node_doc = json.loads((FIXTURES / "node-eks-ready-worker.json").read_text())
    ds_doc = json.loads((FIXTURES / "daemonset-efa-device-plugin-eks.json").read_text())
    ds_doc["spec"]["template"]["spec"].pop("affinity", None)
    nodes = []
    for i in range(2):
        n = copy.deepcopy(node_doc)
        n["metadata"]["name"] = f"node-{i}"
        n["metadata"]["labels"]["kubernetes.io/hostname"] = f"node-{i}"
        nodes.append(n)
    pods = json.loads(_pods(2))["items"]
    for i, p in enumerate(pods):
        p["spec"]["nodeName"] = f"node-{i}"
        p["metadata"]["ownerReferences"][0]["uid"] = ds_doc["metadata"]["uid"]
        p["metadata"]["ownerReferences"][0]["name"] = ds_doc["metadata"]["name"]

    def page(kind: str, items: list) -> bytes:
        return msgspec.json.encode({"kind": f"{kind}List", "metadata": {}, "items": items})

    m = Matrix()
    m.replace_all(
        {
            "Node": decode_list(page("Node", nodes), "Node").records,
            "DaemonSet": decode_list(page("DaemonSet", [ds_doc]), "DaemonSet").records,
            "Pod": decode_list(page("Pod", pods), "Pod").records,
        }
    )
    a, b = m.cells.values()  # two nodes, one DaemonSet
    assert a.ready_containers == b.ready_containers and a.ready_containers is b.ready_containers
    assert a.reason == b.reason and a.reason is b.reason


def _requesting_pods(n: int, node: str) -> list:
    pods = json.loads(_pods(n))["items"]
    for p in pods:
        p["spec"]["nodeName"] = node
        for c in p["spec"]["containers"]:
            c["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"}}
    return pods


def test_pods_share_their_requests_and_priority_class():
    # Every pod of a DaemonSet asks for the same: one tuple (and one set of large ints)
    # per distinct request, not per pod (bench/RESULTS.md, initial sync with the why).
    page = msgspec.json.encode(
        {"kind": "PodList", "metadata": {}, "items": _requesting_pods(2, "node-0")}
    )
    a, b = decode_list(page, "Pod").records
    assert a.requests == b.requests == (("cpu", 50), ("memory", 64 * 2**20 * 1000))
    for field in ("requests", "priority_class", "preemption_policy"):
        assert getattr(a, field) == getattr(b, field) and getattr(a, field), field
        assert getattr(a, field) is getattr(b, field), f"{field} is not shared"


def test_daemon_pods_of_a_node_share_their_load_entry():
    page = msgspec.json.encode(
        {"kind": "PodList", "metadata": {}, "items": _requesting_pods(3, "node-0")}
    )
    m = Matrix()
    m.replace("Pod", decode_list(page, "Pod").records)
    load = m.load.by_node["node-0"]
    assert load.pods == 3 and load.requested == {"cpu": 150, "memory": 3 * 64 * 2**20 * 1000}
    first, *others = load.members.values()
    assert all(o == first and o is first for o in others)
