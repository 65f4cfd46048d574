"""The shortcuts of the pod hot path (bench/RESULTS.md, *Initial sync from bytes, with
events and per-node requests*) answer exactly what the general code answers."""

from __future__ import annotations

import copy
import inspect
import re

import msgspec
import pytest

from dashboard.coverage import capacity, records, wire
from dashboard.coverage.records import DecodeError, Pod, decode, decode_event
from tests.helpers.k8s import daemon_pod, daemonset, load_fixture


def test_pod_from_wire_passes_every_field_in_the_order_of_the_record():
    # The record is built positionally: a field inserted in Pod must be inserted there too.
    source = inspect.getsource(records.pod_from_wire)
    call = source[source.index("return Pod(") :]
    assert re.findall(r"#\s*(\w+)\s*$", call, re.MULTILINE) == list(Pod.__struct_fields__)


def _line(event_type: str, obj: object) -> bytes:
    return msgspec.json.encode({"type": event_type, "object": obj})


def _general(line: bytes, kind: str) -> records.WatchEvent:
    """What decode_event answered before it had a one-pass decoder per kind."""
    typed, records._typed_events = records._typed_events, {}
    try:
        return decode_event(line, kind)
    finally:
        records._typed_events = typed


AGENT = daemonset("agent")
LINES = [
    _line("ADDED", daemon_pod(AGENT, "node-a")),
    _line("MODIFIED", load_fixture("pod-daemonset-crashloopbackoff-eks.DERIVED.json")),
    _line("DELETED", load_fixture("pod-init-crashloopbackoff-pending.json")),
    _line("MODIFIED", {"metadata": {"namespace": "x"}}),  # no name: skipped, as before
    _line("MODIFIED", {"metadata": {"name": "p", "resourceVersion": "7"}, "spec": []}),
    _line("ADDED", {"metadata": {"name": "p"}, "status": {"phase": 3}}),
    _line("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
    _line(
        "BOOKMARK",
        {
            "kind": "Pod",
            "metadata": {
                "resourceVersion": "10",
                "annotations": {records.INITIAL_EVENTS_END_ANNOTATION: "true"},
            },
        },
    ),
    _line("ERROR", {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410}),
    b'{"type": "MODIFIED"}',
    b'{"object": {"metadata": {"name": "p"}}}',
]


def _outcome(decoder, line: bytes) -> object:
    try:
        return decoder(line, "Pod")
    except DecodeError as exc:
        return f"DecodeError: {exc}"


@pytest.mark.parametrize("line", LINES)
def test_a_watch_line_decodes_as_the_general_path_decodes_it(line: bytes):
    assert _outcome(decode_event, line) == _outcome(_general, line)


def test_watch_lines_of_other_kinds_decode_as_before():
    for kind, obj in [
        ("Node", load_fixture("node-eks-ready-worker.json")),
        ("DaemonSet", load_fixture("daemonset-efa-device-plugin-eks.json")),
    ]:
        line = _line("MODIFIED", obj)
        assert decode_event(line, kind) == _general(line, kind)
        assert decode_event(line, kind).record == decode(kind, obj)


def test_an_unknown_watch_event_type_is_still_an_error():
    with pytest.raises(DecodeError, match="unknown watch event type"):
        decode_event(_line("SURPRISE", daemon_pod(AGENT, "node-a")), "Pod")


def _spec(**fields: object) -> wire.PodSpec:
    return msgspec.convert(fields, wire.PodSpec)


def _c(name: str, requests: dict[str, str] | None = None, restart: str | None = None) -> dict:
    c: dict[str, object] = {"name": name, "image": "i"}
    if requests is not None:
        c["resources"] = {"requests": requests}
    if restart:
        c["restartPolicy"] = restart
    return c


SPECS = [
    {},
    {"containers": [_c("a", {"cpu": "50m", "memory": "64Mi"})]},
    {"containers": [_c("a", {"memory": "64Mi", "cpu": "50m"})]},  # same, other order
    {"containers": [_c("a", {"cpu": "50m"}), _c("b", {"cpu": "1"})]},
    {"containers": [_c("a", {"cpu": "50m"})], "overhead": {"cpu": "10m"}},
    {"containers": [_c("a", {"cpu": "50m"})], "initContainers": [_c("i", {"cpu": "2"})]},
    {
        "containers": [_c("a", {"cpu": "50m"})],
        "initContainers": [_c("s", {"cpu": "2"}, "Always"), _c("i", {"cpu": "1"})],
    },
    {
        "containers": [_c("a", {"cpu": "50m"})],
        "initContainers": [_c("s", {"cpu": "2"}), _c("i", {"cpu": "1"}, "Always")],
    },
    {"containers": [_c("a", {"cpu": "lots"})]},  # malformed: that resource is lost
    {"containers": [_c("a"), _c("b", {})]},
]


def test_requests_are_the_scheduler_sum_for_each_distinct_combination():
    capacity._REQUESTS.clear()
    for fields in SPECS:
        spec = _spec(**copy.deepcopy(fields))
        expected = capacity._pod_requests(spec)
        assert capacity.pod_requests(spec) == expected
        # A second pod asking the same gets the same answer from the table.
        assert capacity.pod_requests(_spec(**copy.deepcopy(fields))) == expected
    # Sidecar or not is part of the combination: the two init orders differ.
    assert capacity.pod_requests(_spec(**SPECS[6])) != capacity.pod_requests(_spec(**SPECS[7]))


def test_the_requests_table_is_bounded(monkeypatch):
    capacity._REQUESTS.clear()
    monkeypatch.setattr(capacity, "_SHARED_MAX", 3)
    for cpu in range(1, 10):
        spec = _spec(containers=[_c("a", {"cpu": f"{cpu}m"})])
        assert capacity.pod_requests(spec) == (("cpu", cpu),)
        assert len(capacity._REQUESTS) <= 3
