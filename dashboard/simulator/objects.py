"""Builders for the Kubernetes JSON the simulator emits, shaped like `tests/fixtures/`.

Pure functions over plain dicts. Stored objects are immutable by convention (the store
owns them), so builders freely *share* unchanging sub-dicts between objects — every pod
of one DaemonSet revision points at the same container list, tolerations and volumes.
That sharing is what lets 150,000 realistic pods fit in memory and build quickly.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

Obj = dict[str, Any]

# The alphabet of Kubernetes' rand.String / SafeEncodeString: no vowels, no look-alikes.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

# util.AddOrUpdateDaemonPodTolerations, in the order the fixture pod shows them.
AUTO_TOLERATIONS: tuple[Obj, ...] = (
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists"},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/disk-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/memory-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/pid-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
)
HOST_NETWORK_TOLERATION: Obj = {
    "effect": "NoSchedule",
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
}

PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}

_stamp_cache: dict[int, str] = {}


def rfc3339(t: float) -> str:
    """Seconds since the epoch → RFC 3339 UTC at one-second resolution, as the API serves."""
    s = int(t)
    hit = _stamp_cache.get(s)
    if hit is None:
        if len(_stamp_cache) > 4096:  # timestamps are mostly "now": a tiny cache is enough
            _stamp_cache.clear()
        hit = _stamp_cache[s] = datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return hit


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def template_hash(template: Obj) -> str:
    """A deterministic stand-in for controller.ComputeHash (an FNV hash of a Go struct dump,
    which can't be reproduced in Python anyway), rendered the way SafeEncodeString renders
    the decimal uint32 — so the label *looks* like a real one (`5bc5db57b`)."""
    digest = hashlib.sha256(msgspec.json.encode(template, order="sorted")).digest()
    decimal = str(int.from_bytes(digest[:4], "big"))
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in decimal)


def image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def controller_ref(kind: str, name: str, uid: str) -> list[Obj]:
    return [
        {
            "apiVersion": "apps/v1",
            "blockOwnerDeletion": True,
            "controller": True,
            "kind": kind,
            "name": name,
            "uid": uid,
        }
    ]


# --------------------------------------------------------------------------- DaemonSets


def daemonset(
    namespace: str,
    name: str,
    pod_spec: Obj,
    *,
    labels: Obj | None = None,
    pod_annotations: Obj | None = None,
    strategy: str = "RollingUpdate",
    max_unavailable: int | str = 1,
    max_surge: int | str = 0,
    min_ready_seconds: int = 0,
) -> Obj:
    """A DaemonSet as `kubectl get ds -o json` shows it, apps/v1 defaults filled in."""
    selector = {"app.kubernetes.io/name": name}
    tmpl_labels = {**selector, **(labels or {})}
    update: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        update["rollingUpdate"] = {"maxSurge": max_surge, "maxUnavailable": max_unavailable}
    spec: Obj = {
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {
                "annotations": dict(pod_annotations or {}),
                "creationTimestamp": None,
                "labels": tmpl_labels,
            },
            "spec": pod_spec,
        },
        "updateStrategy": update,
    }
    if min_ready_seconds:
        spec["minReadySeconds"] = min_ready_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "annotations": {TEMPLATE_GENERATION_ANNOTATION: "1"},
            "generation": 1,
            "labels": dict(tmpl_labels),
            "name": name,
            "namespace": namespace,
        },
        "spec": spec,
        "status": {
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberMisscheduled": 0,
            "numberReady": 0,
        },
    }


def controller_revision(ds: Obj, template: Obj, hash_: str, revision: int) -> Obj:
    meta = ds["metadata"]
    labels = {**template["metadata"].get("labels", {}), REVISION_HASH_LABEL: hash_}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "annotations": {
                TEMPLATE_GENERATION_ANNOTATION: meta["annotations"][TEMPLATE_GENERATION_ANNOTATION]
            },
            "labels": labels,
            "name": f"{meta['name']}-{hash_}",
            "namespace": meta["namespace"],
            "ownerReferences": controller_ref("DaemonSet", meta["name"], meta["uid"]),
        },
        # constructHistory stores the template as a strategic-merge patch that replaces it.
        "data": {"spec": {"template": {**template, "$patch": "replace"}}},
        "revision": revision,
    }


# --------------------------------------------------------------------------- pods


class PodBase:
    """What every pod of one DaemonSet revision shares: built once per template."""

    __slots__ = (
        "namespace",
        "generate_name",
        "labels",
        "annotations",
        "owner",
        "spec",
        "containers",
        "init_containers",
        "volumes",
        "other_affinity",
        "qos",
        "host_network",
        "hash",
        "generation",
    )

    def __init__(self, ds: Obj, hash_: str, generation: str):
        meta, tmpl = ds["metadata"], ds["spec"]["template"]
        tspec = tmpl["spec"]
        self.namespace = meta["namespace"]
        self.generate_name = meta["name"] + "-"
        self.hash = hash_
        self.generation = generation
        self.labels = {
            **tmpl["metadata"].get("labels", {}),
            REVISION_HASH_LABEL: hash_,
            TEMPLATE_GENERATION_LABEL: generation,
        }
        self.annotations = tmpl["metadata"].get("annotations") or None
        self.owner = controller_ref("DaemonSet", meta["name"], meta["uid"])
        self.host_network = bool(tspec.get("hostNetwork"))
        # API-server defaulting plus the controller's tolerations (CreatePodTemplate).
        spec = copy.deepcopy(tspec)
        tols = list(spec.get("tolerations") or [])
        auto = [*AUTO_TOLERATIONS, *((HOST_NETWORK_TOLERATION,) if self.host_network else ())]
        for t in auto:
            if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
                tols.append(t)
        spec["tolerations"] = tols
        spec.setdefault(
            "dnsPolicy", "ClusterFirstWithHostNet" if self.host_network else "ClusterFirst"
        )
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec["priority"] = PRIORITIES.get(spec.get("priorityClassName", ""), 0)
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("securityContext", {})
        spec.setdefault("serviceAccountName", "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        spec.setdefault("terminationGracePeriodSeconds", 30)
        affinity = dict(spec.pop("affinity", None) or {})
        node_aff = dict(affinity.pop("nodeAffinity", None) or {})
        node_aff.pop("requiredDuringSchedulingIgnoredDuringExecution", None)
        self.other_affinity = (affinity, node_aff)
        self.containers = spec.pop("containers")
        self.init_containers = spec.pop("initContainers", None)
        self.volumes = spec.pop("volumes", [])
        self.spec = spec
        self.qos = _qos_class(self.containers)


def _qos_class(containers: list[Obj]) -> str:
    requests = [c.get("resources", {}).get("requests") for c in containers]
    limits = [c.get("resources", {}).get("limits") for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    if all(r and lim and r == lim for r, lim in zip(requests, limits, strict=True)):
        return "Guaranteed"
    return "Burstable"


_TOKEN_SOURCES = {
    "defaultMode": 420,
    "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
        {
            "downwardAPI": {
                "items": [
                    {
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        "path": "namespace",
                    }
                ]
            }
        },
    ],
}


def _with_token_mount(containers: list[Obj] | None, volume: str) -> list[Obj] | None:
    if containers is None:
        return None
    mount = {
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "name": volume,
        "readOnly": True,
    }
    return [{**c, "volumeMounts": [*c.get("volumeMounts", ()), mount]} for c in containers]


def pod_spec(base: PodBase, node: str, token_volume: str, bound: bool) -> Obj:
    """The pod spec the controller creates for `node` (and the scheduler binds)."""
    affinity_rest, node_aff_rest = base.other_affinity
    # ReplaceDaemonSetPodNodeNameNodeAffinity: one matchFields term replaces the template's.
    node_aff = {
        **node_aff_rest,
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        },
    }
    spec = {
        **base.spec,
        "affinity": {**affinity_rest, "nodeAffinity": node_aff},
        "containers": _with_token_mount(base.containers, token_volume),
        "volumes": [*base.volumes, {"name": token_volume, "projected": _TOKEN_SOURCES}],
    }
    if base.init_containers:
        spec["initContainers"] = _with_token_mount(base.init_containers, token_volume)
    if bound:
        spec["nodeName"] = node
    return spec


def condition(type_: str, status: str, since: str, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"lastProbeTime": None, "lastTransitionTime": since, "status": status, "type": type_}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c
