"""What a placement preview is asked about: DaemonSet manifests and node patches (docs/plan.md).

The text comes from a user (a file given to `--plan`, a form on the Preview page), so it is
bounded before it is parsed: a size limit, YAML through the safe loader only, aliases
measured before anything is built from them, a nesting limit. Every problem is one line
that names the document and, for YAML, the line and column.

A plan text is a sequence of documents separated by `---` lines. A document is either YAML
or JSON (a DaemonSet, or a `List` of them, as `kubectl get ds -o yaml` prints), or a block of
node patch lines:

    label   NODES key=value          # set a label (key- removes it)
    taint   NODES key=value:Effect   # add or replace a taint (key:Effect without a value)
    untaint NODES key[:Effect]       # remove the taints of that key (of that effect)

NODES is a label selector in kubectl's syntax (`pool=gpu`, `zone in (a,b)`), `node/NAME`
(a comma-separated list of names) or `*` for every node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from . import wire
from .bounded_yaml import BoundedYamlError, load_bounded
from .capacity import Amounts, pod_requests
from .records import DaemonSet, DecodeError, daemonset_from_wire
from .selectors import Requirement, SelectorError, parse_selector

MAX_PLAN_BYTES = 512 * 1024  # dozens of DaemonSet manifests; far above a real one (~5 KiB)
MAX_DOCUMENTS = 50
MAX_NODES = 100_000  # YAML nodes once aliases are expanded
MAX_DEPTH = 64  # a DaemonSet manifest nests about 12 levels deep
PATCH_VERBS = ("label", "taint", "untaint")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
DEFAULT_NAMESPACE = "default"

_SEPARATOR = re.compile(r"^---(?:\s|$)")
# Label keys and values as Kubernetes validates them (prefix/name, 63 characters a name).
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = re.compile(rf"^(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE = re.compile(rf"^(?:{_NAME})?$")
_DNS_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$")


class PlanError(ValueError):
    """The plan text cannot be used; the message is one line saying where and why."""


@dataclass(frozen=True)
class Manifest:
    """One planned DaemonSet: its record, what its pod asks of a node, and its template
    as written (to compare with the live one)."""

    daemonset: DaemonSet
    requests: Amounts
    template: dict[str, Any]
    where: str  # "document 2 (line 14)", for messages


@dataclass(frozen=True)
class NodePatch:
    verb: str  # label | taint | untaint
    nodes: str  # the NODES text as written
    selector: tuple[Requirement, ...] | None  # None with `names` or `*`
    names: tuple[str, ...] | None
    key: str
    value: str | None  # label: None removes it; taint: "" when none
    effect: str  # taint/untaint: "" for untaint of every effect
    line: int

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        if self.names is not None:
            return name in self.names
        if self.selector is None:
            return True  # `*`
        return all(r.matches(labels) for r in self.selector)

    def describe(self) -> str:
        if self.verb == "label":
            change = f"{self.key}={self.value}" if self.value is not None else f"{self.key}-"
        elif self.verb == "taint":
            change = f"{self.key}={self.value}" if self.value else self.key
            change += f":{self.effect}"
        else:
            change = self.key + (f":{self.effect}" if self.effect else "")
        return f"{self.verb} {self.nodes} {change}"


@dataclass(frozen=True)
class PlanInput:
    manifests: tuple[Manifest, ...]
    patches: tuple[NodePatch, ...]

    @property
    def empty(self) -> bool:
        return not self.manifests and not self.patches


def parse_plan(text: str | bytes, namespace: str | None = None) -> PlanInput:
    """The manifests and node patches of a plan text; PlanError when any part is wrong.
    `namespace` fills in a manifest without one (kubectl's -n), else "default"."""
    if isinstance(text, bytes):
        if len(text) > MAX_PLAN_BYTES:
            raise PlanError(_too_large(len(text)))
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"not UTF-8 text (byte {exc.start})") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PLAN_BYTES:
        raise PlanError(_too_large(len(text.encode("utf-8", "surrogatepass"))))
    manifests: list[Manifest] = []
    patches: list[NodePatch] = []
    chunks = _documents(text)
    if len(chunks) > MAX_DOCUMENTS:
        raise PlanError(f"{len(chunks)} documents; a plan holds at most {MAX_DOCUMENTS}")
    for number, (first_line, chunk) in enumerate(chunks, start=1):
        where = f"document {number} (line {first_line})"
        if _is_patch_block(chunk):
            patches.extend(_patches(chunk, first_line))
            continue
        doc = _load_yaml(chunk, first_line, where)
        if doc is None:
            continue  # an empty document (a trailing `---`, comments only)
        for item_where, obj in _objects(doc, where):
            manifests.append(_manifest(obj, item_where, namespace or DEFAULT_NAMESPACE))
    if not manifests and not patches:
        raise PlanError("the plan holds no DaemonSet manifest and no node patch")
    keys = [m.daemonset.key for m in manifests]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise PlanError(f"DaemonSet {twice[0]} is planned more than once")
    return PlanInput(tuple(manifests), tuple(patches))


