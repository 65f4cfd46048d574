"""Static-pod columns beyond the engine (issue 15 §3): the grid's columns and cells, the
pushes that redraw them, the wall's rows and exceptions, and the simulator's control plane
and Services that make the demo show them."""

from __future__ import annotations

import json

import pytest

from dashboard.coverage.matrix import MODIFIED
from dashboard.coverage.records import decode
from dashboard.grid import fragments, frames
from dashboard.grid.model import GridFilters, build_grid
from dashboard.simulator.cluster import Simulator
from dashboard.wall import aggregate as wall
from tests.helpers.k8s import build, daemon_pod, daemonset, mirror_pod, node, to_record

CP = {"node-role.kubernetes.io/control-plane": ""}


def control_plane():
    ds = daemonset("agent", "monitoring")
    objs = [node(f"cp-{i}", labels={**CP, "pool": "cp"}) for i in (1, 2, 3)]
    objs += [node("worker-1", labels={"pool": "general"}), ds]
    objs += [daemon_pod(ds, n) for n in ("cp-1", "cp-2", "cp-3", "worker-1")]
    objs += [mirror_pod("kube-apiserver", f"cp-{i}") for i in (1, 2, 3)]
    objs += [mirror_pod("etcd", f"cp-{i}") for i in (1, 2)]  # etcd left out on cp-3
    return build(objs)


def test_grid_has_a_static_column_per_manifest_after_the_daemonsets():
    m = control_plane()
    view = build_grid(m, GridFilters())
    assert [c.key for c in view.static_columns] == [
        "kube-system/etcd",
        "kube-system/kube-apiserver",
    ]
    assert view.all_columns == 3
    etcd = view.static_columns[0]
    assert etcd.present == 2 and etcd.problems == 1  # missing on cp-3, the role's odd one
    assert "managed by the kubelet" in etcd.title and "not by a DaemonSet" in etcd.title
    rows = {r.name: r for g in view.groups for r in g.rows}
    assert rows["cp-3"].static_cells[0][1].state.value == "missing"
    assert rows["worker-1"].static_cells[0][1].state.value == "absent"
    html = fragments.render_row("demo", rows["cp-3"])
    assert html.count('class="c st s-') == 2  # spans, after the DaemonSet's link
    assert html.index('class="c s-') < html.index('class="c st s-missing"')
    assert "absent on this control-plane node while present on the other 2" in html

    assert build_grid(m, GridFilters(static="hide")).static_columns == []
    assert build_grid(m, GridFilters(namespace="monitoring")).static_columns == []
    only = build_grid(m, GridFilters(daemonset="etcd")).static_columns
    assert [c.name for c in only] == ["etcd"]
    assert GridFilters.from_query({"static": "hide"}).querystring() == "static=hide"
    assert GridFilters.from_query({"static": "yes"}).static == ""


def test_a_changed_mirror_pod_redraws_grids_that_show_static_columns():
    m = control_plane()
    same = m.apply(MODIFIED, to_record(mirror_pod("etcd", "cp-1")))
    assert not same.static_changed and same.empty  # the same object again: nothing moved
    delta = m.apply(MODIFIED, to_record(mirror_pod("etcd", "cp-1", ready=False)))
    assert delta.static_changed and not delta.empty
    payload = fragments.delta_payload("demo", m, delta, fragments.cluster_summary(m))
    assert payload["static"] is True
    assert json.loads(frames.client_frame(payload, GridFilters())).get("resync") == 1
    hidden = json.loads(frames.client_frame(payload, GridFilters(static="hide")))
    assert "resync" not in hidden


def test_a_joining_row_carries_its_static_cells():
    m = control_plane()
    delta = m.apply(MODIFIED, to_record(node("cp-4", labels=CP)))
    payload = fragments.delta_payload("demo", m, delta, fragments.cluster_summary(m))
    (row,) = payload["rows_added"]
    assert [k for k, _, _ in row["static_cells"]] == [
        "kube-system/etcd",
        "kube-system/kube-apiserver",
    ]
    html = frames.oob_html(payload, GridFilters())
    assert html.count('class="c st ') == 2
    assert frames.oob_html(payload, GridFilters(static="hide")).count('class="c st ') == 0


