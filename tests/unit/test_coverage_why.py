"""Events in the engine: decoding both API shapes, attaching them to the cells they explain,
the cause they name in the reason, the bound per object, and expiry (TTL, object gone)."""

from __future__ import annotations

import json
from typing import Any

from dashboard.coverage.event_records import EventRecord
from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED
from dashboard.coverage.records import decode, decode_list
from dashboard.coverage.states import State
from dashboard.coverage.why import MAX_PER_OBJECT
from tests.helpers.k8s import (
    Clock,
    build,
    daemon_pod,
    daemonset,
    ds_key,
    node,
    plain_pod,
    to_record,
    ts,
    waiting,
)

QUOTA = (
    'Error creating: pods "agent-x7k2p" is forbidden: exceeded quota: no-pods, '
    "requested: pods=1, used: pods=0, limited: pods=0"
)


def event(
    about: dict[str, Any],
    reason: str,
    message: str,
    *,
    name: str | None = None,
    type_: str = "Warning",
    count: int = 1,
    last: float = 0,
    first: float | None = None,
    component: str = "daemonset-controller",
) -> dict[str, Any]:
    """A core/v1 Event as client-go's legacy recorder writes it (DaemonSet controller,
    kubelet): involvedObject, count, first/lastTimestamp, source."""
    meta = about["metadata"]
    kind = about["kind"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": name or f"{meta['name']}.{abs(hash((reason, message, last))):x}",
            # Events about a node live in "default" (client-go's makeEvent).
            "namespace": meta.get("namespace", "default"),
            "resourceVersion": "1",
        },
        "involvedObject": {
            "kind": kind,
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": ts(first if first is not None else last),
        "lastTimestamp": ts(last),
        "source": {"component": component},
    }


def _cluster():
    agent = daemonset("agent")
    nodes = [node(n) for n in ("node-a", "node-b", "node-c")]
    healthy = daemon_pod(agent, "node-a")
    return agent, nodes, healthy


# --------------------------------------------------------------------------- decoding


def test_legacy_event_decodes_count_times_and_source():
    agent, _, _ = _cluster()
    rec = decode("Event", event(agent, "FailedCreate", QUOTA, count=7, first=-300, last=-10))
    assert isinstance(rec, EventRecord)
    assert (rec.object_kind, rec.object_namespace, rec.object_name) == (
        "DaemonSet",
        "kube-system",
        "agent",
    )
    assert (rec.count, rec.first_seen, rec.last_seen) == (7, ts(-300), ts(-10))
    assert rec.source == "daemonset-controller" and rec.type == "Warning"


def test_new_api_event_read_through_core_v1_uses_series_and_reporting_component():
    # What the scheduler writes through events.k8s.io/v1, as core/v1 serves it.
    obj = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": "p.1", "namespace": "default", "creationTimestamp": ts(-600)},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
        "reason": "FailedScheduling",
        "message": "0/3 nodes are available: 1 Insufficient cpu.",
        "type": "Warning",
        "count": None,
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": "2024-05-01T11:50:00.123456Z",
        "series": {"count": 4, "lastObservedTime": "2024-05-01T11:58:00.000001Z"},
        "source": {},
        "reportingComponent": "default-scheduler",
    }
    rec = decode("Event", obj)
    assert rec.count == 4
    assert rec.first_seen == "2024-05-01T11:50:00.123456Z"
    assert rec.last_seen == "2024-05-01T11:58:00.000001Z"
    assert rec.source == "default-scheduler"


def test_combined_prefix_is_stripped_and_event_lists_decode():
    agent, _, _ = _cluster()
    combined = event(agent, "FailedCreate", "(combined from similar events): " + QUOTA)
    lst = {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [combined]}
    records = decode_list(json.dumps(lst).encode()).records
    assert [r.message for r in records] == [QUOTA]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- attaching


