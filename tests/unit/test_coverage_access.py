"""Access paths (coverage/access.py): which Services select a DaemonSet, named targetPorts,
the addresses and endpoint readiness of each cell, host-port holders, and that only the
slices of daemon Services are kept."""

from __future__ import annotations

import copy

from dashboard.collect.snapshots import decode_matrix, encode_matrix
from dashboard.coverage.access import mismatch_reason, resolve_target, selects
from dashboard.coverage.matrix import ADDED, DELETED, MODIFIED
from dashboard.coverage.records import decode
from dashboard.coverage.states import State
from tests.helpers.k8s import (
    build,
    daemon_pod,
    daemonset,
    ds_key,
    endpoint,
    endpoint_slice,
    node,
    plain_pod,
    service,
    to_record,
)

NODES = {"node-a": "192.0.2.1", "node-b": "192.0.2.2"}
POD_IPS = {"node-a": "10.244.1.7", "node-b": "10.244.2.7"}


def agent(**kw):
    kw.setdefault("ports", [{"name": "metrics", "containerPort": 9100, "hostPort": 9100}])
    return daemonset("log-agent", "logging", match_labels={"app": "log-agent"}, **kw)


def world(ds=None, svc=None, ready=True):
    ds = ds or agent()
    svc = svc or service(
        "log-agent",
        "logging",
        selector={"app": "log-agent"},
        headless=True,
        ports=[{"name": "metrics", "port": 80, "targetPort": "metrics"}],
    )
    pods = {n: daemon_pod(ds, n, pod_ip=POD_IPS[n]) for n in NODES}
    es = endpoint_slice(
        svc,
        [endpoint(pods[n], POD_IPS[n], ready=ready if n == "node-b" else True) for n in NODES],
        ports=[{"name": "metrics", "port": 9100, "protocol": "TCP"}],
    )
    objs = [node(n, internal_ip=ip) for n, ip in NODES.items()]
    return ds, svc, pods, es, objs


def test_selector_is_a_subset_of_the_template_labels_in_the_same_namespace():
    ds = to_record(daemonset("a", "ns", match_labels={"app": "a", "tier": "node"}))
    assert selects(to_record(service("s", "ns", selector={"app": "a"})), ds)
    assert selects(to_record(service("s", "ns", selector={"app": "a", "tier": "node"})), ds)
    assert not selects(to_record(service("s", "ns", selector={"app": "a", "x": "y"})), ds)
    assert not selects(to_record(service("s", "other", selector={"app": "a"})), ds)
    # No selector: endpoints are managed by hand; it selects nothing.
    assert not selects(to_record(service("s", "ns", selector=None)), ds)
    assert not selects(to_record(service("s", "ns", selector={})), ds)


def test_named_target_ports_resolve_through_the_declared_container_ports():
    ds = to_record(
        agent(
            ports=[
                {"name": "metrics", "containerPort": 9100},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            ]
        )
    )
    assert resolve_target("metrics", "TCP", ds) == 9100
    assert resolve_target("dns", "UDP", ds) == 53
    assert resolve_target("dns", "TCP", ds) is None  # the name is per protocol
    assert resolve_target("nope", "TCP", ds) is None
    assert resolve_target(8080, "TCP", ds) == 8080
    # targetPort left out means "same as port".
    svc = to_record(service("s", "logging", ports=[{"name": "p", "port": 7000}]))
    assert svc.ports[0].target == 7000


def test_mismatch_names_the_selector_terms_the_template_lacks():
    ds = to_record(agent())
    svc = to_record(service("log-agent", "logging", selector={"app": "log-agnt", "tier": "x"}))
    reason = mismatch_reason(svc, ds)
    assert "app=log-agnt (the pod template has app=log-agent)" in reason
    assert "tier=x (the pod template has no label tier)" in reason


def test_cells_show_pod_and_host_addresses_and_the_endpoint_readiness():
    ds, svc, pods, es, objs = world()
    m = build([*objs, ds, *pods.values(), svc, es])
    cell = m.cells[("node-a", ds_key(ds))]
    assert cell.state is State.HEALTHY
    assert cell.in_service_endpoints is True and not cell.out_of_endpoints
    reach = m.access_of("node-a", ds_key(ds))
    assert set(reach.addresses) == {"192.0.2.1:9100", "10.244.1.7:9100"}
    # The headless Service's per-pod record: the address with dashes (no hostname set).
    assert reach.dns == ("10-244-1-7.log-agent.logging.svc.cluster.local",)
    assert m.access_of("node-a", ds_key(ds), "corp.local").dns == (
        "10-244-1-7.log-agent.logging.svc.corp.local",
    )


