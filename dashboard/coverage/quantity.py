"""Kubernetes resource quantities (`500m`, `1Gi`, `2e3`, `0.5`) as exact numbers.

The grammar of apimachinery's resource.Quantity: a signed decimal, then either a decimal
exponent (`e3`, `E-2`) or one suffix, binary (`Ki`…`Ei`) or decimal (`n u m k M G T P E`).
Values are kept in thousandths ("milli"), rounded up like Quantity.MilliValue, so `cpu`
sums are exact and other resources lose nothing that matters.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{s: Fraction(2 ** (10 * i)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)},
}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?:[eE](?P<exp>[+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


# Clusters repeat a few dozen distinct quantities ("100m", "128Mi") across every pod: the
# cache keeps the exact (Fraction) arithmetic off the hot path of a 150,000-pod sync.
@lru_cache(maxsize=4096)
def parse_milli(text: str) -> int:
    """The quantity in thousandths, rounded up; ValueError when it is not a quantity."""
    m = _QUANTITY.match(text.strip())
    if m is None:
        raise ValueError(f"not a quantity: {text!r}")
    value = Fraction(m["num"])
    if m["exp"] is not None:
        exp = int(m["exp"])
        if abs(exp) > 30:
            raise ValueError(f"quantity out of range: {text!r}")
        value *= Fraction(10) ** exp
    else:
        value *= _SUFFIXES[m["suffix"] or ""]
    return math.ceil(value * 1000)


def _trim(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_milli(resource: str, milli: int) -> str:
    """How kubectl would write it: cpu in cores or millicores, memory in binary units."""
    if resource == "cpu":
        return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"
    units = milli / 1000
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if abs(units) >= size:
                return f"{_trim(units / size)}{suffix}"
    return _trim(units)
