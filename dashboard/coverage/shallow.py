"""Find the top-level parts of a JSON document without recursing into them.

msgspec decodes recursively and gives up with `RecursionError` at about a thousand levels
of nesting, even inside a field it is told to skip. The API server stores deeper objects
(a ControllerRevision's `data` is free-form JSON), and one of them must not hide the other
objects of its list page or stop a watch. This module splits a document at its top level
with a flat loop (strings are skipped by one regular expression, so nesting depth costs
nothing), so that every part can be decoded, or refused, on its own.

It assumes well-formed JSON apart from its depth (it checks nothing else): what it returns
is handed to msgspec, which still rejects anything malformed.
"""

from __future__ import annotations

import json
import re

# A string (with escapes), or one structural character; everything else is skipped.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)
_OPEN = frozenset(b"{[")
_CLOSE = frozenset(b"}]")


class ShallowError(ValueError):
    """The document is not shaped as expected (not an object, unbalanced brackets)."""


def _first(data: bytes, start: int) -> int:
    i = start
    while i < len(data) and data[i] in b" \t\r\n":
        i += 1
    return i


def members(data: bytes, start: int = 0, end: int | None = None) -> dict[str, tuple[int, int]]:
    """The members of the JSON object spanning data[start:end]: key → (start, end) of its
    value's bytes (whitespace trimmed). Later duplicates win, as in msgspec."""
    end = len(data) if end is None else end
    i = _first(data, start)
    if i >= end or data[i] != ord("{"):
        raise ShallowError("not a JSON object")
    out: dict[str, tuple[int, int]] = {}
    depth = 0
    key: str | None = None
    value_start = -1
    expect_key = True
    for m in _TOKEN.finditer(data, i, end):
        tok = m.group()
        c = tok[0]
        if c in _OPEN:
            depth += 1
            if depth == 2 and value_start < 0:
                value_start = m.start()
            continue
        if c in _CLOSE:
            depth -= 1
            if depth == 0:
                if key is not None and value_start >= 0:
                    out[key] = (value_start, _trim_end(data, value_start, m.start()))
                return out
            continue
        if depth != 1:
            continue
        if c == ord('"'):
            if expect_key:
                key = _string(tok)
            elif value_start < 0:
                value_start = m.start()
        elif c == ord(":"):
            expect_key = False
            # A scalar value (number, true, null) has no token: it starts after the colon.
            nxt = _first(data, m.end())
            value_start = nxt if nxt < end and data[nxt] not in b'"{[' else -1
        elif c == ord(","):
            if key is not None and value_start >= 0:
                out[key] = (value_start, _trim_end(data, value_start, m.start()))
            key, value_start, expect_key = None, -1, True
    raise ShallowError("unbalanced JSON object")


def elements(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The elements of the JSON array spanning data[start:end], as (start, end) spans."""
    i = _first(data, start)
    if i >= end or data[i] != ord("["):
        raise ShallowError("not a JSON array")
    out: list[tuple[int, int]] = []
    depth = 0
    element_start = _first(data, i + 1)
    for m in _TOKEN.finditer(data, i, end):
        c = m.group()[0]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                stop = _trim_end(data, element_start, m.start())
                if stop > element_start:
                    out.append((element_start, stop))
                return out
        elif c == ord(",") and depth == 1:
            out.append((element_start, _trim_end(data, element_start, m.start())))
            element_start = _first(data, m.end())
    raise ShallowError("unbalanced JSON array")


def _trim_end(data: bytes, start: int, end: int) -> int:
    while end > start and data[end - 1] in b" \t\r\n":
        end -= 1
    return end


def _string(token: bytes) -> str:
    return str(json.loads(token))