def test_a_running_pod_missing_from_the_endpoints_is_flagged_and_counted():
    ds, svc, pods, es, objs = world(ready=False)
    m = build([*objs, ds, *pods.values(), svc, es])
    cell = m.cells[("node-b", ds_key(ds))]
    # The pod itself reports Ready, yet the slice lists it as not ready: still a problem.
    assert cell.state is State.HEALTHY
    assert cell.in_service_endpoints is False and cell.out_of_endpoints
    assert "listed by Service logging/log-agent as not ready" in cell.access_note
    assert m.ds_counts[ds_key(ds)]["out-of-endpoints"] == 1
    # Not listed at all: the same flag, a different sentence.
    only_a = copy.deepcopy(es)
    only_a["endpoints"] = only_a["endpoints"][:1]
    delta = m.apply(MODIFIED, to_record(only_a))
    assert list(delta.cells) == [("node-b", ds_key(ds))]  # only that pod's cell moved
    cell = m.cells[("node-b", ds_key(ds))]
    assert cell.out_of_endpoints
    assert "not in the endpoints of Service logging/log-agent" in cell.access_note


def test_terminating_endpoint_is_out_and_said_so():
    ds, svc, pods, es, objs = world()
    es["endpoints"][1] = endpoint(
        pods["node-b"], POD_IPS["node-b"], ready=False, serving=True, terminating=True
    )
    m = build([*objs, ds, *pods.values(), svc, es])
    cell = m.cells[("node-b", ds_key(ds))]
    assert cell.in_service_endpoints is False
    assert "as terminating" in cell.access_note


def test_no_selecting_service_means_null_and_no_flag():
    ds, _, pods, _, objs = world()
    other = service("other", "logging", selector={"app": "someone-else"})
    m = build([*objs, ds, *pods.values(), other])
    cell = m.cells[("node-a", ds_key(ds))]
    assert cell.in_service_endpoints is None and not cell.out_of_endpoints
    # The hostPort still reaches it.
    assert m.access_of("node-a", ds_key(ds)).addresses == ("192.0.2.1:9100",)


def test_slices_of_unrelated_services_are_not_kept_whatever_the_order():
    ds, svc, pods, es, objs = world()
    unrelated = service("web", "logging", selector={"app": "web"})
    web_pod = plain_pod("web-1", "node-a", "logging")
    web_slice = endpoint_slice(unrelated, [endpoint(web_pod, "10.244.1.99")], suffix="zzzzz")
    # Slices first, the DaemonSet last: nothing can be judged until both kinds are known.
    m = build([web_slice, es, unrelated, svc, *objs, *pods.values(), ds])
    assert set(m.access.slices) == {"logging/log-agent-abcde"}
    assert set(m.access.services) == {"logging/log-agent", "logging/web"}
    # A later change of the unrelated slice is dropped too.
    m.apply(MODIFIED, to_record(web_slice))
    assert set(m.access.slices) == {"logging/log-agent-abcde"}
    assert m.cells[("node-a", ds_key(ds))].in_service_endpoints is True


def test_replace_with_a_live_source_keeps_slices_until_daemonsets_are_known():
    ds, svc, pods, es, objs = world()
    m = build(objs)
    m.replace("EndpointSlice", [to_record(es)])
    m.replace("Service", [to_record(svc)])
    assert "logging/log-agent-abcde" in m.access.slices  # DaemonSets not listed yet
    m.replace_all({"DaemonSet": [to_record(ds)], "Pod": [to_record(p) for p in pods.values()]})
    assert m.cells[("node-a", ds_key(ds))].in_service_endpoints is True


def test_service_changes_reach_every_cell_of_its_daemonset():
    ds, svc, pods, es, objs = world()
    m = build([*objs, ds, *pods.values(), svc, es])
    broken = copy.deepcopy(svc)
    broken["spec"]["selector"] = {"app": "log-agnt"}
    delta = m.apply(MODIFIED, to_record(broken))
    assert ds_key(ds) in delta.changed_daemonsets
    assert m.cells[("node-a", ds_key(ds))].in_service_endpoints is None
    assert m.access.meant_but_missing(m.daemonsets[ds_key(ds)])[0].name == "log-agent"
    # Its slices were let go with the relation.
    assert not m.access.slices
    m.apply(DELETED, to_record(broken))
    assert not m.access.services


def test_host_port_holder_is_named_and_the_row_follows_it():
    ds, _, pods, _, objs = world()
    squatter = plain_pod("squatter", "node-b", "default")
    squatter["spec"]["containers"][0]["ports"] = [{"containerPort": 9100, "hostPort": 9100}]
    m = build([*objs, ds, pods["node-a"], squatter])
    cell = m.cells[("node-b", ds_key(ds))]
    assert cell.state is State.MISSING and cell.port_conflict
    assert cell.access_note == "TCP/9100 held by pod default/squatter"
    assert m.ds_counts[ds_key(ds)]["host-port-conflict"] == 1
    assert not m.cells[("node-a", ds_key(ds))].port_conflict
    m.apply(DELETED, to_record(squatter))
    assert not m.cells[("node-b", ds_key(ds))].port_conflict