def test_wall_has_static_rows_and_their_problems_among_the_exceptions():
    m = control_plane()
    snap = wall.WallAggregate(m).snapshot(m)
    assert snap["daemonsets"] == [
        ["monitoring", "agent"],
        ["kube-system", "etcd", 1],
        ["kube-system", "kube-apiserver", 1],
    ]
    assert snap["mode"] == "cells" and len(snap["cells"]) == 3
    codes = {s["code"]: s["value"] for s in wall.state_table()}
    etcd_row = dict(zip(snap["node_names"], snap["cells"][1], strict=True))
    assert codes[etcd_row["cp-3"]] == "missing" and codes[etcd_row["worker-1"]] == "absent"
    (line,) = [x for x in snap["exceptions"] if x[1] == "etcd (static)"]
    assert line[3] == ["cp-3"] and line[4] == 1 and "present on the other 2" in line[5]
    assert snap["exception_lines"] == 1 and snap["exception_cells"] == 1


def test_wall_groups_mode_tallies_static_rows_per_group(monkeypatch):
    monkeypatch.setattr(wall, "CELLS_MAX_NODES", 2)
    m = control_plane()
    snap = wall.WallAggregate(m, "pool").snapshot(m)
    assert snap["mode"] == "groups" and len(snap["tally"]) == 3
    groups = [g for g, _ in snap["groups"]]
    assert groups == ["cp", "general"]
    etcd = dict(zip(groups, snap["tally"][1], strict=True))
    # buckets: healthy, outdated, progressing, bad, idle (absent is idle, as not targeted)
    assert etcd == {"cp": [2, 0, 0, 1, 0], "general": [0, 0, 0, 0, 1]}


def test_priority_class_of_the_template_is_kept():
    ds = daemonset("agent", "monitoring")
    ds["spec"]["template"]["spec"]["priorityClassName"] = "system-node-critical"
    assert decode("DaemonSet", ds).priority_class == "system-node-critical"
    del ds["spec"]["template"]["spec"]["priorityClassName"]
    assert decode("DaemonSet", ds).priority_class == ""


@pytest.fixture(scope="module")
def demo():
    sim = Simulator.from_scenario("demo", seed=1, churn=0)
    sim.step(30)
    return sim


def test_demo_control_plane_runs_static_pods_with_one_scheduler_left_out(demo):
    pods = [json.loads(data) for _, data in demo.store.list("pods")[0]]
    mirrors = [
        p for p in pods if "kubernetes.io/config.mirror" in p["metadata"].get("annotations", {})
    ]
    assert len(mirrors) == 3 * 4 - 1
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "Node" for p in mirrors)
    records = [decode("Pod", p) for p in mirrors]
    assert all(r.mirror and not r.owner_uid for r in records)
    names = sorted(r.name.rsplit("-ip-", 1)[0] for r in records)
    assert names.count("kube-scheduler") == 2 and names.count("etcd") == 3


def test_demo_services_have_slices_that_follow_pod_readiness(demo):
    services = {json.loads(d)["metadata"]["name"] for _, d in demo.store.list("services")[0]}
    assert services == {"prometheus-node-exporter", "fluent-bit"}
    slices = [json.loads(d) for _, d in demo.store.list("endpointslices")[0]]
    exporter = next(
        s for s in slices if s["metadata"]["name"].startswith("prometheus-node-exporter")
    )
    assert (
        exporter["metadata"]["labels"]["kubernetes.io/service-name"] == "prometheus-node-exporter"
    )
    assert exporter["endpoints"] and all(e["conditions"]["ready"] for e in exporter["endpoints"])
    node_name = exporter["endpoints"][0]["nodeName"]
    demo.crash_pod("monitoring/prometheus-node-exporter", node_name)
    demo.step(30)
    slices = [json.loads(d) for _, d in demo.store.list("endpointslices")[0]]
    exporter = next(
        s for s in slices if s["metadata"]["name"].startswith("prometheus-node-exporter")
    )
    mine = [e for e in exporter["endpoints"] if e["nodeName"] == node_name]
    assert mine and not mine[0]["conditions"]["ready"]