def test_failed_create_becomes_the_reason_of_every_missing_cell_only():
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy])
    assert m.cells[("node-b", ds_key(agent))].reason.startswith("eligible but no daemon pod")
    delta = m.apply(ADDED, to_record(event(agent, "FailedCreate", QUOTA, count=3)))
    assert set(delta.cells) == {("node-b", ds_key(agent)), ("node-c", ds_key(agent))}
    for n in ("node-b", "node-c"):
        cell = m.cells[(n, ds_key(agent))]
        assert cell.state is State.MISSING
        assert cell.reason == "FailedCreate: " + QUOTA.removeprefix("Error creating: ")
        [note] = cell.events
        assert (note.about, note.reason, note.count, note.source) == (
            "DaemonSet",
            "FailedCreate",
            3,
            "daemonset-controller",
        )
    # The healthy cell is not touched by its DaemonSet's trouble elsewhere.
    assert m.cells[("node-a", ds_key(agent))].events == ()


def test_a_deleted_event_takes_its_reason_with_it():
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy])
    ev = event(agent, "FailedCreate", QUOTA)
    m.apply(ADDED, to_record(ev))
    m.apply(DELETED, to_record(ev))
    cell = m.cells[("node-b", ds_key(agent))]
    assert cell.reason.startswith("eligible but no daemon pod") and cell.events == ()


def test_an_event_naming_a_node_goes_to_that_cell_only():
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy])
    msg = "Found failed daemon pod default/agent-zz on node node-c, will try to kill it"
    m.apply(ADDED, to_record(event(agent, "FailedDaemonPod", msg)))
    assert [n.reason for n in m.cells[("node-c", ds_key(agent))].events] == ["FailedDaemonPod"]
    assert m.cells[("node-b", ds_key(agent))].events == ()


def test_container_creating_names_the_failed_mount():
    agent, nodes, _ = _cluster()
    pod = daemon_pod(agent, "node-a", phase="Pending", container_state=waiting("ContainerCreating"))
    m = build([agent, nodes[0], pod])
    assert m.cells[("node-a", ds_key(agent))].state is State.STARTING
    mount = 'MountVolume.SetUp failed for volume "config" : configmap "agent-config" not found'
    m.apply(ADDED, to_record(event(pod, "FailedMount", mount, component="kubelet")))
    cell = m.cells[("node-a", ds_key(agent))]
    assert cell.state is State.STARTING
    assert cell.reason == f"starting: ContainerCreating; FailedMount: {mount}"
    assert cell.events[0].about == f"pod {pod['metadata']['name']}"


def test_readiness_probe_output_is_the_not_ready_reason():
    agent, nodes, _ = _cluster()
    pod = daemon_pod(agent, "node-a", ready=False, container_ready=False)
    m = build([agent, nodes[0], pod])
    assert m.cells[("node-a", ds_key(agent))].state is State.NOT_READY
    probe = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    m.apply(ADDED, to_record(event(pod, "Unhealthy", probe, component="kubelet", count=12)))
    cell = m.cells[("node-a", ds_key(agent))]
    assert cell.reason == f"not Ready: {probe}" and cell.events[0].count == 12


def test_node_events_go_to_the_unhealthy_cells_of_its_row():
    agent, nodes, _ = _cluster()
    m = build([agent, *nodes])
    m.apply(
        ADDED, to_record(event(nodes[1], "ContainerGCFailed", "rpc error", component="kubelet"))
    )
    assert [n.about for n in m.cells[("node-b", ds_key(agent))].events] == ["node"]
    assert m.cells[("node-c", ds_key(agent))].events == ()


# --------------------------------------------------------------------------- bounded


def test_only_the_newest_few_events_per_object_are_kept():
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy])
    for i in range(50):
        ev = event(agent, "FailedCreate", f"{QUOTA} #{i}", name=f"agent.{i}", last=-100 + i)
        m.apply(ADDED, to_record(ev))
    assert len(m.events) == MAX_PER_OBJECT
    kept = m.cells[("node-b", ds_key(agent))].events
    assert [n.message.rsplit("#", 1)[1] for n in kept] == ["49", "48", "47", "46", "45"]
    assert m.cells[("node-b", ds_key(agent))].reason.endswith("#49")
    # A repeat (count bump, same event name) updates in place instead of adding.
    again = event(agent, "FailedCreate", f"{QUOTA} #49", name="agent.49", last=5, count=9)
    m.apply(MODIFIED, to_record(again))
    assert len(m.events) == MAX_PER_OBJECT
    assert m.cells[("node-b", ds_key(agent))].events[0].count == 9