def test_two_daemonsets_wanting_one_host_port_name_each_other():
    ds, _, pods, _, objs = world()
    rival = daemonset(
        "rival", "logging", ports=[{"name": "m", "containerPort": 9100, "hostPort": 9100}]
    )
    rival_pod = daemon_pod(rival, "node-b")
    m = build([*objs, ds, rival, pods["node-a"], rival_pod])
    cell = m.cells[("node-b", ds_key(ds))]
    assert cell.port_conflict
    assert f"held by DaemonSet logging/rival (pod {rival_pod['metadata']['name']})" in (
        cell.access_note
    )


def test_host_network_makes_every_container_port_a_host_port():
    ds = to_record(agent(host_network=True, ports=[{"name": "m", "containerPort": 9100}]))
    assert [(p.port, p.protocol) for p in ds.host_ports] == [(9100, "TCP")]
    assert not to_record(agent(ports=[{"name": "m", "containerPort": 9100}])).host_ports


def test_snapshot_round_trip_keeps_access_state():
    ds, svc, pods, es, objs = world(ready=False)
    m = build([*objs, ds, *pods.values(), svc, es])
    copy_ = decode_matrix(encode_matrix(m))
    assert copy_.cells == m.cells
    assert set(copy_.access.slices) == set(m.access.slices)
    assert copy_.access.selected_by == m.access.selected_by
    # The copy's index is live: a pod it restored is found in its slice.
    assert copy_.access.cell_access(
        copy_.daemonsets[ds_key(ds)],
        copy_.nodes["node-b"],
        copy_.pods_in_cell("node-b", ds_key(ds)),
        m.cells[("node-b", ds_key(ds))].pod,
    ).out_of_endpoints


def test_endpoint_conditions_follow_the_api_defaults():
    ds, svc, pods, _, _ = world()
    raw = endpoint_slice(svc, [endpoint(pods["node-a"], "10.244.1.7", ready=None)])
    del raw["endpoints"][0]["conditions"]["serving"]
    rec = decode("EndpointSlice", raw)
    ep = rec.endpoints[0]
    assert ep.ready and ep.serving and not ep.terminating  # nil means true, true, false
    assert rec.service == "log-agent" and ep.pod == pods["node-a"]["metadata"]["name"]


def test_an_identical_redelivery_changes_nothing():
    ds, svc, pods, es, objs = world()
    m = build([*objs, ds, *pods.values(), svc, es])
    rev = m.revision
    m.apply(MODIFIED, to_record(es))
    m.apply(ADDED, to_record(svc))
    assert m.revision == rev


def test_a_status_update_that_keeps_its_host_ports_touches_only_its_own_cell(monkeypatch):
    # Readiness and restarts do not move a port claim: re-classifying every host-port
    # cell of the row for each such event made a 15,000-node churn 12× dearer.
    import dashboard.coverage.matrix as matrix_mod

    classified: list[str] = []
    real_classify = matrix_mod.classify

    def counting_classify(elig, pods, ds, node, current_hash, now):
        classified.append(ds.name)
        return real_classify(elig, pods, ds, node, current_hash, now)

    ds, _, pods, _, objs = world()
    other = daemonset(
        "other", "logging", ports=[{"name": "m", "containerPort": 9200, "hostPort": 9200}]
    )
    other_pod = daemon_pod(other, "node-a")
    m = build([*objs, ds, other, pods["node-a"], other_pod])
    flipped = copy.deepcopy(pods["node-a"])
    flipped["metadata"]["resourceVersion"] = "5001"
    flipped["status"]["containerStatuses"][0]["restartCount"] = 3
    monkeypatch.setattr(matrix_mod, "classify", counting_classify)
    delta = m.apply(MODIFIED, to_record(flipped))
    assert classified == ["log-agent"]  # not the other host-port DaemonSet's cell
    assert set(delta.cells) == {("node-a", ds_key(ds))}
    assert m.cells[("node-a", ds_key(ds))].restarts == 3
    # A claim that does change still moves the row: a squatter on the other's port.
    squatter = plain_pod("squatter", "node-a", "default")
    squatter["spec"]["containers"][0]["ports"] = [{"containerPort": 9200, "hostPort": 9200}]
    m.apply(ADDED, to_record(squatter))
    assert m.cells[("node-a", ds_key(other))].port_conflict
    m.apply(DELETED, to_record(squatter))
    assert not m.cells[("node-a", ds_key(other))].port_conflict
