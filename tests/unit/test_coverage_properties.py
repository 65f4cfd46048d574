"""Properties of the live matrix over random cluster histories (Hypothesis).

A history gives every object (node, DaemonSet, daemon pod, ControllerRevision) its own
sequence of puts (ADDED / MODIFIED) and deletes. Any interleaving that keeps each object's
own order must end in the matrix a fresh build from the final objects gives, and every
event must touch only the cells it can affect.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED, Matrix
from dashboard.coverage.records import DaemonSet, Node, Pod, Revision
from tests.helpers.k8s import (
    controller_revision,
    daemon_pod,
    daemonset,
    fixed_clock,
    node,
    notready_taints,
    taint,
    terminated,
    to_record,
    toleration,
    ts,
    waiting,
)

NODE_NAMES = ["n0", "n1", "n2"]
DS_NAMES = ["d0", "d1", "d2"]
# Two possible uids per DaemonSet name: a different uid means "deleted and re-created".
DS_UIDS = {name: [f"{name}-uid-a", f"{name}-uid-b"] for name in DS_NAMES}

TAINTS = {
    "gpu": [taint("dedicated", "NoSchedule", "gpu")],
    "evict": [taint("maintenance", "NoExecute")],
    "notready": notready_taints(),
    "unreachable": notready_taints("node.kubernetes.io/unreachable"),
    "cordon": [taint("node.kubernetes.io/unschedulable")],
    "soft": [taint("spot", "PreferNoSchedule")],
}

POD_STATES: dict[str, dict[str, Any]] = {
    "healthy": {},
    "recently-ready": {"ready_since": ts(-30)},
    "not-ready": {"ready": False, "container_ready": False},
    "crash": {
        "container_state": waiting("CrashLoopBackOff"),
        "restarts": 3,
        "last_state": terminated("Completed", 0),
    },
    "image": {"phase": "Pending", "container_state": waiting("ErrImagePull")},
    "config": {"phase": "Pending", "container_state": waiting("CreateContainerConfigError")},
    "creating": {"phase": "Pending", "container_state": waiting("ContainerCreating")},
    "unbound": {"bound": False, "phase": "Pending", "scheduled": False},
    "unschedulable": {
        "bound": False,
        "phase": "Pending",
        "scheduled": False,
        "unschedulable_message": "0/3 nodes are available: 1 Insufficient cpu.",
    },
    "failed": {"phase": "Failed", "reason": "OutOfcpu", "container_state": terminated()},
    "failed-deleting": {
        "phase": "Failed",
        "reason": "OutOfcpu",
        "container_state": terminated(),
        "deleting": True,
    },
    "terminating": {"deleting": True},
}


# --------------------------------------------------------------------------- versions


node_versions = st.fixed_dictionaries(
    {
        "labels": st.fixed_dictionaries(
            {},
            optional={"pool": st.sampled_from(["a", "b"]), "zone": st.sampled_from(["z1", "z2"])},
        ),
        "taints": st.one_of(
            st.just([]), st.lists(st.sampled_from(sorted(TAINTS)), max_size=2, unique=True)
        ),
        "ready": st.sampled_from(["True", "True", "False", "Unknown"]),
        "created": st.sampled_from([ts(-7200), ts(-20)]),
    }
)


def _node(name: str, v: dict) -> dict:
    taints = [t for key in v["taints"] for t in TAINTS[key]]
    return node(
        name,
        labels=v["labels"],
        taints=taints,
        ready=v["ready"],
        unschedulable="cordon" in v["taints"],
        created=v["created"],
    )


ds_versions = st.fixed_dictionaries(
    {
        "uid": st.sampled_from([0, 0, 0, 1]),
        "node_selector": st.sampled_from([None, None, None, {"pool": "a"}, {"pool": "b"}]),
        "affinity": st.sampled_from([None, None, None, "zone-z1", "not-z2"]),
        "tolerations": st.sampled_from([(), "all", "gpu", "notready"]),
        "max_surge": st.sampled_from([0, 1]),
        "strategy": st.sampled_from(["RollingUpdate", "OnDelete"]),
        "min_ready_seconds": st.sampled_from([0, 0, 300]),
        "template_generation": st.sampled_from([None, "1", "2"]),
        "observed_lag": st.booleans(),
        "deleting": st.booleans(),
    }
)

_AFFINITY = {
    "zone-z1": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}],
    "not-z2": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z2"]}]}],
}
_TOLERATIONS = {
    "all": [toleration(operator="Exists")],
    "gpu": [toleration("dedicated", "Equal", "gpu", "NoSchedule")],
    "notready": [toleration("node.kubernetes.io/not-ready", "Exists", effect="NoSchedule")],
}


def _ds(name: str, v: dict) -> dict:
    return daemonset(
        name,
        uid=DS_UIDS[name][v["uid"]],
        node_selector=v["node_selector"],
        affinity_terms=_AFFINITY[v["affinity"]] if v["affinity"] else None,
        tolerations=_TOLERATIONS[v["tolerations"]] if v["tolerations"] else (),
        max_surge=v["max_surge"],
        max_unavailable=1 if v["max_surge"] == 0 else 0,
        strategy=v["strategy"],
        min_ready_seconds=v["min_ready_seconds"],
        template_generation=v["template_generation"],
        generation=2,
        observed_generation=1 if v["observed_lag"] else 2,
        deleting=v["deleting"] and v["observed_lag"],  # rare
    )


pod_versions = st.fixed_dictionaries(
    {
        "state": st.sampled_from(sorted(POD_STATES)),
        "hash": st.sampled_from([None, "h1", "h2"]),
        "generation": st.sampled_from([None, "1", "2"]),
    }
)


def _pod(ident: tuple[str, int, str, int], v: dict) -> dict:
    ds_name, uid_idx, node_name, slot = ident
    owner = daemonset(ds_name, uid=DS_UIDS[ds_name][uid_idx])
    return daemon_pod(
        owner,
        node_name,
        name=f"{ds_name}-{node_name}-{uid_idx}{slot}",
        created=ts(-7200 + 60 * slot),
        revision_hash=v["hash"],
        template_generation=v["generation"],
        **POD_STATES[v["state"]],
    )


rev_versions = st.fixed_dictionaries(
    {"revision": st.integers(1, 3), "hash": st.sampled_from(["h1", "h2"])}
)


def _rev(ident: tuple[str, int, int], v: dict) -> dict:
    ds_name, uid_idx, slot = ident
    owner = daemonset(ds_name, uid=DS_UIDS[ds_name][uid_idx])
    obj = controller_revision(owner, v["revision"], v["hash"])
    # The name is the object's identity; the hash label is what may change between versions.
    obj["metadata"]["name"] = f"{ds_name}-rev{uid_idx}{slot}"
    return obj


def ops(versions: st.SearchStrategy, puts_per_delete: int = 3) -> st.SearchStrategy:
    """One object's own history: a list of ("put", version) / ("delete", None)."""
    # Mostly puts: an object deleted at the end leaves little to compare.
    step = st.sampled_from(["put"] * puts_per_delete + ["delete"]).flatmap(
        lambda op: versions.map(lambda v: ("put", v)) if op == "put" else st.just(("delete", None))
    )
    return st.lists(step, min_size=1, max_size=4)


