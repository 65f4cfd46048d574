"""ControllerRevisions through the kube layer: a real collector lists and watches the fake
API server over HTTP, keeps the templates of the revisions DaemonSets own (and nothing of
the others), and its revision map follows a new revision and the pods that move to it."""

from __future__ import annotations

import copy

import pytest

from dashboard.coverage.rollout import revisions_of, rollout_of
from dashboard.simulator.store import ObjectStore
from tests.helpers import collectors
from tests.helpers.kube_support import node, read_only_server

NS = "kube-system"


def _daemonset(image: str) -> dict:
    return {
        "metadata": {"name": "agent", "namespace": NS, "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "OnDelete"},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": image}]},
            },
        },
        "status": {},
    }


def _revision(ds: dict, number: int, hash_: str, owner_kind: str = "DaemonSet") -> dict:
    meta = ds["metadata"]
    return {
        "metadata": {
            "name": f"{meta['name']}-{hash_}",
            "namespace": NS,
            "labels": {"app": "agent", "controller-revision-hash": hash_},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner_kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        # What the DaemonSet controller's getPatch stores.
        "data": {"spec": {"template": {**ds["spec"]["template"], "$patch": "replace"}}},
        "revision": number,
    }


def _pod(ds: dict, node_name: str, hash_: str) -> dict:
    return {
        "metadata": {
            "name": f"agent-{node_name}-{hash_}",
            "namespace": NS,
            "labels": {"app": "agent", "controller-revision-hash": hash_},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "agent",
                    "uid": ds["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"nodeName": node_name, "containers": [{"name": "agent", "image": "x"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "agent", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    }


@pytest.fixture
def store():
    return ObjectStore()


@pytest.fixture
def server(store):
    with read_only_server(store, bookmark_interval=0.2) as srv:
        yield srv


def test_revisions_are_watched_with_their_templates(store, server, tmp_path):
    for n in ("node-1", "node-2"):
        store.put("nodes", node(n))
    ds = store.put("daemonsets", _daemonset("agent:1"))
    store.put("controllerrevisions", _revision(ds, 1, "aaa"))
    for n in ("node-1", "node-2"):
        store.put("pods", _pod(ds, n, "aaa"))
    # A StatefulSet's revision in the same namespace: listed, decoded, not kept.
    sts = copy.deepcopy(ds)
    sts["metadata"]["name"] = "web"
    store.put("controllerrevisions", _revision(sts, 1, "sts1", owner_kind="StatefulSet"))

    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    with collectors.running(collectors.kubeconfig_cluster(kubeconfig, "revs")) as c:
        key = f"{NS}/agent"
        assert collectors.tick_until(c, lambda: len(c.matrix.revisions_of(key)) == 1)
        assert list(c.matrix.revisions) == [f"{NS}/agent-aaa"]
        (rev,) = c.matrix.revisions_of(key)
        assert '"image":"agent:1"' in rev.template and "$patch" not in rev.template

        # The template changes: the controller writes revision 2; one pod is replaced.
        updated = store.put("daemonsets", {**ds, "spec": _daemonset("agent:2")["spec"]})
        store.put("controllerrevisions", _revision(updated, 2, "bbb"))
        store.delete("pods", NS, "agent-node-1-aaa")
        store.put("pods", _pod(updated, "node-1", "bbb"))

        def moved() -> bool:
            rmap, _ = revisions_of(c.matrix, key)
            return [(i.number, i.nodes) for i in rmap.revisions] == [
                (1, ("node-2",)),
                (2, ("node-1",)),
            ]

        assert collectors.tick_until(c, moved), revisions_of(c.matrix, key)
        _, (d,) = revisions_of(c.matrix, key)
        assert (
            "-  agent=agent:1" in d.diff.splitlines() and "+  agent=agent:2" in d.diff.splitlines()
        )
        r = rollout_of(c.matrix, key)
        assert (
            r is not None
            and r.state == "on-delete"
            and [b.node for b in r.blocked_by] == ["node-2"]
        )

        # The old revision is pruned (history limit): its pod's revision is unknown now.
        store.delete("controllerrevisions", NS, "agent-aaa")
        assert collectors.tick_until(c, lambda: len(c.matrix.revisions_of(key)) == 1)
        rmap, _ = revisions_of(c.matrix, key)
        assert rmap.unknown_nodes == ("node-2",)
