"""The flat splitter deep objects fall back to must cut JSON exactly where msgspec would."""

from __future__ import annotations

import json

import pytest

from dashboard.coverage.shallow import ShallowError, elements, members

DOC = {
    "kind": "List",
    "n": -1.5e3,
    "t": True,
    "z": None,
    "tricky": 'a "quoted" ] } [ { , : \\ value',
    "items": [{"a": [1, [2, {"b": "]"}]]}, 3, "x,]", [], {}],
    "metadata": {"resourceVersion": "7"},
}


@pytest.mark.parametrize("indent", [None, 2])
def test_members_and_elements_cut_where_a_parser_would(indent):
    data = json.dumps(DOC, indent=indent).encode()
    parts = members(data)
    assert list(parts) == list(DOC)
    for key, (start, end) in parts.items():
        assert json.loads(data[start:end]) == DOC[key]
    start, end = parts["items"]
    assert [json.loads(data[s:e]) for s, e in elements(data, start, end)] == DOC["items"]


def test_depth_costs_nothing():
    deep = b"[" * 20000 + b"]" * 20000
    data = b'{"metadata": {"name": "n"}, "data": ' + deep + b', "revision": 3}'
    parts = members(data)
    assert data[slice(*parts["metadata"])] == b'{"name": "n"}'
    assert data[slice(*parts["revision"])] == b"3"
    assert data[slice(*parts["data"])] == deep


@pytest.mark.parametrize("bad", [b"[1]", b'{"a": [1}', b'"x"', b""])
def test_not_an_object_is_refused(bad):
    with pytest.raises(ShallowError):
        members(bad)
