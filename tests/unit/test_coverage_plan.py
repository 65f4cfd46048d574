"""The placement preview: plan text parsing and its errors (coverage/plan_input.py), the
prediction (coverage/plan.py) and the CLI's --plan (dashboard/cli/main.py). The prediction
is checked against the real controller in tests/e2e/test_plan.py; these pin the rules."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
import yaml

from dashboard.cli.main import CoverageError, build_parser, coverage
from dashboard.coverage.plan import plan, template_changed
from dashboard.coverage.plan_input import MAX_PLAN_BYTES, PlanError, parse_patch, parse_plan
from tests.helpers.k8s import (
    controller_revision,
    daemon_pod,
    daemonset,
    node,
    plain_pod,
    taint,
    to_record,
    toleration,
    v1_list,
)


def manifest(name: str = "agent", namespace: str = "kube-system", **spec) -> dict:
    pod_spec = {"containers": [{"name": name, "image": f"registry.example/{name}:1"}], **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def with_allocatable(n: dict, cpu: str = "2", pods: str = "110") -> dict:
    n["status"]["allocatable"] = {"cpu": cpu, "memory": "4Gi", "pods": pods}
    return n


# ------------------------------------------------------------------------ parsing


def test_yaml_json_multi_document_and_lists_are_read():
    text = (
        yaml.safe_dump(manifest("one"))
        + "---\n"
        + json.dumps(manifest("two"))
        + "\n---\n# comments only\n---\n"
        + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [manifest("three")]})
    )
    got = parse_plan(text)
    assert [m.daemonset.key for m in got.manifests] == [
        "kube-system/one",
        "kube-system/two",
        "kube-system/three",
    ]


def test_namespace_defaults_to_the_option_then_default():
    m = manifest()
    del m["metadata"]["namespace"]
    assert parse_plan(yaml.safe_dump(m)).manifests[0].daemonset.namespace == "default"
    assert parse_plan(yaml.safe_dump(m), "ops").manifests[0].daemonset.namespace == "ops"


def test_a_yaml_error_names_the_document_line_and_column_of_the_whole_text():
    text = yaml.safe_dump(manifest("one")) + "---\nkind: DaemonSet\nmetadata: {name: x\nspec: 1\n"
    first = len(yaml.safe_dump(manifest("one")).splitlines()) + 1
    with pytest.raises(PlanError) as err:
        parse_plan(text)
    message = str(err.value)
    assert message.startswith(f"document 2 (line {first}): invalid YAML at line {first + 3}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
         "Deployment web is not a DaemonSet"),
        ({"kind": "DaemonSet", "metadata": {}}, "without a valid metadata.name"),
        ({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet", "metadata": {"name": "x"}},
         "apiVersion 'extensions/v1beta1', expected apps/v1"),
        ({"kind": "DaemonSet", "metadata": {"name": "x"}, "spec": {}},
         "spec.template is required"),
        (["a", "list"], "expected a DaemonSet manifest (a mapping), got a list"),
    ],
)  # fmt: skip
def test_what_is_not_a_usable_daemonset_is_one_line(doc, says):
    with pytest.raises(PlanError, match=re.escape(says)) as err:
        parse_plan(yaml.safe_dump(doc))
    assert str(err.value).startswith("document 1 (line 1): ")


def test_a_selector_that_does_not_select_the_template_is_refused_as_the_api_server_does():
    m = manifest()
    m["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(PlanError, match="does not match the template's labels"):
        parse_plan(yaml.safe_dump(m))


def test_bad_field_types_are_named():
    m = manifest()
    m["spec"]["template"]["spec"]["tolerations"] = "everything"
    with pytest.raises(PlanError, match=r"DaemonSet agent: Expected `array`"):
        parse_plan(yaml.safe_dump(m))


def test_size_aliases_and_emptiness_are_bounded():
    with pytest.raises(PlanError, match="a plan may be at most 512 KiB"):
        parse_plan("#" * (MAX_PLAN_BYTES + 1))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    with pytest.raises(PlanError, match="too large once its YAML aliases are expanded"):
        parse_plan(bomb)
    with pytest.raises(PlanError, match="holds no DaemonSet manifest and no node patch"):
        parse_plan("# nothing\n---\n")
    with pytest.raises(PlanError, match="planned more than once"):
        parse_plan(yaml.safe_dump(manifest()) + "---\n" + yaml.safe_dump(manifest()))
    with pytest.raises(PlanError, match=r"not UTF-8 text \(byte 0\)"):
        parse_plan(b"\xff\xfe")


def test_patch_lines():
    p = parse_patch("taint pool=gpu dedicated=gpu:NoSchedule")
    assert (p.verb, p.key, p.value, p.effect) == ("taint", "dedicated", "gpu", "NoSchedule")
    assert p.matches("n", {"pool": "gpu"}) and not p.matches("n", {"pool": "web"})
    assert parse_patch("untaint * dedicated").effect == ""
    assert parse_patch("label node/a,b spot-").value is None
    assert parse_patch("label zone in (a, b) spot=yes").matches("n", {"zone": "b"})
    got = parse_plan("label pool=gpu x=y\n  # a comment\ntaint * k:NoExecute  # why\n")
    assert [p.describe() for p in got.patches] == ["label pool=gpu x=y", "taint * k:NoExecute"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("taint pool=gpu dedicated=gpu", "a taint needs an effect"),
        ("taint pool=gpu dedicated=gpu:Sometimes", "unknown taint effect 'Sometimes'"),
        ("label pool=gpu", "expected `label NODES key=value`"),
        ("untaint pool=gpu k=v:NoSchedule", "untaint takes a key and an optional effect"),
        ("label pool=(gpu x=y", "cannot parse label selector"),
        ("label pool=gpu bad/key/x=y", "invalid key"),
    ],
)
def test_patch_errors_name_the_line(line, says):
    with pytest.raises(PlanError, match=says) as err:
        parse_plan("\n\n" + line + "\n")
    assert str(err.value).startswith("line 3: ")


# --------------------------------------------------------------------- prediction


def _cluster(ds: dict | None = None, *extra: dict) -> list:
    nodes = [
        with_allocatable(node("web-1", labels={"pool": "web"})),
        with_allocatable(node("web-2", labels={"pool": "web"}), cpu="100m"),
        with_allocatable(
            node("gpu-1", labels={"pool": "gpu"}, taints=[taint("gpu", "NoSchedule", "yes")])
        ),
    ]
    objs = [*nodes, *extra]
    if ds is not None:
        objs += [ds, controller_revision(ds, 1, "rev1hash")]
    return [to_record(o) for o in objs]


def test_a_new_daemonset_targets_by_its_rules_and_does_not_fit_where_cpu_is_short():
    m = manifest()
    m["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    result = plan(_cluster(), parse_plan(yaml.safe_dump(m)))
    (p,) = result.plans
    assert p.change == "new"
    assert [n.node for n in p.targets] == ["web-1", "web-2"]
    assert [n.node for n in p.starts_on] == ["web-1", "web-2"]
    (unfit,) = p.would_not_fit
    assert unfit.node == "web-2"
    assert unfit.rule.startswith("Insufficient cpu: needs 500m, 100m free of 100m allocatable")
    (excluded,) = p.not_targeted
    assert excluded.rule == "taint gpu=yes:NoSchedule not tolerated"
    # The document as if applied has the planned column.
    assert "kube-system/agent" in result.after.daemonsets


def test_a_host_port_held_by_another_pod_does_not_fit():
    m = manifest()
    m["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 9100, "hostPort": 9100}
    ]
    holder = plain_pod("exporter", "web-1")
    holder["spec"]["containers"][0]["ports"] = [{"containerPort": 9100, "hostPort": 9100}]
    (p,) = plan(_cluster(None, holder), parse_plan(yaml.safe_dump(m))).plans
    assert [n.node for n in p.would_not_fit] == ["web-1"]
    assert "host port TCP/9100 held by pod default/exporter" in p.would_not_fit[0].rule


def _existing(strategy: str = "RollingUpdate") -> tuple[dict, list]:
    ds = daemonset(
        "agent",
        match_labels={"app": "agent"},
        tolerations=[toleration("gpu", operator="Exists")],
        strategy=strategy,
        image="registry.example/agent:1",
    )
    pods = [daemon_pod(ds, n) for n in ("web-1", "web-2", "gpu-1")]
    return ds, pods


def test_a_template_change_under_rolling_update_replaces_and_a_dropped_toleration_stops():
    ds, pods = _existing()
    records = _cluster(ds, *pods)
    m = manifest()
    m["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/agent:2"
    (p,) = plan(records, parse_plan(yaml.safe_dump(m))).plans
    assert p.change == "template"
    assert [n.node for n in p.replaced_on] == ["web-1", "web-2"]
    # The rolling update deletes the old pod; NoSchedule keeps a new one off the node.
    assert [n.node for n in p.stops_on] == ["gpu-1"]
    assert "RollingUpdate deletes the old pod" in p.stops_on[0].rule


def test_under_on_delete_old_pods_stay_and_a_no_schedule_node_keeps_its_pod():
    ds, pods = _existing("OnDelete")
    m = manifest()
    m["spec"]["updateStrategy"] = {"type": "OnDelete"}
    m["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/agent:2"
    (p,) = plan(_cluster(ds, *pods), parse_plan(yaml.safe_dump(m))).plans
    assert [n.node for n in p.outdated_on] == ["web-1", "web-2"]
    assert [n.node for n in p.kept_on] == ["gpu-1"]
    assert not p.stops_on and not p.replaced_on


def test_node_patches_say_which_daemons_leave():
    ds, pods = _existing()
    records = _cluster(ds, *pods)
    result = plan(records, parse_plan("taint pool=web k=v:NoExecute\nlabel node/gpu-1 pool=x\n"))
    (p,) = result.plans
    assert p.change == "nodes"
    assert [n.node for n in p.stops_on] == ["web-1", "web-2"]
    assert p.stops_on[0].rule == "its pod is deleted: taint k=v:NoExecute not tolerated"
    assert [n.node for n in p.targets] == ["gpu-1"]
    assert result.patched_nodes == {
        "web-1": ["taint pool=web k=v:NoExecute"],
        "web-2": ["taint pool=web k=v:NoExecute"],
        "gpu-1": ["label node/gpu-1 pool=x"],
    }
    # A patch that moves nothing lists no DaemonSet.
    assert plan(records, parse_plan("label * unrelated=yes\n")).plans == []


def test_the_live_template_with_server_defaults_is_not_a_change():
    ds, _ = _existing()
    live = to_record(ds)
    m = manifest(tolerations=[{"key": "gpu", "operator": "Exists"}])
    m["spec"]["template"]["metadata"]["labels"] = {"app": "agent"}
    parsed = parse_plan(yaml.safe_dump(m)).manifests[0]
    stored = ds["spec"]["template"]  # carries dnsPolicy, schedulerName, … and `resources: {}`
    assert not template_changed(parsed, live, stored)
    changed = manifest(tolerations=[{"key": "gpu", "operator": "Exists"}])
    changed["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    assert template_changed(parse_plan(yaml.safe_dump(changed)).manifests[0], live, stored)
    relabelled = manifest(tolerations=[{"key": "gpu", "operator": "Exists"}])
    stored_more = {**stored, "metadata": {"labels": {"app": "agent", "extra": "1"}}}
    assert template_changed(parse_plan(yaml.safe_dump(relabelled)).manifests[0], live, stored_more)


# ---------------------------------------------------------------------------- CLI


def _run(tmp_path, items: list, text: str, *more: str) -> tuple[int, str, str]:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(v1_list(items)))
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    args = build_parser().parse_args(
        ["coverage", "--snapshot", str(snap), "--plan", str(path), *more]
    )
    out, err = StringIO(), StringIO()
    return coverage(args, out, err), out.getvalue(), err.getvalue()


def test_cli_json_has_a_plan_per_daemonset_and_predicted_cells(tmp_path):
    ds, pods = _existing()
    items = [with_allocatable(node("web-1", labels={"pool": "web"})), ds, *pods[:1]]
    items.append(controller_revision(ds, 1, "rev1hash"))
    m = manifest()
    m["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/agent:2"
    rc, out, _ = _run(tmp_path, items, yaml.safe_dump(m) + "---\n" + yaml.safe_dump(manifest("new")),
                      "-o", "json")  # fmt: skip
    assert rc == 0
    doc = json.loads(out)
    plans = {p["daemonset"]: p for p in doc["plan"]}
    assert plans["kube-system/agent"]["change"] == "template"
    assert plans["kube-system/new"]["change"] == "new"
    assert plans["kube-system/agent"]["counts"]["replaced_on"] == 1
    cell = next(c for c in doc["cells"] if c["daemonset"] == "kube-system/new")
    assert cell["predicted"]["plan"] == "starts_on"
    assert {d["name"]: d["planned"] for d in doc["daemonsets"]} == {"agent": True, "new": True}


def test_cli_table_lists_the_nodes_that_change(tmp_path):
    ds, pods = _existing()
    items = [node("web-1", labels={"pool": "web"}), ds, *pods[:1]]
    rc, out, _ = _run(tmp_path, items, "taint node/web-1 k:NoExecute\n")
    assert rc == 0
    assert "NODE web-1: taint node/web-1 k:NoExecute" in out
    assert "PLAN kube-system/agent (nodes, RollingUpdate): targets 0 nodes" in out
    assert "stops on      web-1  its pod is deleted: taint k:NoExecute not tolerated" in out


def test_cli_plan_errors_are_one_line_and_fail_under_is_refused(tmp_path):
    with pytest.raises(CoverageError, match=r"plan.yaml: document 1 \(line 1\): Deployment"):
        _run(tmp_path, [], "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: web}\n")
    with pytest.raises(CoverageError, match="--fail-under judges a cluster's pods"):
        _run(tmp_path, [], yaml.safe_dump(manifest()), "--fail-under", "90")


def test_node_patches_do_not_list_a_daemonset_they_do_not_move():
    """A pod already kept on a node it no longer targets (misscheduled today) is no news
    to a patch elsewhere."""
    ds, pods = _existing()
    ds["spec"]["template"]["spec"]["tolerations"] = []  # gpu-1's pod is misscheduled today
    records = _cluster(ds, *pods)
    assert plan(records, parse_plan("label node/web-1 x=y\n")).plans == []
    (p,) = plan(records, parse_plan("taint node/web-1 k:NoExecute\n")).plans
    assert [n.node for n in p.stops_on] == ["web-1"]
    assert [n.node for n in p.kept_on] == ["gpu-1"]


def test_a_surge_pod_waits_for_the_host_port_its_old_pod_holds():
    ds = daemonset(
        "agent",
        match_labels={"app": "agent"},
        image="registry.example/agent:1",
        max_surge=1,
        max_unavailable=0,
        ports=[{"containerPort": 9100, "hostPort": 9100}],
    )
    records = _cluster(ds, daemon_pod(ds, "web-1"))
    m = manifest()
    m["spec"]["updateStrategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    container = m["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "registry.example/agent:2"
    container["ports"] = [{"containerPort": 9100, "hostPort": 9100}]
    (p,) = plan(records, parse_plan(yaml.safe_dump(m))).plans
    assert [n.node for n in p.replaced_on] == ["web-1"]
    (unfit,) = [n for n in p.would_not_fit if n.node == "web-1"]
    assert "TCP/9100 held by DaemonSet kube-system/agent" in unfit.rule
    assert "maxSurge" in unfit.rule
    # Without surge the old pod goes first: its port is free for the new one.
    m["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    (p,) = plan(records, parse_plan(yaml.safe_dump(m))).plans
    assert not [n for n in p.would_not_fit if n.node == "web-1"]


def test_cli_plan_and_snapshot_cannot_both_read_stdin():
    args = build_parser().parse_args(["coverage", "--snapshot", "-", "--plan", "-"])
    with pytest.raises(CoverageError, match="cannot both read stdin"):
        coverage(args, StringIO(), StringIO())
