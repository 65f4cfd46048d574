"""Label selectors in kubectl's syntax (`pool=gpu,zone in (a,b),!spot`): the grid's node
filter, a cluster's DaemonSet scope and the fake API server's `labelSelector` all parse
them here, so the three agree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


class SelectorError(ValueError):
    """A label selector that does not parse; the message says where."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # !exists


_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_TERM = re.compile(
    rf"""\s*(?:
        (?P<not>!)\s*(?P<nkey>{_KEY})
      | (?P<skey>{_KEY})\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\)
      | (?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})
      | (?P<ekey>{_KEY})
    )\s*(?:,|$)""",
    re.VERBOSE,
)


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """kubectl's label selector syntax: `a=b,c!=d,e in (x,y),f notin (z),!g,h`."""
    text = text.strip()
    reqs: list[Requirement] = []
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectorError(f"cannot parse label selector near {text[pos : pos + 30]!r}")
        if m["nkey"]:
            reqs.append(Requirement(m["nkey"], "!exists"))
        elif m["skey"]:
            values = tuple(v.strip() for v in m["set"].split(",") if v.strip())
            if not values:
                raise SelectorError(f"empty value set for {m['skey']!r}")
            reqs.append(Requirement(m["skey"], m["setop"], values))
        elif m["key"]:
            op = "=" if m["op"] == "==" else m["op"]
            reqs.append(Requirement(m["key"], op, (m["value"],)))
        else:
            reqs.append(Requirement(m["ekey"], "exists"))
        pos = m.end()
    return tuple(reqs)
