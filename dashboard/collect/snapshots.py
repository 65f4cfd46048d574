"""Matrix snapshots: the whole coverage state of one cluster as msgpack bytes (msgspec).

The collector process writes one per cluster to Redis (see dashboard/collect/locks.py); web
workers decode it into a read-only `Matrix` the views render exactly as they render the
live one. Only primary state travels (records, cells, eligibility, counters, current
revision hashes); the indexes derived from it are rebuilt on load.

Records encode as arrays (their Structs are `array_like`): with field names, 5,000 nodes x
30 DaemonSets were 193 MB of msgpack to inflate and parse in every web worker for every
re-read; without, 106 MB. The msgpack is zlib-compressed (level 1: 10.4 MB in Redis).
"""

from __future__ import annotations

import zlib
from collections.abc import Generator
from typing import Any

import msgspec

from dashboard.coverage.cells import Cell, NodeHealth
from dashboard.coverage.eligibility import Eligibility
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.records import DaemonSet, EndpointSlice, Node, Pod, Revision, Service

FORMAT = 4  # 2: Services, EndpointSlices and the pods kept outside cells; 3: slim endpoints;
# 4: records as arrays (no field names), the big lists in chunks


# Records per chunk. msgspec encodes and decodes without letting go of the interpreter lock,
# and one call for the whole 5,000 x 30 matrix held it ~0.5 s on an idle machine (seconds
# on a busy one): in a web worker every socket of the worker waited that long; in the
# collector, every other cluster's tick. The big lists travel as chunks, each encoded and
# decoded by a call of its own (~10 ms), so other threads run in between.
CHUNK = 2048


class MatrixState(msgspec.Struct, array_like=True):
    format: int
    revision: int
    nodes: list[bytes]  # chunks of list[Node]
    health: list[bytes]  # chunks of list[NodeHealth], in the order of `nodes`
    daemonsets: list[DaemonSet]
    pods: list[bytes]  # chunks of list[Pod]
    revisions: list[Revision]
    # Chunks of (node, DaemonSet key, cell): tuple keys do not survive every msgpack decoder.
    cells: list[bytes]
    eligibility: list[bytes]  # chunks of (node, DaemonSet key, Eligibility)
    current_hash: dict[str, str]
    ds_counts: dict[str, dict[str, int]]
    node_counts: dict[str, dict[str, int]]
    services: list[Service]
    slices: list[EndpointSlice]
    other_pods: list[Pod]  # mirror pods, and other pods that hold host ports
    # Per node: (requested, pods, daemons' requested, daemon pods) — the DaemonSet tax and
    # what is free (only daemon pods travel; the others' sums do).
    node_loads: dict[str, tuple[dict[str, int], int, dict[str, int], int]] = {}


class _Head(msgspec.Struct, array_like=True):
    format: int  # the rest of the array is skipped


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MatrixState)
_head_decoder = msgspec.msgpack.Decoder(_Head)
_nodes = msgspec.msgpack.Decoder(list[Node])
_health = msgspec.msgpack.Decoder(list[NodeHealth])
_pods = msgspec.msgpack.Decoder(list[Pod])
_cells = msgspec.msgpack.Decoder(list[tuple[str, str, Cell]])
_eligibility = msgspec.msgpack.Decoder(list[tuple[str, str, Eligibility]])


def _chunked(items: list[Any]) -> list[bytes]:
    return [_encoder.encode(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]


def pack_matrix(matrix: Matrix) -> bytes:
    """A matrix as uncompressed msgpack (the caller holds its collector's lock)."""
    state = MatrixState(
        format=FORMAT,
        revision=matrix.revision,
        nodes=_chunked(list(matrix.nodes.values())),
        health=_chunked([matrix.health[name] for name in matrix.nodes]),
        daemonsets=list(matrix.daemonsets.values()),
        pods=_chunked(list(matrix.pods.values())),
        revisions=list(matrix.revisions.values()),
        cells=_chunked([(n, d, c) for (n, d), c in matrix.cells.items()]),
        eligibility=_chunked([(n, d, e) for (n, d), e in matrix.eligibilities().items()]),
        current_hash=dict(matrix.current_hashes()),
        ds_counts={k: dict(v) for k, v in matrix.ds_counts.items()},
        node_counts={k: dict(v) for k, v in matrix.node_counts.items()},
        services=matrix.services(),
        slices=matrix.endpoint_slices(),
        other_pods=matrix.other_pods(),
        node_loads={
            name: (dict(load.requested), load.pods, dict(load.daemon_requested), load.daemon_pods)
            for name, load in matrix.load.by_node.items()
        },
    )
    return _encoder.encode(state)


def compress(packed: bytes) -> bytes:
    """zlib, level 1; it lets go of the interpreter lock, so it needs no collector lock."""
    return zlib.compress(packed, 1)


def encode_matrix(matrix: Matrix) -> bytes:
    """Serialise a matrix (the caller holds its collector's lock)."""
    return compress(pack_matrix(matrix))


def decode_matrix(data: bytes) -> Matrix:
    """A Matrix equal in state to the one encoded. Meant to be read, not applied to."""
    steps = decode_steps(zlib.decompress(data))
    while True:
        try:
            next(steps)
        except StopIteration as done:
            matrix: Matrix = done.value
            return matrix


def decode_steps(raw: bytes) -> Generator[None, None, Matrix]:
    """`decode_matrix` of the decompressed bytes, yielding between pieces of work of a few
    milliseconds each (a chunk, an index); returns the matrix. A web worker drives it on its
    event loop (collect/remote.py), so its sockets' frames go out in between."""
    try:
        state = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        # Written by another version of daemonviz (a rolling upgrade): say which.
        found = _head_decoder.decode(raw).format
        if found != FORMAT:
            message = f"unknown snapshot format {found} (this version reads {FORMAT})"
            raise ValueError(message) from exc
        raise
    if state.format != FORMAT:
        raise ValueError(f"unknown snapshot format {state.format} (this version reads {FORMAT})")
    yield
    lists: dict[str, list[Any]] = {}
    for name, decoder in (
        ("nodes", _nodes),
        ("health", _health),
        ("pods", _pods),
        ("cells", _cells),
        ("eligibility", _eligibility),
    ):
        out: list[Any] = lists.setdefault(name, [])
        for chunk in getattr(state, name):
            out.extend(decoder.decode(chunk))
            yield
    nodes = lists["nodes"]
    by_name = {n.name: n for n in nodes}
    health = {n.name: h for n, h in zip(nodes, lists["health"], strict=True)}
    pods = {p.key: p for p in lists.pop("pods")}
    yield
    cells = {(n, d): c for n, d, c in lists.pop("cells")}
    yield
    eligibility = {(n, d): e for n, d, e in lists.pop("eligibility")}
    yield
    m = Matrix()
    yield from m.restore_steps(
        revision=state.revision,
        nodes=by_name,
        health=health,
        daemonsets={ds.key: ds for ds in state.daemonsets},
        pods=pods,
        revisions={r.key: r for r in state.revisions},
        cells=cells,
        eligibility=eligibility,
        current_hash=state.current_hash,
        ds_counts=state.ds_counts,
        node_counts=state.node_counts,
        services=state.services,
        slices=state.slices,
        other_pods=state.other_pods,
    )
    m.load.restore(state.node_loads)
    return m
