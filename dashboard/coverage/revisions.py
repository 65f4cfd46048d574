"""A DaemonSet's revisions: which nodes run which template, and how the templates differ.

The DaemonSet controller keeps one ControllerRevision per distinct pod template (up to
`revisionHistoryLimit`), numbered by `.revision`; the highest number is current. A pod
names its revision by its `controller-revision-hash` label. Rolling back (A→B→A) makes the
controller renumber A's revision rather than write a new one, but two revisions can still
hold the same template (adopted history, a re-hash after an upgrade): templates are
therefore compared by content, and a revision whose template equals another's says so.

Pure computation over records (docs/revisions.md).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping

from msgspec import Struct

from .cells import is_pod_updated
from .records import DaemonSet, Pod, Revision


class RevisionInfo(Struct, frozen=True):
    number: int
    name: str
    hash: str
    current: bool
    created: str | None
    nodes: tuple[str, ...]  # nodes with a live (not deleting) pod of this revision
    images: tuple[str, ...]  # "container=image", app containers first
    same_as: int | None  # another revision with the identical template (newest such)
    # Its template equals the current one's: its pods run the current template, even when
    # their hash label is not the current one.
    current_template: bool
    template_known: bool  # False: too large to keep, or not a controller-written patch


class RevisionMap(Struct, frozen=True):
    revisions: tuple[RevisionInfo, ...]  # oldest first
    current: int | None  # the current revision's number
    # Nodes whose pod names no revision the DaemonSet still has (history pruned, or a pod
    # of a template generation only): by whether the controller counts them as updated.
    unknown_nodes: tuple[str, ...]
    old_nodes: tuple[str, ...]  # nodes with a live pod of an older template than current

    def of_hash(self, revision_hash: str) -> RevisionInfo | None:
        for info in self.revisions:
            if info.hash == revision_hash:
                return info
        return None

    @property
    def running(self) -> tuple[RevisionInfo, ...]:
        return tuple(r for r in self.revisions if r.nodes)

    def line(self) -> str:
        """One line for a column's tooltip: 'revisions: 3 (current) on 8 nodes, 2 on 2'."""
        if not self.revisions:
            return ""
        parts = []
        for info in reversed(self.revisions):
            if not info.nodes and not info.current:
                continue
            tag = " (current)" if info.current else ""
            if info.same_as is not None and not info.current:
                tag = f" (= {info.same_as})"
            parts.append(f"{info.number}{tag} on {len(info.nodes)}")
        if self.unknown_nodes:
            parts.append(f"unknown on {len(self.unknown_nodes)}")
        return "revisions: " + ", ".join(parts) if parts else ""


def live(pods: Iterable[Pod]) -> list[Pod]:
    """The pods the controller looks at during a rollout (findUpdatedPodsOnNode skips the
    ones being deleted)."""
    return [p for p in pods if not p.deleting]


def images_of(template: Mapping) -> tuple[str, ...]:
    spec = template.get("spec") if isinstance(template, Mapping) else None
    if not isinstance(spec, Mapping):
        return ()
    out = []
    for field, prefix in (
        ("containers", ""),
        ("initContainers", "init "),
        ("ephemeralContainers", "ephemeral "),
    ):
        for c in spec.get(field) or ():
            if isinstance(c, Mapping):
                out.append(f"{prefix}{c.get('name', '?')}={c.get('image', '')}")
    return tuple(out)


