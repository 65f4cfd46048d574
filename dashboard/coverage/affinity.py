"""How the controller reads a required node-affinity term before matching it.

The DaemonSet controller matches node affinity through `k8s.io/component-helpers`
(`nodeaffinity.NewLazyErrorNodeSelector`): each term is first parsed into a label selector
(`labels.NewRequirement` per match expression, one field selector per match field). A term
that fails to parse matches no node at all; the other terms are still tried. The API server
does not validate most of this (kubernetes/kubernetes#128212), so a DaemonSet can carry a
term that can never match. `term_problem` says why a term would not parse, or "".

Integers for `Gt`/`Lt` are Go's `strconv.ParseInt(v, 10, 64)`: an optional sign, ASCII
digits only (no `_`, no spaces), within int64. Python's `int()` is more lenient on every
count, so it is not used.
"""

from __future__ import annotations

import re

from .wire import NodeSelectorTerm, Requirement

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_GO_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)

# apimachinery's validation.IsQualifiedName and IsValidLabelValue.
_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME, re.ASCII)
_DNS_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", re.ASCII
)
NAME_MAX = 63
PREFIX_MAX = 253

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def parse_int64(text: str) -> int | None:
    """`strconv.ParseInt(text, 10, 64)`, or None where Go returns an error."""
    if _GO_INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def valid_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (
        not prefix or len(prefix) > PREFIX_MAX or _DNS_SUBDOMAIN.fullmatch(prefix) is None
    ):
        return False
    return 0 < len(name) <= NAME_MAX and _NAME_RE.fullmatch(name) is not None


def valid_label_value(value: str) -> bool:
    return value == "" or (len(value) <= NAME_MAX and _NAME_RE.fullmatch(value) is not None)


def requirement_problem(req: Requirement) -> str:
    """Why `labels.NewRequirement` refuses this match expression, or ""."""
    op, values = req.operator, req.values
    if not valid_label_key(req.key):
        return f"key {req.key!r} is not a valid label key"
    if op in ("In", "NotIn"):
        if not values:
            return f"{op} needs at least one value"
    elif op in ("Exists", "DoesNotExist"):
        if values:
            return f"{op} takes no values"
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            return f"{op} needs exactly one value"
        if parse_int64(values[0]) is None:
            return f"{op} value {values[0]!r} is not an integer"
    else:
        return f"operator {op!r} is not supported"
    bad = next((v for v in values if not valid_label_value(v)), None)
    if bad is not None:
        return f"value {bad!r} is not a valid label value"
    return ""


def field_problem(req: Requirement) -> str:
    """Why `nodeSelectorRequirementsAsFieldSelector` refuses this match field, or ""."""
    if req.operator not in ("In", "NotIn"):
        return f"operator {req.operator!r} is not supported for matchFields"
    if len(req.values) != 1:
        return f"matchFields {req.operator} needs exactly one value"
    return ""


def term_problem(term: NodeSelectorTerm) -> str:
    """Why the controller could not parse this term (so it matches no node), or ""."""
    for req in term.matchExpressions:
        if problem := requirement_problem(req):
            return f"{req.key}: {problem}"
    for req in term.matchFields:
        if problem := field_problem(req):
            return f"{req.key}: {problem}"
    return ""
