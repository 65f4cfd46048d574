"""Which nodes a DaemonSet should run on: the controller's `NodeShouldRunDaemonPod`.

docs/cells.md, "Targeting". Three checks only — the template's nodeName, required node affinity
(nodeSelector included) and NoSchedule/NoExecute taints against the template's
tolerations plus the ones the controller injects. Readiness, cordons, resource fit and
PreferNoSchedule taints are deliberately *not* consulted: the controller doesn't either.
Every "no" names the exact rule, because that sentence is what explains an empty cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from msgspec import Struct

from .affinity import parse_int64, term_problem
from .records import DaemonSet, Node
from .wire import NodeSelectorTerm, Requirement, Taint, Toleration

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

# Added by the controller to every daemon pod (util.AddOrUpdateDaemonPodTolerations).
AUTO_TOLERATIONS: tuple[Toleration, ...] = (
    Toleration("node.kubernetes.io/not-ready", "Exists", "", NO_EXECUTE),
    Toleration("node.kubernetes.io/unreachable", "Exists", "", NO_EXECUTE),
    Toleration("node.kubernetes.io/disk-pressure", "Exists", "", NO_SCHEDULE),
    Toleration("node.kubernetes.io/memory-pressure", "Exists", "", NO_SCHEDULE),
    Toleration("node.kubernetes.io/pid-pressure", "Exists", "", NO_SCHEDULE),
    Toleration("node.kubernetes.io/unschedulable", "Exists", "", NO_SCHEDULE),
)
# Only pods on the host network can run before the node's network is up.
HOST_NETWORK_TOLERATION = Toleration(
    "node.kubernetes.io/network-unavailable", "Exists", "", NO_SCHEDULE
)


class Eligibility(Struct, frozen=True, gc=False, array_like=True):
    should_run: bool
    may_continue: bool  # shouldContinueRunning: an existing pod is kept
    reason: str  # empty when eligible; else the exact rule that excludes the node


ELIGIBLE = Eligibility(True, True, "")


def tolerations_for(ds: DaemonSet) -> tuple[Toleration, ...]:
    extra = (HOST_NETWORK_TOLERATION,) if ds.host_network else ()
    return ds.tolerations + AUTO_TOLERATIONS + extra


def tolerates(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        op = t.operator or "Equal"
        if not t.key and op == "Exists":
            return True
        if t.key == taint.key and (op == "Exists" or (op == "Equal" and t.value == taint.value)):
            return True
    return False


def describe_taint(t: Taint) -> str:
    return f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"


def _requirement_matches(req: Requirement, labels: Mapping[str, str]) -> bool:
    op = req.operator
    present = req.key in labels
    value = labels.get(req.key)
    if op == "In":
        return present and value in req.values
    if op == "NotIn":
        return not present or value not in req.values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        # Both sides must parse as Go's strconv.ParseInt(v, 10, 64) does (affinity.py); a
        # node label that does not is simply not matched.
        if value is None or len(req.values) != 1:  # absent (labels hold no None values)
            return False
        have, want = parse_int64(value), parse_int64(req.values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False  # an unknown operator fails to parse upstream, which counts as no match


def _field_matches(req: Requirement, node_name: str) -> bool:
    # Only metadata.name with In/NotIn and one value is valid for matchFields.
    if req.key != "metadata.name" or req.operator not in ("In", "NotIn") or len(req.values) != 1:
        return False
    return (node_name == req.values[0]) == (req.operator == "In")


def term_matches(
    term: NodeSelectorTerm,
    labels: Mapping[str, str],
    node_name: str,
    problem: str | None = None,
) -> bool:
    """`problem` is the term's parse problem when the caller has it (DaemonSet.term_errors),
    None to work it out here."""
    if not term.matchExpressions and not term.matchFields:
        return False  # a term with no requirements matches nothing
    if problem is None:
        problem = term_problem(term)
    if problem:
        return False  # the controller could not parse it: it matches no node
    return all(_requirement_matches(r, labels) for r in term.matchExpressions) and all(
        _field_matches(f, node_name) for f in term.matchFields
    )


def _shorten(values: list[str], keep: int = 3) -> str:
    if len(values) <= keep:
        return ",".join(values)
    return ",".join(values[:keep]) + f",… ({len(values)} values)"


def describe_requirement(req: Requirement) -> str:
    values = _shorten(req.values)
    return {
        "In": f"{req.key} in ({values})",
        "NotIn": f"{req.key} notin ({values})",
        "Exists": f"{req.key}",
        "DoesNotExist": f"!{req.key}",
        "Gt": f"{req.key} > {values}",
        "Lt": f"{req.key} < {values}",
    }.get(req.operator, f"{req.key} {req.operator} {values}")


def _describe_term(term: NodeSelectorTerm) -> str:
    parts = [describe_requirement(r) for r in term.matchExpressions]
    parts += [describe_requirement(f) for f in term.matchFields]
    return ", ".join(parts) or "(empty term)"


def describe_term(term: NodeSelectorTerm) -> str:
    """A required node affinity term in selector syntax (`zone in (a,b), !spot`)."""
    return _describe_term(term)


def describe_toleration(t: Toleration) -> str:
    """A toleration as `kubectl describe` shows it: key=value:effect, or "everything"."""
    key = t.key or "(every key)"
    effect = f":{t.effect}" if t.effect else " (every effect)"
    if t.operator == "Exists":
        return f"{key} exists{effect}" if t.key else f"everything{effect}"
    return f"{key}={t.value}{effect}"


def _affinity_reason(
    terms: tuple[NodeSelectorTerm, ...],
    problems: tuple[str, ...],
    labels: Mapping[str, str],
    name: str,
) -> str:
    if not terms:
        return "required node affinity has no terms (matches no node)"
    # Name the first failing requirement of each term: that is the rule to change.
    failing: list[str] = []
    for index, term in enumerate(terms):
        problem = problems[index] if index < len(problems) else term_problem(term)
        if problem:
            failing.append(f"invalid term ({problem}) matches no node")
            continue
        bad = next((r for r in term.matchExpressions if not _requirement_matches(r, labels)), None)
        if bad is None:
            bad = next((f for f in term.matchFields if not _field_matches(f, name)), None)
        if bad is None:
            failing.append(_describe_term(term))
            continue
        text = describe_requirement(bad)
        have = labels.get(bad.key) if bad.key != "metadata.name" else name
        suffix = (
            f" (node has {bad.key}={have})"
            if have is not None
            else f" (node has no {bad.key} label)"
        )
        failing.append(text + suffix)
    return "required node affinity not matched: " + " OR ".join(dict.fromkeys(failing))


def evaluate(ds: DaemonSet, node: Node) -> Eligibility:
    """(should run, may keep running, reason) for one DaemonSet on one node."""
    if ds.node_name and ds.node_name != node.name:
        return Eligibility(False, False, f"template nodeName pins {ds.node_name}")
    labels = node.labels
    for key, want in ds.node_selector.items():
        if labels.get(key) != want:
            have = f"node has {key}={labels[key]}" if key in labels else f"node has no {key} label"
            return Eligibility(False, False, f"nodeSelector {key}={want} not matched ({have})")
    terms = ds.required_terms
    if terms is not None:
        problems = ds.term_errors
        if len(problems) != len(terms):  # a record built by hand: work them out
            problems = tuple(term_problem(t) for t in terms)
        if not any(term_matches(t, labels, node.name, problems[i]) for i, t in enumerate(terms)):
            return Eligibility(False, False, _affinity_reason(terms, problems, labels, node.name))
    if not node.taints:
        return ELIGIBLE
    tolerations = tolerations_for(ds)
    untolerated = [
        t
        for t in node.taints
        if t.effect in (NO_SCHEDULE, NO_EXECUTE) and not tolerates(tolerations, t)
    ]
    if not untolerated:
        return ELIGIBLE
    evicting = [t for t in untolerated if t.effect == NO_EXECUTE]
    shown = evicting or untolerated
    names = ", ".join(describe_taint(t) for t in shown)
    noun = "taint" if len(shown) == 1 else "taints"
    return Eligibility(False, not evicting, f"{noun} {names} not tolerated")
