"""One row per targeting rule of docs/cells.md: (should run, may continue, reason)."""

from __future__ import annotations

import pytest

from dashboard.coverage.eligibility import evaluate, tolerates
from dashboard.coverage.records import decode
from dashboard.coverage.wire import Taint, Toleration
from tests.helpers.k8s import daemonset, node, notready_taints, req, taint, term, toleration

LABELS = {
    "kubernetes.io/os": "linux",
    "node.kubernetes.io/instance-type": "m5.large",
    "topology.kubernetes.io/zone": "eu-west-1a",
    "gpu-count": "4",
    "build": "v7",
}


def _eval(ds_kwargs: dict, node_kwargs: dict, node_name: str = "worker-1"):
    ds = decode("DaemonSet", daemonset("agent", **ds_kwargs))
    n = decode("Node", node(node_name, **{"labels": LABELS, **node_kwargs}))
    return evaluate(ds, n)


ELIGIBLE = (True, True)
EXCLUDED = (False, False)
KEPT = (False, True)

# (id, DaemonSet kwargs, Node kwargs, (should_run, may_continue), reason substring or "")
ROWS = [
    ("template-nodeName-same", {"node_name": "worker-1"}, {}, ELIGIBLE, ""),
    (
        "template-nodeName-other",
        {"node_name": "worker-9"},
        {},
        EXCLUDED,
        "template nodeName pins worker-9",
    ),
    ("nodeSelector-match", {"node_selector": {"kubernetes.io/os": "linux"}}, {}, ELIGIBLE, ""),
    (
        "nodeSelector-mismatch",
        {"node_selector": {"kubernetes.io/os": "windows"}},
        {},
        EXCLUDED,
        "nodeSelector kubernetes.io/os=windows not matched (node has kubernetes.io/os=linux)",
    ),
    (
        "nodeSelector-label-absent",
        {"node_selector": {"disktype": "ssd"}},
        {},
        EXCLUDED,
        "nodeSelector disktype=ssd not matched (node has no disktype label)",
    ),
    (
        "nodeSelector-empty-value-needs-the-label",
        {"node_selector": {"node-role.kubernetes.io/worker": ""}},
        {},
        EXCLUDED,
        "nodeSelector node-role.kubernetes.io/worker= not matched",
    ),
    (
        "affinity-In-match",
        {
            "affinity_terms": [
                term(req("node.kubernetes.io/instance-type", "In", "c5.xlarge", "m5.large"))
            ]
        },
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-In-mismatch",
        {"affinity_terms": [term(req("node.kubernetes.io/instance-type", "In", "c5.xlarge"))]},
        {},
        EXCLUDED,
        "required node affinity not matched: node.kubernetes.io/instance-type in (c5.xlarge) "
        "(node has node.kubernetes.io/instance-type=m5.large)",
    ),
    (
        "affinity-In-label-absent",
        {"affinity_terms": [term(req("accelerator", "In", "nvidia"))]},
        {},
        EXCLUDED,
        "accelerator in (nvidia) (node has no accelerator label)",
    ),
    (
        "affinity-NotIn-match",
        {"affinity_terms": [term(req("kubernetes.io/os", "NotIn", "windows"))]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-NotIn-absent-label-matches",
        {"affinity_terms": [term(req("eks.amazonaws.com/compute-type", "NotIn", "fargate"))]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-NotIn-mismatch",
        {"affinity_terms": [term(req("topology.kubernetes.io/zone", "NotIn", "eu-west-1a"))]},
        {},
        EXCLUDED,
        "topology.kubernetes.io/zone notin (eu-west-1a)",
    ),
    (
        "affinity-Exists-match",
        {"affinity_terms": [term(req("gpu-count", "Exists"))]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-Exists-mismatch",
        {"affinity_terms": [term(req("nvidia.com/gpu.present", "Exists"))]},
        {},
        EXCLUDED,
        "required node affinity not matched: nvidia.com/gpu.present (node has no nvidia.com/gpu.present label)",
    ),
    (
        "affinity-DoesNotExist-match",
        {"affinity_terms": [term(req("node-role.kubernetes.io/control-plane", "DoesNotExist"))]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-DoesNotExist-mismatch",
        {"affinity_terms": [term(req("gpu-count", "DoesNotExist"))]},
        {},
        EXCLUDED,
        "!gpu-count (node has gpu-count=4)",
    ),
    (
        "affinity-Gt-match",
        {"affinity_terms": [term(req("gpu-count", "Gt", "2"))]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-Gt-equal-is-not-greater",
        {"affinity_terms": [term(req("gpu-count", "Gt", "4"))]},
        {},
        EXCLUDED,
        "gpu-count > 4 (node has gpu-count=4)",
    ),
    (
        "affinity-Lt-match",
        {"affinity_terms": [term(req("gpu-count", "Lt", "8"))]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "affinity-Lt-mismatch",
        {"affinity_terms": [term(req("gpu-count", "Lt", "1"))]},
        {},
        EXCLUDED,
        "gpu-count < 1",
    ),
    (
        "affinity-Gt-non-integer-label",
        {"affinity_terms": [term(req("build", "Gt", "1"))]},
        {},
        EXCLUDED,
        "build > 1 (node has build=v7)",
    ),
    (
        "affinity-Lt-label-absent",
        {"affinity_terms": [term(req("cores", "Lt", "64"))]},
        {},
        EXCLUDED,
        "cores < 64 (node has no cores label)",
    ),
    (
        "matchFields-name-In-match",
        {"affinity_terms": [term(fields=[req("metadata.name", "In", "worker-1")])]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        # nodeSelectorRequirementsAsFieldSelector: In/NotIn take exactly one value.
        "matchFields-two-values-is-an-invalid-term",
        {"affinity_terms": [term(fields=[req("metadata.name", "In", "worker-0", "worker-1")])]},
        {},
        EXCLUDED,
        "invalid term (metadata.name: matchFields In needs exactly one value) matches no node",
    ),
    (
        "matchFields-name-In-mismatch",
        {"affinity_terms": [term(fields=[req("metadata.name", "In", "worker-2")])]},
        {},
        EXCLUDED,
        "metadata.name in (worker-2) (node has metadata.name=worker-1)",
    ),
    (
        "matchFields-name-NotIn-match",
        {"affinity_terms": [term(fields=[req("metadata.name", "NotIn", "worker-2")])]},
        {},
        ELIGIBLE,
        "",
    ),
    (
        "matchFields-name-NotIn-mismatch",
        {"affinity_terms": [term(fields=[req("metadata.name", "NotIn", "worker-1")])]},
        {},
        EXCLUDED,
        "metadata.name notin (worker-1)",
    ),
    (
        "terms-are-ORed",
        {
            "affinity_terms": [
                term(req("kubernetes.io/os", "In", "windows")),
                term(req("topology.kubernetes.io/zone", "In", "eu-west-1a")),
            ]
        },
        {},
        ELIGIBLE,
        "",
    ),
    (
        "requirements-in-a-term-are-ANDed",
        {
            "affinity_terms": [
                term(req("kubernetes.io/os", "In", "linux"), req("gpu-count", "Gt", "10")),
            ]
        },
        {},
        EXCLUDED,
        "gpu-count > 10",
    ),
    (
        "no-term-matches-names-each",
        {
            "affinity_terms": [
                term(req("kubernetes.io/os", "In", "windows")),
                term(req("kubernetes.io/arch", "In", "arm64")),
            ]
        },
        {},
        EXCLUDED,
        "kubernetes.io/os in (windows) (node has kubernetes.io/os=linux) OR "
        "kubernetes.io/arch in (arm64) (node has kubernetes.io/arch=amd64)",
    ),
    ("empty-term-matches-nothing", {"affinity_terms": [{}]}, {}, EXCLUDED, "(empty term)"),
    (
        "no-terms-matches-nothing",
        {"affinity_terms": []},
        {},
        EXCLUDED,
        "required node affinity has no terms (matches no node)",
    ),
    (
        "NoSchedule-untolerated-keeps",
        {},
        {"taints": [taint("dedicated", "NoSchedule", "gpu")]},
        KEPT,
        "taint dedicated=gpu:NoSchedule not tolerated",
    ),
    (
        "NoExecute-untolerated-evicts",
        {},
        {"taints": [taint("dedicated", "NoExecute", "gpu")]},
        EXCLUDED,
        "taint dedicated=gpu:NoExecute not tolerated",
    ),
    (
        "NoExecute-named-over-NoSchedule",
        {},
        {"taints": [taint("a", "NoSchedule"), taint("b", "NoExecute")]},
        EXCLUDED,
        "taint b:NoExecute not tolerated",
    ),
    (
        "PreferNoSchedule-ignored",
        {},
        {"taints": [taint("spot", "PreferNoSchedule", "true")]},
        ELIGIBLE,
        "",
    ),
    (
        "toleration-Exists-empty-key-tolerates-all",
        {"tolerations": [toleration(operator="Exists")]},
        {"taints": [taint("dedicated", "NoExecute", "gpu"), taint("x", "NoSchedule")]},
        ELIGIBLE,
        "",
    ),
    (
        "toleration-Equal-with-value",
        {"tolerations": [toleration("dedicated", "Equal", "gpu", "NoSchedule")]},
        {"taints": [taint("dedicated", "NoSchedule", "gpu")]},
        ELIGIBLE,
        "",
    ),
    (
        "toleration-Equal-wrong-value",
        {"tolerations": [toleration("dedicated", "Equal", "infra", "NoSchedule")]},
        {"taints": [taint("dedicated", "NoSchedule", "gpu")]},
        KEPT,
        "taint dedicated=gpu:NoSchedule not tolerated",
    ),
    (
        "toleration-operator-omitted-means-Equal",
        {"tolerations": [toleration("dedicated", None, "gpu")]},
        {"taints": [taint("dedicated", "NoExecute", "gpu")]},
        ELIGIBLE,
        "",
    ),
    (
        "toleration-Exists-key-any-value",
        {"tolerations": [toleration("dedicated", "Exists")]},
        {"taints": [taint("dedicated", "NoExecute", "gpu")]},
        ELIGIBLE,
        "",
    ),
    (
        "toleration-without-effect-matches-every-effect",
        {"tolerations": [toleration("dedicated", "Equal", "gpu")]},
        {
            "taints": [
                taint("dedicated", "NoSchedule", "gpu"),
                taint("dedicated", "NoExecute", "gpu"),
            ]
        },
        ELIGIBLE,
        "",
    ),
    (
        "toleration-wrong-effect",
        {"tolerations": [toleration("dedicated", "Exists", effect="NoSchedule")]},
        {"taints": [taint("dedicated", "NoExecute", "gpu")]},
        EXCLUDED,
        "taint dedicated=gpu:NoExecute not tolerated",
    ),
    (
        "auto-toleration-cordoned",
        {},
        {"unschedulable": True, "taints": [taint("node.kubernetes.io/unschedulable")]},
        ELIGIBLE,
        "",
    ),
    (
        "auto-toleration-pressure",
        {},
        {
            "pressures": ["MemoryPressure", "DiskPressure", "PIDPressure"],
            "taints": [
                taint("node.kubernetes.io/memory-pressure"),
                taint("node.kubernetes.io/disk-pressure"),
                taint("node.kubernetes.io/pid-pressure"),
            ],
        },
        ELIGIBLE,
        "",
    ),
    (
        "network-unavailable-not-tolerated-without-hostNetwork",
        {},
        {"network_unavailable": True, "taints": [taint("node.kubernetes.io/network-unavailable")]},
        KEPT,
        "taint node.kubernetes.io/network-unavailable:NoSchedule not tolerated",
    ),
    (
        "network-unavailable-tolerated-with-hostNetwork",
        {"host_network": True},
        {"network_unavailable": True, "taints": [taint("node.kubernetes.io/network-unavailable")]},
        ELIGIBLE,
        "",
    ),
    (
        "notready-node-excluded-but-kept",
        {},
        {"ready": "False", "taints": notready_taints()},
        KEPT,
        "taint node.kubernetes.io/not-ready:NoSchedule not tolerated",
    ),
    (
        "unreachable-node-excluded-but-kept",
        {},
        {"ready": "Unknown", "taints": notready_taints("node.kubernetes.io/unreachable")},
        KEPT,
        "taint node.kubernetes.io/unreachable:NoSchedule not tolerated",
    ),
    (
        "notready-node-eligible-when-DS-tolerates-NoSchedule",
        {
            "tolerations": [
                toleration("node.kubernetes.io/not-ready", "Exists", effect="NoSchedule")
            ]
        },
        {"ready": "False", "taints": notready_taints()},
        ELIGIBLE,
        "",
    ),
    (
        "notready-without-taints-is-eligible",
        {},
        {"ready": "False"},
        ELIGIBLE,
        "",
    ),
    (
        "selector-checked-before-taints",
        {"node_selector": {"kubernetes.io/os": "windows"}},
        {"taints": [taint("dedicated", "NoSchedule", "gpu")]},
        EXCLUDED,
        "nodeSelector kubernetes.io/os=windows",
    ),
]


@pytest.mark.parametrize(
    ("ds_kwargs", "node_kwargs", "expected", "reason"),
    [r[1:] for r in ROWS],
    ids=[r[0] for r in ROWS],
)
def test_eligibility_rule(ds_kwargs, node_kwargs, expected, reason):
    elig = _eval(ds_kwargs, node_kwargs)
    assert (elig.should_run, elig.may_continue) == expected
    if expected == ELIGIBLE:
        assert elig.reason == ""
    else:
        assert reason in elig.reason


def test_many_values_are_shortened_in_the_reason():
    values = [f"c{i}.xlarge" for i in range(10)]
    elig = _eval(
        {"affinity_terms": [term(req("node.kubernetes.io/instance-type", "In", *values))]}, {}
    )
    assert (
        "node.kubernetes.io/instance-type in (c0.xlarge,c1.xlarge,c2.xlarge,… (10 values))"
        in elig.reason
    )


def test_multiple_untolerated_taints_are_all_named():
    elig = _eval({}, {"taints": [taint("a", "NoSchedule", "1"), taint("b", "NoSchedule")]})
    assert (elig.should_run, elig.may_continue) == KEPT
    assert elig.reason == "taints a=1:NoSchedule, b:NoSchedule not tolerated"


@pytest.mark.parametrize(
    ("tol", "tnt", "expected"),
    [
        (Toleration("", "Exists", "", ""), Taint("k", "v", "NoExecute"), True),
        (Toleration("", "Exists", "", "NoSchedule"), Taint("k", "v", "NoExecute"), False),
        (Toleration("k", "Exists", "", ""), Taint("k", "v", "NoSchedule"), True),
        (Toleration("k", "", "v", ""), Taint("k", "v", "NoSchedule"), True),
        (Toleration("k", "Equal", "", ""), Taint("k", "", "NoSchedule"), True),
        (Toleration("k", "Equal", "", ""), Taint("k", "v", "NoSchedule"), False),
        (Toleration("other", "Exists", "", ""), Taint("k", "v", "NoSchedule"), False),
        # An empty key with Equal is not a wildcard.
        (Toleration("", "Equal", "", ""), Taint("k", "", "NoSchedule"), False),
    ],
)
def test_tolerates_matrix(tol, tnt, expected):
    assert tolerates([tol], tnt) is expected


# --------------------------------------------------------------------------- Gt / Lt integers
# The controller parses both sides with Go's strconv.ParseInt(v, 10, 64) (labels.Requirement
# .Matches); a rule value that fails it, or that is no valid label value, fails
# labels.NewRequirement, and the whole term then matches no node (nodeaffinity's
# LazyErrorNodeSelector skips it). Python's int() accepts "1_0", " 5", "٣" and any size.


@pytest.mark.parametrize(
    ("label", "matches"),
    [
        ("11", True),
        ("0011", True),  # leading zeros are fine for ParseInt
        ("+11", True),  # ParseInt accepts a sign (a node label cannot carry one, a snapshot can)
        ("1_1", False),  # int() accepts underscores, ParseInt (base 10) does not
        (" 11", False),
        ("11 ", False),
        ("١١", False),  # Arabic-Indic digits: int() reads 11
        ("9223372036854775807", True),  # int64 max
        ("9223372036854775808", False),  # one past: ParseInt reports a range error
        ("-9223372036854775809", False),
        ("", False),
        ("+", False),
        ("1e3", False),
    ],
)
def test_gt_parses_the_node_label_like_go(label, matches):
    ds = decode("DaemonSet", daemonset("agent", affinity_terms=[term(req("gen", "Gt", "10"))]))
    n = decode("Node", node("worker-1", labels={"gen": label}))
    assert evaluate(ds, n).should_run is matches


@pytest.mark.parametrize(
    "value",
    [
        "1_0",
        " 5",
        "5 ",
        "9223372036854775808",
        "-9223372036854775809",
        "+5",  # ParseInt reads it, but it is no valid label value: NewRequirement refuses it
        "-0",
        "-5",
        "five",
        "",
    ],
)
def test_a_rule_value_go_refuses_makes_the_whole_term_unmatched(value):
    # The broken Gt sits beside a requirement the node meets, in one term; a second,
    # valid term still matches on its own.
    broken = term(req("kubernetes.io/os", "In", "linux"), req("gen", "Lt", value))
    ds = decode("DaemonSet", daemonset("agent", affinity_terms=[broken]))
    n = decode("Node", node("worker-1", labels={"kubernetes.io/os": "linux", "gen": "-100"}))
    verdict = evaluate(ds, n)
    assert verdict.should_run is False
    assert "invalid term (gen: Lt value" in verdict.reason or "invalid term (gen:" in verdict.reason
    assert "matches no node" in verdict.reason

    ds2 = decode(
        "DaemonSet",
        daemonset("agent", affinity_terms=[broken, term(req("kubernetes.io/os", "Exists"))]),
    )
    assert evaluate(ds2, n).should_run is True


@pytest.mark.parametrize(
    ("value", "label", "op", "matches"),
    [
        ("10", "11", "Gt", True),
        ("10", "10", "Gt", False),
        ("10", "9", "Lt", True),
        ("0", "-0", "Lt", False),  # a label "-0" is 0: not below 0
        ("0", "-1", "Lt", True),
        ("9223372036854775806", "9223372036854775807", "Gt", True),
    ],
)
def test_gt_lt_compare_int64_values(value, label, op, matches):
    ds = decode("DaemonSet", daemonset("agent", affinity_terms=[term(req("gen", op, value))]))
    n = decode("Node", node("worker-1", labels={"gen": label}))
    assert evaluate(ds, n).should_run is matches


def test_parse_int64_is_go_strconv_parseint():
    from dashboard.coverage.affinity import parse_int64

    assert parse_int64("-0") == 0
    assert parse_int64("+5") == 5
    assert parse_int64("007") == 7
    assert parse_int64("-9223372036854775808") == -(2**63)
    for bad in ("1_0", " 1", "1 ", "9223372036854775808", "0x10", "1.0", "", "-", "²"):
        assert parse_int64(bad) is None, bad