def _template(rev: Revision) -> dict | None:
    if not rev.template:
        return None
    try:
        value = json.loads(rev.template)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def revision_map(
    ds: DaemonSet,
    revisions: list[Revision],
    pods_by_node: Mapping[str, list[Pod]],
    current_hash: str | None,
) -> RevisionMap:
    """Which nodes run which of `ds`'s revisions (`revisions` oldest first)."""
    by_hash = {r.hash: r for r in revisions if r.hash}
    nodes_of: dict[str, list[str]] = {r.hash: [] for r in revisions}
    unknown: list[str] = []
    for node, pods in pods_by_node.items():
        hashes = {p.revision_hash for p in live(pods)}
        for h in sorted(hashes):
            if h in by_hash:
                nodes_of[h].append(node)
            elif node not in unknown:
                unknown.append(node)
    current = by_hash.get(current_hash or "")
    infos = []
    old_nodes: set[str] = set()
    for r in revisions:
        t = _template(r)
        same = [
            o.revision for o in revisions if o is not r and r.template and o.template == r.template
        ]
        is_current = current is not None and r is current
        current_template = is_current or (
            current is not None and bool(r.template) and r.template == current.template
        )
        nodes = tuple(sorted(nodes_of.get(r.hash, ())))
        if not current_template:
            old_nodes.update(nodes)
        infos.append(
            RevisionInfo(
                number=r.revision,
                name=r.name,
                hash=r.hash,
                current=is_current,
                created=r.created,
                nodes=nodes,
                images=images_of(t) if t is not None else (),
                same_as=max(same) if same else None,
                current_template=current_template,
                template_known=t is not None,
            )
        )
    # A pod of a pruned revision is still old unless the controller counts it as updated
    # (its pod-template-generation label, the controller's second test).
    for node in unknown:
        pods = live(pods_by_node.get(node, ()))
        if any(is_pod_updated(p, ds, current_hash) is False for p in pods):
            old_nodes.add(node)
    return RevisionMap(
        revisions=tuple(infos),
        current=current.revision if current is not None else None,
        unknown_nodes=tuple(sorted(unknown)),
        old_nodes=tuple(sorted(old_nodes)),
    )


def readable(template_json: str) -> list[str]:
    """A pod template as lines a human reads and a diff can align: the images first (the
    change one looks for), then the whole template as YAML with sorted keys."""
    import yaml  # PyYAML is a dependency of the CLI as well; loaded only for a diff

    template = json.loads(template_json)
    lines = ["# images"]
    lines += [f"  {image}" for image in images_of(template)] or ["  (none)"]
    lines.append("# template")
    body = yaml.safe_dump(template, sort_keys=True, default_flow_style=False, allow_unicode=True)
    lines += body.splitlines()
    return lines


def template_diff(old: Revision, new: Revision, context: int = 3) -> str:
    """The unified diff from revision `old` to `new` ("" when the templates are equal; a
    sentence when one of them is not known)."""
    missing = [r for r in (old, new) if not r.template]
    if missing:
        r = missing[0]
        why = (
            f"its template is larger than the dashboard keeps ({r.template_size} bytes)"
            if r.template_size
            else "its data is not a pod template the DaemonSet controller wrote"
        )
        return f"cannot diff revision {r.revision}: {why}"
    if old.template == new.template:
        return ""
    lines = difflib.unified_diff(
        readable(old.template),
        readable(new.template),
        fromfile=f"revision {old.revision} ({old.hash or old.name})",
        tofile=f"revision {new.revision} ({new.hash or new.name})",
        n=context,
        lineterm="",
    )
    return "\n".join(lines)


class RevisionDiff(Struct, frozen=True):
    old: int
    new: int
    nodes: tuple[str, ...]  # nodes still running `old`
    diff: str


def running_diffs(revisions: list[Revision], rmap: RevisionMap) -> list[RevisionDiff]:
    """The diff from each older revision still running on some node to the current one,
    newest first."""
    by_number = {r.revision: r for r in revisions}
    current = by_number.get(rmap.current) if rmap.current is not None else None
    if current is None:
        return []
    out = []
    for info in reversed(rmap.revisions):
        if info.current or not info.nodes or info.current_template:
            continue
        old = by_number.get(info.number)
        if old is not None:
            out.append(
                RevisionDiff(info.number, current.revision, info.nodes, template_diff(old, current))
            )
    return out
