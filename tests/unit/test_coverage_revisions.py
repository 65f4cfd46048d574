"""Revision map and template diff (dashboard/coverage/revisions.py, docs/revisions.md)."""

from __future__ import annotations

import copy

from dashboard.coverage.matrix import ADDED, DELETED
from dashboard.coverage.records import MAX_TEMPLATE_BYTES, decode
from dashboard.coverage.revisions import revision_map, running_diffs, template_diff
from tests.helpers.k8s import (
    build,
    controller_revision,
    daemon_pod,
    daemonset,
    ds_key,
    node,
    to_record,
)


def _with_image(ds, image):
    out = copy.deepcopy(ds)
    out["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return out


def _map(m, key):
    return revision_map(
        m.daemonsets[key], m.revisions_of(key), m.pods_by_node(key), m.current_hash(key)
    )


def test_revision_map_counts_nodes_per_revision_and_diffs_images_first():
    ds = daemonset(
        "agent", image="registry.k8s.io/agent:v2", strategy="OnDelete", template_generation="2"
    )
    v1 = _with_image(ds, "registry.k8s.io/agent:v1")
    revs = [controller_revision(v1, 1, "aaa"), controller_revision(ds, 2, "bbb")]
    pods = [
        daemon_pod(ds, "node-1", revision_hash="aaa", template_generation="1"),
        daemon_pod(ds, "node-2", revision_hash="aaa", template_generation="1"),
        daemon_pod(ds, "node-3", revision_hash="bbb", template_generation="2"),
    ]
    m = build([node("node-1"), node("node-2"), node("node-3"), ds, *revs, *pods])
    key = ds_key(ds)
    rmap = _map(m, key)
    assert [(r.number, r.current, r.nodes) for r in rmap.revisions] == [
        (1, False, ("node-1", "node-2")),
        (2, True, ("node-3",)),
    ]
    assert rmap.current == 2 and rmap.old_nodes == ("node-1", "node-2")
    assert rmap.line() == "revisions: 2 (current) on 1, 1 on 2"
    assert rmap.revisions[0].images == ("agent=registry.k8s.io/agent:v1",)
    (d,) = running_diffs(m.revisions_of(key), rmap)
    assert (d.old, d.new, d.nodes) == (1, 2, ("node-1", "node-2"))
    lines = d.diff.splitlines()
    assert lines[0] == "--- revision 1 (aaa)" and lines[1] == "+++ revision 2 (bbb)"
    changed = [ln for ln in lines[2:] if ln[:1] in "+-"]
    # the image is the first change, in the images block at the top
    assert changed[:2] == ["-  agent=registry.k8s.io/agent:v1", "+  agent=registry.k8s.io/agent:v2"]
    assert "-  - image: registry.k8s.io/agent:v1" in lines
    assert "+  - image: registry.k8s.io/agent:v2" in lines


def test_identical_templates_a_b_a_are_the_same():
    # Revision 3 holds template A again under its own hash (adopted history, or a re-hash):
    # its pods and revision 1's run the same template, and 1 is no "older template".
    a = daemonset("agent", image="registry.k8s.io/agent:a", template_generation="3")
    b = _with_image(a, "registry.k8s.io/agent:b")
    revs = [
        controller_revision(a, 1, "hasha"),
        controller_revision(b, 2, "hashb"),
        controller_revision(a, 3, "hasha2"),
    ]
    pods = [
        daemon_pod(a, "node-1", revision_hash="hasha", template_generation="1"),
        daemon_pod(a, "node-2", revision_hash="hashb", template_generation="2"),
        daemon_pod(a, "node-3", revision_hash="hasha2", template_generation="3"),
    ]
    m = build([node("node-1"), node("node-2"), node("node-3"), a, *revs, *pods])
    key = ds_key(a)
    rmap = _map(m, key)
    by = {r.number: r for r in rmap.revisions}
    assert by[1].same_as == 3 and by[3].same_as == 1 and by[2].same_as is None
    assert by[1].current_template and not by[2].current_template
    assert rmap.old_nodes == ("node-2",)
    assert [d.old for d in running_diffs(m.revisions_of(key), rmap)] == [2]
    assert (
        template_diff(
            m.revisions["kube-system/agent-hasha"], m.revisions["kube-system/agent-hasha2"]
        )
        == ""
    )


def test_only_daemonset_revisions_are_kept():
    ds = daemonset("agent")
    mine = controller_revision(ds, 1, "aaa")
    theirs = copy.deepcopy(mine)
    theirs["metadata"]["name"] = "web-0-abc"
    theirs["metadata"]["ownerReferences"][0]["kind"] = "StatefulSet"
    m = build([node("node-1"), ds, mine, theirs])
    assert list(m.revisions) == ["kube-system/agent-aaa"]
    assert m.revisions["kube-system/agent-aaa"].template.startswith('{"metadata":')
    m.apply(DELETED, to_record(theirs))
    assert list(m.revisions) == ["kube-system/agent-aaa"]


def test_a_huge_template_is_not_kept_and_the_diff_says_so():
    ds = daemonset("agent")
    big = copy.deepcopy(ds)
    big["spec"]["template"]["metadata"]["annotations"] = {"blob": "x" * (MAX_TEMPLATE_BYTES + 10)}
    rev_big = decode("ControllerRevision", controller_revision(big, 1, "big"))
    rev = decode("ControllerRevision", controller_revision(ds, 2, "small"))
    assert rev_big.template == "" and rev_big.template_size > MAX_TEMPLATE_BYTES
    assert template_diff(rev_big, rev).startswith("cannot diff revision 1: its template is larger")


def test_revision_events_mark_the_column_changed():
    ds = daemonset("agent")
    m = build([node("node-1"), ds])
    delta = m.apply(ADDED, to_record(controller_revision(ds, 1, "aaa")))
    assert ds_key(ds) in delta.changed_daemonsets