def test_routine_and_unrelated_events_are_not_kept():
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy])
    other = daemonset("other")  # never shown in this matrix
    m.apply_many(
        [
            (ADDED, to_record(event(healthy, "Pulled", "pulled", type_="Normal"))),
            (ADDED, to_record(event(other, "FailedCreate", QUOTA))),
        ]
    )
    assert len(m.events) == 0
    m.apply(ADDED, to_record(event(healthy, "Preempted", "Preempted by pod 1234", type_="Normal")))
    assert len(m.events) == 1


def test_events_expire_after_the_ttl():
    clock = Clock()
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy], clock=clock)
    m.apply(ADDED, to_record(event(agent, "FailedCreate", QUOTA, last=-60)))
    assert m.cells[("node-b", ds_key(agent))].reason.startswith("FailedCreate")
    clock.advance(3600)
    m.refresh_timed()
    assert len(m.events) == 0
    assert m.cells[("node-b", ds_key(agent))].reason.startswith("eligible but no daemon pod")


def test_events_of_a_deleted_object_are_forgotten():
    agent, nodes, _ = _cluster()
    pod = daemon_pod(agent, "node-a", ready=False, container_ready=False)
    m = build([agent, *nodes, pod])
    m.apply(ADDED, to_record(event(pod, "Unhealthy", "Readiness probe failed: 503")))
    m.apply(ADDED, to_record(event(agent, "FailedCreate", QUOTA)))
    assert len(m.events) == 2
    m.apply(DELETED, to_record(pod))
    assert len(m.events) == 1
    m.apply(DELETED, to_record(agent))
    assert len(m.events) == 0


def test_a_relist_applies_events_after_the_objects_they_describe():
    agent, nodes, healthy = _cluster()
    m = build([])
    m.replace_all(
        {
            "Event": [to_record(event(agent, "FailedCreate", QUOTA))],
            "Node": [to_record(n) for n in nodes],
            "DaemonSet": [to_record(agent)],
            "Pod": [to_record(healthy)],
        }
    )
    assert m.cells[("node-b", ds_key(agent))].reason.startswith("FailedCreate")


def test_a_relist_of_one_event_stream_keeps_the_others_events():
    agent, nodes, _ = _cluster()
    m = build([agent, *nodes])
    warning = to_record(event(nodes[1], "ContainerGCFailed", "rpc error", component="kubelet"))
    normal = to_record(
        event(nodes[1], "NodeNotReady", "Node node-b status is now: NodeNotReady", type_="Normal")
    )
    m.apply_many([(ADDED, warning), (ADDED, normal)])
    assert len(m.events) == 2
    m.replace("Event:NodeNotReady", [])  # that watch relisted: its event is gone
    assert [e.reason for e in m.events.by_key.values()] == ["ContainerGCFailed"]
    m.replace("Event:NodeNotReady", [normal])
    m.replace("Event", [])  # the Warning watch relisted: the Normal one stays
    assert [e.reason for e in m.events.by_key.values()] == ["NodeNotReady"]


def test_a_victims_preempted_event_goes_to_the_daemon_that_preempted_it():
    agent, nodes, healthy = _cluster()
    m = build([agent, *nodes, healthy])
    victim = plain_pod("hog", "node-a")
    uid = healthy["metadata"]["uid"]
    preempted = event(
        victim, "Preempted", f"Preempted by pod {uid} on node node-a", type_="Normal",
        component="default-scheduler",
    )  # fmt: skip
    m.apply(ADDED, to_record(preempted))
    cell = m.cells[("node-a", ds_key(agent))]
    assert cell.state is State.HEALTHY  # it got in; the detail says at whose cost
    assert [(n.about, n.reason) for n in cell.events] == [
        ("preempted pod default/hog", "Preempted")
    ]
    # Another pod's preemption (a preemptor that is no daemon) is not kept.
    other = event(
        victim, "Preempted", "Preempted by pod 1234-5 on node node-a", type_="Normal", name="x"
    )
    m.apply(ADDED, to_record(other))
    assert len(m.events) == 1
    m.apply(DELETED, to_record(preempted))
    assert m.cells[("node-a", ds_key(agent))].events == ()


# --------------------------------------------------------------------------- cost