@st.composite
def histories(draw):
    objects: dict[tuple, tuple[str, list]] = {}
    nodes = draw(st.lists(st.sampled_from(NODE_NAMES), min_size=1, max_size=3, unique=True))
    dss = draw(st.lists(st.sampled_from(DS_NAMES), min_size=1, max_size=3, unique=True))
    for n in nodes:
        objects[("node", n)] = ("node", draw(ops(node_versions, 6)))
    for d in dss:
        objects[("ds", d)] = ("ds", draw(ops(ds_versions, 6)))
    pod_ids = draw(
        st.lists(
            st.tuples(
                st.sampled_from(dss),
                st.sampled_from([0, 0, 0, 1]),
                # Mostly nodes of the cluster; sometimes one that never exists.
                st.sampled_from(nodes * 3 + NODE_NAMES),
                st.integers(0, 1),
            ),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    for ident in pod_ids:
        objects[("pod", *ident)] = ("pod", draw(ops(pod_versions)))
    rev_ids = draw(
        st.lists(
            st.tuples(st.sampled_from(dss), st.sampled_from([0, 0, 0, 1]), st.integers(0, 1)),
            max_size=3,
            unique=True,
        )
    )
    for ident in rev_ids:
        objects[("rev", *ident)] = ("rev", draw(ops(rev_versions)))

    # Turn each object's ops into watch events (skipping deletes of absent objects).
    builders = {
        "node": lambda i, v: _node(i[1], v),
        "ds": lambda i, v: _ds(i[1], v),
        "pod": lambda i, v: _pod(i[1:], v),
        "rev": lambda i, v: _rev(i[1:], v),
    }
    per_object: dict[tuple, list[tuple[str, Any]]] = {}
    final: list[Any] = []
    for ident, (kind, history) in objects.items():
        events: list[tuple[str, Any]] = []
        current = None
        for op, version in history:
            if op == "put":
                rec = to_record(builders[kind](ident, version))
                events.append((MODIFIED if current is not None else ADDED, rec))
                current = rec
            elif current is not None:
                events.append((DELETED, current))
                current = None
        per_object[ident] = events
        if current is not None:
            final.append(current)

    # A random interleaving that keeps every object's own order.
    tags = [ident for ident, evs in per_object.items() for _ in evs]
    order = draw(st.permutations(tags))
    cursors = dict.fromkeys(per_object, 0)
    stream = []
    for ident in order:
        stream.append(per_object[ident][cursors[ident]])
        cursors[ident] += 1
    return stream, final


def _fresh(records) -> Matrix:
    m = Matrix(clock=fixed_clock())
    m.apply_many((ADDED, r) for r in records)
    return m


def _same(a: Matrix, b: Matrix) -> None:
    assert a.cells == b.cells
    assert set(a.nodes) == set(b.nodes) and set(a.daemonsets) == set(b.daemonsets)
    assert a.pods == b.pods
    assert a.ds_counts == b.ds_counts
    assert a.node_counts == b.node_counts
    assert {k: a.current_hash(k) for k in a.daemonsets} == {
        k: b.current_hash(k) for k in b.daemonsets
    }


def _expected_cells(m: Matrix) -> set:
    return {(n, d) for n in m.nodes for d in m.daemonsets}


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(histories())
def test_any_interleaving_ends_in_the_fresh_matrix(history):
    stream, final = history
    live = Matrix(clock=fixed_clock())
    for event_type, record in stream:
        live.apply(event_type, record)
    fresh = _fresh(final)
    _same(live, fresh)
    assert set(live.cells) == _expected_cells(live)


@SETTINGS
@given(histories(), st.integers(1, 5))
def test_batched_application_ends_in_the_fresh_matrix(history, batch):
    stream, final = history
    live = Matrix(clock=fixed_clock())
    for i in range(0, len(stream), batch):
        live.apply_many(stream[i : i + batch])
    _same(live, _fresh(final))


@SETTINGS
@given(histories())
def test_replace_from_any_state_reaches_the_fresh_matrix(history):
    stream, final = history
    live = Matrix(clock=fixed_clock())
    live.apply_many(stream[: len(stream) // 2])
    before = dict(live.cells)
    changed: dict = {}
    for kind, cls in (
        ("Node", Node),
        ("DaemonSet", DaemonSet),
        ("ControllerRevision", Revision),
        ("Pod", Pod),
    ):
        delta = live.replace(kind, [r for r in final if isinstance(r, cls)])
        changed.update(delta.cells)
    fresh = _fresh(final)
    _same(live, fresh)
    # The deltas describe exactly the difference between the two states.
    for key in set(before) | set(fresh.cells):
        if before.get(key) != fresh.cells.get(key):
            assert changed.get(key) == fresh.cells.get(key)


@SETTINGS
@given(histories())
def test_every_event_touches_only_what_it_can(history):
    stream, _ = history
    live = Matrix(clock=fixed_clock())
    revision = live.revision
    for event_type, record in stream:
        before = dict(live.cells)
        delta = live.apply(event_type, record)
        # The delta is exactly the set of cells that changed.
        after = live.cells
        diff = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        assert set(delta.cells) == diff
        assert all(delta.cells[k] == after.get(k) for k in diff)
        if isinstance(record, Pod):
            assert len(delta.cells) <= 1
            if delta.cells:
                assert next(iter(delta.cells))[0] == record.node
        elif isinstance(record, Node):
            assert {n for n, _ in delta.cells} <= {record.name}
        elif isinstance(record, (DaemonSet, Revision)):
            assert len({d for _, d in delta.cells}) <= 1
            if isinstance(record, DaemonSet):
                assert {d for _, d in delta.cells} <= {record.key}
        # Monotonic revision, bumped exactly when something changed.
        assert live.revision == revision + (0 if delta.empty else 1)
        assert delta.revision == live.revision
        revision = live.revision
        assert set(live.cells) == _expected_cells(live)
        # Running counters always equal a recount of the cells.
        recount: dict[str, Counter] = {k: Counter() for k in live.daemonsets}
        for (_, d), cell in live.cells.items():
            recount[d][cell.state.value] += 1
        for d, c in recount.items():
            assert {s: n for s, n in c.items()} == {s: live.ds_counts[d][s] for s in c}, d
