"""The what-if placement preview: where DaemonSets would run once manifests are applied or
nodes are relabelled or tainted, worked out from the cluster's records alone (docs/plan.md).

Nothing is sent to a cluster. The prediction follows the DaemonSet controller: targeting is
its `NodeShouldRunDaemonPod` (eligibility.py), pods on nodes it no longer should continue
running on are deleted whatever the strategy, a RollingUpdate deletes every pod of an older
template (and the controller only recreates it where the DaemonSet should still run), an
OnDelete DaemonSet keeps old pods until someone deletes them. Where a new pod would go, the
scheduler's resource fit and host ports are checked against the node's allocatable and the
pods bound to it (capacity.py, access.py): such a pod is still created, but stays Pending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .capacity import Amounts
from .eligibility import (
    Eligibility,
    describe_taint,
    describe_term,
    evaluate,
    term_matches,
    tolerates,
    tolerations_for,
)
from .matrix import Matrix
from .plan_input import Manifest, NodePatch, PlanInput
from .quantity import format_milli
from .records import DaemonSet, Node, Pod, Record
from .snapshot import build_matrix
from .wire import Taint

# What a plan changes of a DaemonSet: it is new; its pod template changes (a rollout); its
# template stays (only e.g. its strategy changes); only node patches move it.
NEW, TEMPLATE, SAME_TEMPLATE, NODES = "new", "template", "same-template", "nodes"
PLANNED_UID_PREFIX = "planned:"  # the uid a DaemonSet that does not exist yet gets


@dataclass(frozen=True)
class NodeNote:
    node: str
    rule: str


@dataclass
class DaemonSetPlan:
    key: str
    change: str  # NEW | TEMPLATE | SAME_TEMPLATE | NODES
    strategy: str
    targets: list[NodeNote] = field(default_factory=list)  # where it should run afterwards
    starts_on: list[NodeNote] = field(default_factory=list)  # targeted, no pod yet
    replaced_on: list[NodeNote] = field(default_factory=list)  # RollingUpdate: old pod → new
    outdated_on: list[NodeNote] = field(default_factory=list)  # OnDelete: old pod stays
    stops_on: list[NodeNote] = field(default_factory=list)  # its pod is deleted, no new one
    kept_on: list[NodeNote] = field(default_factory=list)  # no longer targeted, pod stays
    would_not_fit: list[NodeNote] = field(default_factory=list)  # a new pod stays Pending
    not_targeted: list[NodeNote] = field(default_factory=list)  # why not elsewhere

    def counts(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in (
                "targets",
                "starts_on",
                "replaced_on",
                "outdated_on",
                "stops_on",
                "kept_on",
                "would_not_fit",
                "not_targeted",
            )
        }

    def to_json(self) -> dict[str, Any]:
        def notes(items: list[NodeNote]) -> list[dict[str, str]]:
            return [{"node": n.node, "rule": n.rule} for n in items]

        return {
            "daemonset": self.key,
            "change": self.change,
            "strategy": self.strategy,
            "counts": self.counts(),
            "targets": notes(self.targets),
            "starts_on": notes(self.starts_on),
            "replaced_on": notes(self.replaced_on),
            "outdated_on": notes(self.outdated_on),
            "stops_on": notes(self.stops_on),
            "kept_on": notes(self.kept_on),
            "would_not_fit": notes(self.would_not_fit),
            "not_targeted": notes(self.not_targeted),
        }


@dataclass
class PlanResult:
    before: Matrix
    after: Matrix  # the cluster as if the plan were applied (before the controller acts)
    plans: list[DaemonSetPlan]
    patched_nodes: dict[str, list[str]]  # node → the patch lines that changed it
    planned: set[str]  # keys of the DaemonSets the manifests name

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.plans]


# --------------------------------------------------------------------------- patches


def patch_node(node: Node, patches: Iterable[NodePatch]) -> tuple[Node, list[str]]:
    """The node with every matching patch applied in order, and the patches that matched."""
    labels, taints = dict(node.labels), list(node.taints)
    applied = []
    for p in patches:
        if not p.matches(node.name, labels):
            continue
        applied.append(p.describe())
        if p.verb == "label":
            if p.value is None:
                labels.pop(p.key, None)
            else:
                labels[p.key] = p.value
        elif p.verb == "taint":
            # Like kubectl taint: a taint of the same key and effect is replaced.
            taints = [t for t in taints if not (t.key == p.key and t.effect == p.effect)]
            taints.append(Taint(p.key, p.value or "", p.effect))
        else:
            taints = [t for t in taints if not (t.key == p.key and p.effect in ("", t.effect))]
    if not applied:
        return node, []
    return msgspec.structs.replace(node, labels=labels, taints=tuple(taints)), applied


# ------------------------------------------------------------------- template change


def _subset(want: Any, have: Any, exact_maps: bool = False) -> bool:
    """Whether what the manifest sets (`want`) is all in the live object (`have`): the API
    server only ever *adds* defaults to a template, so fields the manifest leaves out may
    be set on the live copy without it being a change. Lists must be as long; label and
    selector maps must be equal (a key removed there is a change)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        if exact_maps and set(want) != set(have):
            return False
        return all(
            k in have and _subset(v, have[k], k in _EXACT_MAPS) for k, v in want.items()
        ) or (not want and not have)
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(_subset(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, str | int | float):
        return str(want) == str(have)  # quantities: 1 and "1"
    return want == have


# Maps whose keys belong to the user: a key missing from the manifest is a change.
_EXACT_MAPS = {"labels", "annotations", "nodeSelector", "matchLabels"}


def template_changed(
    manifest: Manifest, live: DaemonSet, live_template: Mapping[str, Any] | None
) -> bool:
    """Whether applying the manifest gives the DaemonSet a new pod template (a new
    ControllerRevision, so a rollout). With the live template (from the API, or the
    snapshot) the whole template is compared; without it, what the record keeps."""
    if live_template is not None:
        want = _drop_empty(manifest.template)
        return not _subset(want, dict(live_template))
    new = manifest.daemonset
    return (
        new.images != live.images
        or new.node_selector != live.node_selector
        or new.required_terms != live.required_terms
        or new.tolerations != live.tolerations
        or new.host_network != live.host_network
        or new.host_ports != live.host_ports
        or new.template_labels != live.template_labels
        or new.node_name != live.node_name
    )


def _drop_empty(value: Any) -> Any:
    """`{}` / `[]` / null in a manifest are what the server stores as absent."""
    if isinstance(value, dict):
        return {
            k: _drop_empty(v)
            for k, v in value.items()
            if v is not None and not (isinstance(v, dict | list) and not v)
        }
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def planned_record(manifest: Manifest, live: DaemonSet | None) -> DaemonSet:
    """The DaemonSet as the API server would hold it: an existing one keeps its identity
    (uid, status), so its pods stay its own."""
    ds = manifest.daemonset
    if live is None:
        return msgspec.structs.replace(ds, uid=PLANNED_UID_PREFIX + ds.key, resource_version="")
    return msgspec.structs.replace(
        ds,
        uid=live.uid,
        resource_version=live.resource_version,
        generation=live.generation,
        template_generation=live.template_generation,
        status=live.status,
    )


# --------------------------------------------------------------------------- the plan


def plan(
    records: Sequence[Record],
    plan_input: PlanInput,
    live_templates: Mapping[str, Mapping[str, Any]] | None = None,
) -> PlanResult:
    """Predict, for every planned DaemonSet (and, with node patches, every DaemonSet whose
    placement they change), where it runs once the plan is applied."""
    before = build_matrix(records)
    patched: dict[str, list[str]] = {}
    new_nodes: dict[str, Node] = {}
    for name, node in before.nodes.items():
        new, applied = patch_node(node, plan_input.patches)
        new_nodes[name] = new
        if applied:
            patched[name] = applied
    planned: dict[str, tuple[DaemonSet, Manifest]] = {}
    for m in plan_input.manifests:
        live = before.daemonsets.get(m.daemonset.key)
        planned[m.daemonset.key] = (planned_record(m, live), m)

    replaced = {record_id(r) for r in records if _replaced(r, planned, patched)}
    after_records: list[Record] = [r for r in records if record_id(r) not in replaced]
    after_records += [new_nodes[n] for n in patched]
    after_records += [ds for ds, _ in planned.values()]
    after = build_matrix(after_records)

    plans: list[DaemonSetPlan] = []
    for key in sorted(set(before.daemonsets) | set(planned)):
        if key in planned:
            ds, manifest = planned[key]
            live = before.daemonsets.get(key)
            if live is None:
                change = NEW
            elif template_changed(manifest, live, (live_templates or {}).get(key)):
                change = TEMPLATE
            else:
                change = SAME_TEMPLATE
            plans.append(_plan_one(before, new_nodes, ds, change, manifest.requests))
        elif patched:
            ds = before.daemonsets[key]
            requests = _requests_of(before, ds)
            p = _plan_one(before, new_nodes, ds, NODES, requests)
            # Listed only when the patches move it: a pod that is already kept on a node
            # it no longer targets (misscheduled today) is no news.
            if _where(p) != _where(_plan_one(before, before.nodes, ds, NODES, requests)):
                plans.append(p)
    return PlanResult(before, after, plans, patched, set(planned))


def record_id(record: Record) -> tuple[str, str]:
    return type(record).__name__, record.name if isinstance(record, Node) else record.key


def _replaced(
    record: Record, planned: Mapping[str, tuple[DaemonSet, Manifest]], patched: Mapping[str, Any]
) -> bool:
    if isinstance(record, Node):
        return record.name in patched
    return isinstance(record, DaemonSet) and record.key in planned


def _where(p: DaemonSetPlan) -> tuple[set[str], ...]:
    """Where a DaemonSet runs or loses pods, by list: what node patches can change."""
    return tuple({n.node for n in getattr(p, attr)} for attr in ("targets", "stops_on", "kept_on"))


def _requests_of(before: Matrix, ds: DaemonSet) -> Amounts:
    """What an existing DaemonSet's pod requests, read from one of its pods (the record of
    the DaemonSet keeps no requests); () when it has none."""
    for node in before.nodes:
        for pod in before.pods_in_cell(node, ds.key):
            if pod.requests:
                return pod.requests
    return ()


def _live_pods(before: Matrix, node: str, ds: DaemonSet) -> list[Pod]:
    if ds.uid.startswith(PLANNED_UID_PREFIX):
        return []
    return [
        p
        for p in before.pods_in_cell(node, ds.key)
        if not p.deleting and p.phase not in ("Succeeded", "Failed")
    ]


def _plan_one(
    before: Matrix,
    nodes: Mapping[str, Node],
    ds: DaemonSet,
    change: str,
    requests: Amounts,
) -> DaemonSetPlan:
    p = DaemonSetPlan(ds.key, change, ds.strategy)
    current = before.current_hash(ds.key)
    rolling = ds.strategy != "OnDelete"
    for name in sorted(nodes):
        node = nodes[name]
        verdict = evaluate(ds, node)
        pods = _live_pods(before, name, ds)
        outdated = [
            pod
            for pod in pods
            if change == TEMPLATE
            or (current and pod.revision_hash and pod.revision_hash != current)
        ]
        if verdict.should_run:
            p.targets.append(NodeNote(name, targeted_because(ds, node)))
            if not pods:
                p.starts_on.append(NodeNote(name, "targeted, and no pod runs there yet"))
                _check_fit(before, p, ds, node, requests, freed=())
            elif outdated and rolling:
                p.replaced_on.append(
                    NodeNote(name, "RollingUpdate replaces the pod of the old template")
                )
                # Without surge the old pod is deleted first: its requests are freed.
                freed = outdated if _no_surge(ds) else ()
                _check_fit(before, p, ds, node, requests, freed=freed)
            elif outdated:
                p.outdated_on.append(
                    NodeNote(name, "OnDelete: the old pod keeps running until it is deleted")
                )
            continue
        if not pods:
            p.not_targeted.append(NodeNote(name, verdict.reason))
        elif not verdict.may_continue:
            p.stops_on.append(NodeNote(name, f"its pod is deleted: {verdict.reason}"))
        elif outdated and rolling:
            # The rolling update deletes every old pod; the controller recreates it only
            # where the DaemonSet should run, which a NoSchedule taint rules out.
            p.stops_on.append(
                NodeNote(
                    name,
                    f"RollingUpdate deletes the old pod and no new one is placed: {verdict.reason}",
                )
            )
        else:
            p.kept_on.append(NodeNote(name, _kept_rule(verdict)))
    return p


def _kept_rule(verdict: Eligibility) -> str:
    return (
        f"no longer targeted ({verdict.reason}), but its running pod is kept: only NoExecute evicts"
    )


def _no_surge(ds: DaemonSet) -> bool:
    surge = ds.max_surge
    return surge in (None, 0, "0", "0%")


def targeted_because(ds: DaemonSet, node: Node) -> str:
    """The rules that let the DaemonSet run on the node, in words."""
    parts: list[str] = []
    if ds.node_name:
        parts.append(f"template nodeName pins {ds.node_name}")
    if ds.node_selector:
        parts.append(
            "nodeSelector " + ",".join(f"{k}={v}" for k, v in sorted(ds.node_selector.items()))
        )
    if ds.required_terms is not None:
        matched = next(
            (t for t in ds.required_terms if term_matches(t, node.labels, node.name)), None
        )
        if matched is not None:
            parts.append(f"node affinity {describe_term(matched)}")
    tolerations = tolerations_for(ds)
    tolerated = [
        describe_taint(t)
        for t in node.taints
        if t.effect in ("NoSchedule", "NoExecute") and tolerates(tolerations, t)
    ]
    if tolerated:
        parts.append("tolerates " + ", ".join(tolerated))
    return "; ".join(parts) or "every node (no node selection, no taint in the way)"


def _check_fit(
    before: Matrix,
    p: DaemonSetPlan,
    ds: DaemonSet,
    node: Node,
    requests: Amounts,
    freed: Iterable[Pod],
) -> None:
    """The scheduler's NodeResourcesFit and NodePorts for a new pod of `ds` on `node`."""
    freed = list(freed)
    problems: list[str] = []
    load = before.load.by_node.get(node.name)
    used = dict(load.requested) if load else {}
    pods = load.pods if load else 0
    for pod in freed:
        if pod.bound:
            pods -= 1
            for resource, value in pod.requests:
                used[resource] = used.get(resource, 0) - value
    allocatable = dict(node.allocatable)
    if "pods" in allocatable and pods + 1 > allocatable["pods"] // 1000:
        problems.append(f"Too many pods: node allows {allocatable['pods'] // 1000}, has {pods}")
    if allocatable:  # a node without status.allocatable tells nothing (a bare snapshot)
        for resource, need in requests:
            have = allocatable.get(resource)
            held = max(used.get(resource, 0), 0)
            if have is None:
                problems.append(
                    f"Insufficient {resource}: needs {format_milli(resource, need)}, "
                    "node has none allocatable"
                )
            elif need > have - held:
                free = max(have - held, 0)
                problems.append(
                    f"Insufficient {resource}: needs {format_milli(resource, need)}, "
                    f"{format_milli(resource, free)} free of {format_milli(resource, have)} "
                    f"allocatable ({format_milli(resource, held)} requested by {pods} pods)"
                )
    if ds.host_ports:
        # Its own old pods are gone before the new one is placed, except a surge: then the
        # old pod keeps the port while the new one waits for it.
        surging = [] if _no_surge(ds) else list(_live_pods(before, node.name, ds))
        kept = {pod.key for pod in surging}
        mine = {pod.key for pod in before.pods_in_cell(node.name, ds.key)} - kept
        holders = before.access.holders(node.name, ds.host_ports, mine)
        if holders:
            extra = " (maxSurge: the old pod keeps it while the new one waits)" if kept else ""
            problems.append("host port " + "; ".join(holders) + extra)
    if problems:
        p.would_not_fit.append(
            NodeNote(node.name, "; ".join(problems) + " (the pod stays Pending)")
        )


def templates_in_documents(
    docs: Iterable[tuple[str, bytes]], keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """`spec.template` of the DaemonSets of `keys` found in snapshot documents (kubectl's
    JSON): the live templates a plan is compared with when it reads a snapshot."""
    wanted = set(keys)
    out: dict[str, dict[str, Any]] = {}
    if not wanted:
        return out
    for _name, data in docs:
        try:
            doc = msgspec.json.decode(data)
        except (msgspec.DecodeError, RecursionError):
            continue
        items = doc.get("items") if isinstance(doc, dict) and "items" in doc else [doc]
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict) or item.get("kind", "DaemonSet") != "DaemonSet":
                continue
            meta, spec = item.get("metadata"), item.get("spec")
            if not isinstance(meta, dict) or not isinstance(spec, dict):
                continue
            key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            template = spec.get("template")
            if key in wanted and isinstance(template, dict):
                out[key] = template
    return out