def test_a_daemonset_event_reclassifies_only_its_red_cells(monkeypatch):
    """A FailedCreate on a large cluster must not re-classify the whole column: healthy
    cells carry no events. (The events bench found 5,000 cells re-classified per
    DaemonSet event; bench/RESULTS.md.)"""
    import dashboard.coverage.matrix as matrix_module

    agent = daemonset("agent")
    nodes = [node(f"node-{i}") for i in range(40)]
    pods = [daemon_pod(agent, n["metadata"]["name"]) for n in nodes[:38]]  # 2 missing
    m = build([agent, *nodes, *pods])
    classified: list[tuple[str, str]] = []
    original = matrix_module.classify

    def counting(elig, pods, ds, row, *rest):
        classified.append((row.name, ds.name))
        return original(elig, pods, ds, row, *rest)

    monkeypatch.setattr(matrix_module, "classify", counting)
    m.apply(ADDED, to_record(event(agent, "FailedCreate", QUOTA)))
    assert sorted(classified) == [("node-38", "agent"), ("node-39", "agent")]
    assert m.cells[("node-39", ds_key(agent))].reason.startswith("FailedCreate: ")
    classified.clear()
    m.apply(ADDED, to_record(event(nodes[0], "ContainerGCFailed", "rpc", component="kubelet")))
    assert classified == []  # node-0's only cell is healthy: nothing to explain
    # A healthy cell that turns red later picks the events up when it is classified.
    broken = daemon_pod(agent, "node-0", ready=False, container_ready=False)
    broken["metadata"]["name"] = pods[0]["metadata"]["name"]
    broken["metadata"]["uid"] = pods[0]["metadata"]["uid"]
    m.apply(MODIFIED, to_record(broken))
    assert [n.about for n in m.cells[("node-0", ds_key(agent))].events] == ["node"]


def test_node_event_streams_and_the_namespace_streams_relist_their_own_events():
    """A single namespace other than "default" watched: node events come through streams
    of their own (in "default"), and a relist of the namespace's Warning stream — which
    never sees "default" — must not drop them; nor the other way round."""
    agent, nodes, _ = _cluster()
    m = build([agent, *nodes])
    rebooted = to_record(event(nodes[0], "Rebooted", "rebooted", component="kubelet"))
    quota = to_record(event(agent, "FailedCreate", QUOTA))
    m.replace("NodeEvent", [rebooted])
    m.replace("Event", [quota])
    assert set(m.events.by_key) == {rebooted.key, quota.key}
    m.replace("Event", [])  # the namespace's relist: its FailedCreate is gone, not the node's
    assert set(m.events.by_key) == {rebooted.key}
    m.replace("Event", [quota])
    m.replace("NodeEvent", [])
    assert set(m.events.by_key) == {quota.key}


def test_cluster_wide_the_warning_stream_still_relists_node_events():
    agent, nodes, _ = _cluster()
    m = build([agent, *nodes])
    rebooted = to_record(event(nodes[0], "Rebooted", "rebooted", component="kubelet"))
    m.replace("Event", [rebooted])
    assert rebooted.key in m.events.by_key
    m.replace("Event", [])
    assert len(m.events) == 0


def test_kept_events_are_newest_first_whatever_order_they_arrive_in():
    """EventBook.put places an event first or last without sorting when it goes there:
    the kept lists must read as a full sort by (last seen, name) would, ties included."""
    import random

    from dashboard.coverage.why import EventBook

    agent = daemonset("agent")
    rng = random.Random(14)
    for _ in range(40):
        book = EventBook(per_object=rng.choice((1, 3, 5, 50)))
        arrived: dict[str, EventRecord] = {}
        for _ in range(rng.randrange(1, 30)):
            # Few distinct times and names: equal keys, repeats of one event (updates).
            name = f"agent.{rng.randrange(8)}"
            ev = to_record(event(agent, "FailedCreate", QUOTA, name=name, last=rng.randrange(4)))
            book.put(ev)
            arrived.pop(ev.key, None)
            arrived[ev.key] = ev
            # What a plain stable sort of everything kept so far (oldest arrival first)
            # keeps: the same events, in the same order.
            expected = sorted(
                arrived.values(), key=lambda e: (e.last_seen or "", e.name), reverse=True
            )
            got = list(book.of(ev.about))
            assert [e.key for e in got] == [e.key for e in expected[: book.per_object]]
            arrived = {e.key: e for e in sorted(got, key=lambda e: list(arrived).index(e.key))}
