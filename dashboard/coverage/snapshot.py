"""Build a matrix from `kubectl get nodes,daemonsets,pods,controllerrevisions,services,
endpointslices,events,priorityclasses -A -o json`.

Accepts several files, directories of JSON files, and `-` for stdin. Each document may be
a v1 List (what kubectl prints), a typed list (`PodList`, …) or a single object.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import msgspec

from .event_records import EventRecord
from .matrix import ADDED, Matrix
from .records import KINDS, DecodeError, Record, decode, decode_list, kind_of


class SnapshotError(ValueError):
    """One clear line about what is wrong with which input."""


def read_inputs(paths: Iterable[str]) -> list[tuple[str, bytes]]:
    docs: list[tuple[str, bytes]] = []
    for raw in paths:
        if raw == "-":
            docs.append(("<stdin>", sys.stdin.buffer.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
            if not files:
                raise SnapshotError(f"{path}: directory has no .json files")
        elif path.exists():
            files = [path]
        else:
            raise SnapshotError(f"{path}: no such file or directory")
        for f in files:
            try:
                docs.append((str(f), f.read_bytes()))
            except OSError as exc:
                raise SnapshotError(f"{f}: cannot read: {exc.strerror}") from None
    return docs


def decode_documents(docs: Iterable[tuple[str, bytes]]) -> tuple[list[Record], Counter[str]]:
    """All records in the documents, and the count of objects of kinds we skip."""
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    for name, data in docs:
        if not data.strip():
            raise SnapshotError(f"{name}: empty input")
        try:
            kind = kind_of(data)
            if kind in KINDS:
                records.append(decode(kind, data))
                continue
            if kind and kind != "List" and not kind.endswith("List"):
                if not _is_object(data):
                    raise SnapshotError(
                        f"{name}: holds no Kubernetes objects (a {kind!r} without metadata"
                        + (", i.e. a kubeconfig" if kind == "Config" else "")
                        + "); expected kubectl get … -o json output"
                    )
                skipped[kind] += 1  # a single object of a kind the matrix does not use
                continue
            decoded = decode_list(data)
        except DecodeError as exc:
            raise SnapshotError(f"{name}: {exc}") from None
        records.extend(decoded.records)
        skipped.update(decoded.skipped)
    return records, skipped


def _is_object(data: bytes) -> bool:
    """A Kubernetes object has metadata; a kubeconfig (kind Config), say, has none."""
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("metadata"), dict)


def build_matrix(records: Iterable[Record], matrix: Matrix | None = None) -> Matrix:
    matrix = matrix or Matrix()
    # Events last: an event is kept only for an object the matrix already shows.
    ordered = sorted(records, key=lambda r: isinstance(r, EventRecord))
    matrix.apply_many((ADDED, r) for r in ordered)
    return matrix