def _too_large(size: int) -> str:
    return f"{size:,} bytes; a plan may be at most {MAX_PLAN_BYTES // 1024} KiB"


def _documents(text: str) -> list[tuple[int, str]]:
    """The text split at `---` lines: (line number of the chunk's first line, chunk). A
    block scalar's content is indented, so a `---` at column 0 always starts a document."""
    chunks: list[tuple[int, str]] = []
    start, lines = 1, list[str]()
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _SEPARATOR.match(line):
            if "".join(lines).strip():
                chunks.append((start, "".join(lines)))
            start, lines = number, [line]
            continue
        lines.append(line)
    if "".join(lines).strip():
        chunks.append((start, "".join(lines)))
    return [(s, c) for s, c in chunks if _meaningful(c)]


def _meaningful(chunk: str) -> bool:
    return any(_content(line) for line in chunk.splitlines())


def _content(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("---"):
        stripped = stripped[3:].strip()
    return "" if stripped.startswith("#") else stripped


def _is_patch_block(chunk: str) -> bool:
    first = next(c for line in chunk.splitlines() if (c := _content(line)))
    return first.split(maxsplit=1)[0] in PATCH_VERBS


# ------------------------------------------------------------------------------ YAML


def _load_yaml(chunk: str, first_line: int, where: str) -> Any:
    try:
        return load_bounded(chunk, max_nodes=MAX_NODES, max_depth=MAX_DEPTH, first_line=first_line)
    except BoundedYamlError as exc:
        raise PlanError(f"{where}: {exc}") from None


# ------------------------------------------------------------------------- manifests


def _objects(doc: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(doc, dict):
        raise PlanError(f"{where}: expected a DaemonSet manifest (a mapping), got {_type(doc)}")
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List")):
        items = doc.get("items")
        if not isinstance(items, list):
            raise PlanError(f"{where}: a {kind} without a list of items")
        out = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise PlanError(f"{where}, item {index}: expected a DaemonSet, got {_type(item)}")
            out.append((f"{where}, item {index}", item))
        return out
    return [(where, doc)]


def _type(value: Any) -> str:
    if value is None:
        return "nothing"
    return {str: "a string", list: "a list", int: "a number", float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _manifest(obj: dict[str, Any], where: str, namespace: str) -> Manifest:
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    name = (
        (obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"), dict) else None
    )
    who = f"{kind} {name}" if kind and name else (kind or "object")
    if kind != "DaemonSet":
        raise PlanError(
            f"{where}: {who} is not a DaemonSet (kind {kind!r}); a plan holds DaemonSet "
            "manifests and node patches"
        )
    if api_version not in (None, "apps/v1"):
        raise PlanError(f"{where}: DaemonSet {name}: apiVersion {api_version!r}, expected apps/v1")
    if not isinstance(name, str) or not _DNS_NAME.match(name):
        raise PlanError(f"{where}: DaemonSet without a valid metadata.name")
    meta = obj["metadata"]
    ns = meta.get("namespace") or namespace
    if not isinstance(ns, str) or not _DNS_NAME.match(ns):
        raise PlanError(f"{where}: DaemonSet {name}: invalid metadata.namespace")
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("template"), dict):
        raise PlanError(f"{where}: DaemonSet {name}: spec.template is required")
    template = spec["template"]
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict) or not pod_spec.get("containers"):
        raise PlanError(f"{where}: DaemonSet {name}: spec.template.spec.containers is required")
    fixed = {**obj, "metadata": {**meta, "namespace": ns}}
    try:
        w = msgspec.convert(fixed, wire.WireDaemonSet, strict=False)
        record = daemonset_from_wire(w)
    except (msgspec.ValidationError, DecodeError, TypeError, ValueError) as exc:
        raise PlanError(f"{where}: DaemonSet {name}: {exc}") from None
    _check_selector(record, where)
    strategy = record.strategy
    if strategy not in ("RollingUpdate", "OnDelete"):
        raise PlanError(
            f"{where}: DaemonSet {name}: updateStrategy.type {strategy!r}, expected "
            "RollingUpdate or OnDelete"
        )
    return Manifest(record, pod_requests(w.spec.template.spec), template, where)


def _check_selector(ds: DaemonSet, where: str) -> None:
    """The API server refuses a DaemonSet whose selector is empty or does not select its
    own template: say so now, as it would."""
    sel = ds.selector
    if sel is None or (not sel.matchLabels and not sel.matchExpressions):
        raise PlanError(f"{where}: DaemonSet {ds.name}: spec.selector is required")
    labels = ds.template_labels
    for key, want in sel.matchLabels.items():
        if labels.get(key) != want:
            raise PlanError(
                f"{where}: DaemonSet {ds.name}: spec.selector {key}={want} does not match "
                "the template's labels (the API server refuses it)"
            )
    for req in sel.matchExpressions:
        ok = {
            "In": req.key in labels and labels[req.key] in req.values,
            "NotIn": req.key not in labels or labels[req.key] not in req.values,
            "Exists": req.key in labels,
            "DoesNotExist": req.key not in labels,
        }.get(req.operator)
        if ok is None:
            raise PlanError(
                f"{where}: DaemonSet {ds.name}: spec.selector operator {req.operator!r} "
                "(expected In, NotIn, Exists or DoesNotExist)"
            )
        if not ok:
            raise PlanError(
                f"{where}: DaemonSet {ds.name}: spec.selector expression on {req.key!r} does "
                "not match the template's labels (the API server refuses it)"
            )


# --------------------------------------------------------------------------- patches


def _patches(chunk: str, first_line: int) -> list[NodePatch]:
    out = []
    for offset, raw in enumerate(chunk.splitlines()):
        line = _content(raw.split(" #", 1)[0])
        if line:
            out.append(parse_patch(line, first_line + offset))
    return out


def parse_patch(line: str, number: int = 1) -> NodePatch:
    """One patch line (`taint pool=gpu dedicated=gpu:NoSchedule`); PlanError if wrong."""
    at = f"line {number}"
    parts = line.split()
    verb = parts[0]
    if verb not in PATCH_VERBS:
        raise PlanError(f"{at}: unknown patch {verb!r} (expected {', '.join(PATCH_VERBS)})")
    if len(parts) < 3:
        raise PlanError(f"{at}: expected `{verb} NODES {_usage(verb)}`")
    # The change is the last word; NODES may hold spaces (`zone in (a, b)`).
    nodes_text, change = " ".join(parts[1:-1]), parts[-1]
    selector, names = _nodes(nodes_text, at)
    if verb == "label":
        if change.endswith("-") and "=" not in change:
            key, value = change[:-1], None
        elif "=" in change:
            key, value = change.split("=", 1)
        else:
            raise PlanError(f"{at}: expected `label NODES key=value` or `key-`, got {change!r}")
        _check_label(key, value, at)
        return NodePatch(verb, nodes_text, selector, names, key, value, "", number)
    key_value, sep, effect = change.rpartition(":")
    if not sep:
        key_value, effect = change, ""
    if verb == "taint" and not effect:
        raise PlanError(f"{at}: a taint needs an effect: `{change}:NoSchedule` ({_effects()})")
    if effect and effect not in EFFECTS:
        raise PlanError(f"{at}: unknown taint effect {effect!r} ({_effects()})")
    key, _, value = key_value.partition("=")
    if verb == "untaint" and value:
        raise PlanError(f"{at}: untaint takes a key and an optional effect, not a value")
    _check_label(key, value, at)
    return NodePatch(verb, nodes_text, selector, names, key, value, effect, number)


def _usage(verb: str) -> str:
    return {"label": "key=value", "taint": "key=value:Effect", "untaint": "key[:Effect]"}[verb]


def _effects() -> str:
    return ", ".join(EFFECTS)


def _nodes(text: str, at: str) -> tuple[tuple[Requirement, ...] | None, tuple[str, ...] | None]:
    if text == "*":
        return None, None
    if text.startswith("node/"):
        names = tuple(n.strip() for n in text[5:].split(",") if n.strip())
        if not names:
            raise PlanError(f"{at}: `node/` without a node name")
        return None, names
    try:
        selector = parse_selector(text)
    except SelectorError as exc:
        raise PlanError(f"{at}: {exc}") from None
    if not selector:
        raise PlanError(f"{at}: empty node selector (use * for every node)")
    return selector, None


def _check_label(key: str, value: str | None, at: str) -> None:
    if not _KEY.match(key):
        raise PlanError(f"{at}: invalid key {key!r}")
    if value is not None and not _VALUE.match(value):
        raise PlanError(f"{at}: invalid value {value!r} for {key}")
