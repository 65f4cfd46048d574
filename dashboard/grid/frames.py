"""Websocket frames of the grid: what the collector puts on the channel layer, and what
each browser receives.

One delta, many sockets. The collector packs a payload once (msgpack bytes): the in-memory
channel layer deep-copies every message for every socket, and channels_redis stores a copy
per receiving process; a bytes object is one flat copy where a nested payload of 1,000
cells cost ~1.3 ms per socket on the event loop. Consumers unpack it once per process
(`unpacked`, a small cache by cluster, epoch and revision) and build one frame per distinct
filter set (`Unpacked.frame`): fifty browsers on the same view cost one build and one
encode.

Frames are JSON text; the htmx ws extension hands them to static/js/daemonviz.js:
  {"hello": 1, "rev", "epoch"}                   first frame on a socket: where the matrix is
  {"rev", "base", "epoch", "resync": 1}          the columns changed (or a static pod
                                                 did): re-fetch the grid
  {"rev", "base", "epoch",                       a delta:
   "skel": [cell skeleton, …],                     `_cell.html` once per distinct
                                                   (state, reason, restarts), with markers
   "cells": [[element id, skeleton index], …],     for the id, names and link
   "cell_url": "/clusters/<slug>/cell/?",
   "html": "…",                                    out-of-band swaps: joining and removed
                                                   rows, row and column heads, the summary
   "summary": 1}                                   (filtered pages) the counts moved: fetch
                                                   this view's tiles
`rev`/`base`/`epoch` let the page spot a gap or a restarted matrix. The page fills a
skeleton's markers (fragments._MARKS) from the cell it replaces, whose names it already
holds, so a 1,000-cell rollout frame carries ids, not a thousand copies of names and links.

In scale-out, a payload bigger than a few tens of KB travels by reference
(`reference_message`, dashboard/collect/deltarefs.py): consumers `await unpacked(message)`,
which fetches it once per process however many sockets wait for it, and get None when it
is gone, so they make the page re-sync (`resync_frame`) instead of guessing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from typing import Any

import msgspec
from django.utils.html import format_html

from dashboard.collect import deltarefs
from dashboard.coverage.matrix import Matrix
from dashboard.coverage.states import State
from dashboard.grid import fragments
from dashboard.grid.model import NO_GROUP, GridFilters, dom_id

MESSAGE_TYPE = "grid.delta"  # consumers' `grid_delta` handler


def group_name(slug: str) -> str:
    """The channel-layer group a cluster's deltas are published to."""
    return f"cluster.{slug}"


def _plain_str(obj: Any) -> str:
    # Rendered templates are SafeString, a str subclass neither encoder takes as is.
    if isinstance(obj, str):
        return str.__str__(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


_packer = msgspec.msgpack.Encoder(enc_hook=_plain_str)
_unpacker = msgspec.msgpack.Decoder()
_json = msgspec.json.Encoder(enc_hook=_plain_str)


def pack(payload: dict[str, Any]) -> bytes:
    """A collector payload as the bytes every socket shares (see above)."""
    return _packer.encode(payload)


def delta_message(payload: dict[str, Any], packed: bytes | None = None) -> dict[str, Any]:
    """The channel-layer message for one collector payload (packed once, see above)."""
    return {
        "type": MESSAGE_TYPE,
        "slug": payload["slug"],
        "epoch": payload.get("epoch", ""),
        "revision": payload["revision"],
        "packed": pack(payload) if packed is None else packed,
    }


def reference_message(payload: dict[str, Any], ref: str) -> dict[str, Any]:
    """The channel-layer message for a payload stored in Redis under `ref`."""
    return {
        "type": MESSAGE_TYPE,
        "slug": payload["slug"],
        "epoch": payload.get("epoch", ""),
        "revision": payload["revision"],
        "ref": ref,
    }


class Unpacked:
    """A decoded payload and the frames built from it so far, one per filter set."""

    __slots__ = ("payload", "frames", "wall_frames")

    def __init__(self, payload: dict[str, Any]):
        self.payload = payload
        self.frames: dict[GridFilters, str] = {}
        # The wall's frame by display name of the cluster (dashboard/wall/consumers.py):
        # encoded once, not once per wall socket.
        self.wall_frames: dict[str, str | None] = {}

    def frame(self, filters: GridFilters) -> str:
        """The frame a browser with these filters gets, built once per filter set."""
        # Sorting and expanded groups change the page, not which pushed pieces it can use.
        key = dataclasses.replace(filters, sort="name", expand=())
        frame = self.frames.get(key)
        if frame is None:
            frame = self.frames[key] = client_frame(self.payload, filters)
        return frame


# Messages of the last few revisions; consumers of one process all run on one event loop,
# so the cache needs no lock. A socket that lags more than this many revisions behind just
# unpacks (or fetches) again.
_CACHE_SIZE = 32
_unpacked: OrderedDict[tuple[str, str, int], Unpacked] = OrderedDict()
# Fetches under way, so the sockets of one process that get the same reference together
# wait for one GET and one decode.
_fetching: dict[tuple[str, str, int], asyncio.Task[Unpacked | None]] = {}


def _cache_key(message: dict[str, Any]) -> tuple[str, str, int]:
    return (message["slug"], message["epoch"], message["revision"])


def _remember(key: tuple[str, str, int], packed: bytes) -> Unpacked:
    entry = _unpacked[key] = Unpacked(_unpacker.decode(packed))
    while len(_unpacked) > _CACHE_SIZE:
        _unpacked.popitem(last=False)
    return entry


def _unpack(message: dict[str, Any]) -> Unpacked:
    key = _cache_key(message)
    entry = _unpacked.get(key)
    if entry is None:
        entry = _remember(key, message["packed"])
    return entry


async def _fetch(key: tuple[str, str, int], ref: str) -> Unpacked | None:
    packed = await deltarefs.fetch(ref)
    if packed is None:
        return None
    return _remember(key, packed)


async def unpacked(message: dict[str, Any]) -> Unpacked | None:
    """The payload of a message, inline or by reference (shared: do not mutate); None when
    the referenced payload is gone."""
    key = _cache_key(message)
    entry = _unpacked.get(key)
    if entry is not None:
        return entry
    if "packed" in message:
        return _remember(key, message["packed"])
    task = _fetching.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = _fetching[key] = asyncio.ensure_future(_fetch(key, message["ref"]))

        def forget(done: asyncio.Task[Unpacked | None]) -> None:
            if _fetching.get(key) is done:
                del _fetching[key]

        task.add_done_callback(forget)
    # Shielded: a socket closing while it waits must not cancel the others' fetch.
    return await asyncio.shield(task)


def payload_of(message: dict[str, Any]) -> dict[str, Any]:
    """The collector's payload inside an inline message (shared: do not mutate)."""
    return _unpack(message).payload


def frame_for(message: dict[str, Any], filters: GridFilters) -> str:
    """The frame a browser with these filters gets for an inline message."""
    return _unpack(message).frame(filters)


def resync_frame(message: dict[str, Any]) -> str:
    """What a page gets for a delta it cannot have: re-fetch the grid."""
    revision = message["revision"]
    return _encode({"rev": revision, "base": revision, "epoch": message["epoch"], "resync": 1})


def _encode(frame: dict[str, Any]) -> str:
    return _json.encode(frame).decode()


def hello_frame(matrix: Matrix) -> str:
    """The first frame on a new socket: where the matrix stands now."""
    return _encode({"hello": 1, "rev": matrix.revision, "epoch": matrix.epoch})


def client_frame(payload: dict[str, Any], filters: GridFilters) -> str:
    """The frame one browser gets for a payload, given the filters of its page.

    Columns hidden by the namespace/DaemonSet filters are dropped here. Rows hidden by the
    name search and label selector are dropped when we know the node's labels (joining
    rows); for cells of existing rows we do not ship labels (they would dominate the
    payload), so a cell of a row the page does not show simply finds no target and the page
    skips it — data the user may see anyway, only some bytes wasted. The page re-syncs when
    such a miss concerns a *problem* cell while it shows problems only, so a newly broken
    row does appear. The revision is always sent, even when nothing else is visible: without
    it the next frame would look like a gap.
    """
    revision = payload["revision"]
    frame: dict[str, Any] = {
        "rev": revision,
        "base": payload.get("base", revision - 1),
        "epoch": payload.get("epoch", ""),
    }
    if payload.get("resync") or (payload.get("static") and filters.static != "hide"):
        frame["resync"] = 1
        return _encode(frame)
    q = filters.q.lower()
    skeletons = payload.get("skeletons", ())
    used: dict[int, int] = {}  # payload's skeleton index -> this frame's
    cells = [
        [cid, used.setdefault(index, len(used))]
        for node, ds_key, cid, index in payload.get("cells", ())
        if filters.column_visible(ds_key) and (not q or q in node.lower())
    ]
    if cells:
        frame["skel"] = [skeletons[i] for i in used]
        frame["cells"] = cells
        frame["cell_url"] = payload["cell_url"]
    html = oob_html(payload, filters)
    if html:
        frame["html"] = html
    if payload.get("summary") and filters.active:
        # The pushed tiles are the cluster's; a filtered page fetches its own view's.
        frame["summary"] = 1
    return _encode(frame)


def oob_html(payload: dict[str, Any], filters: GridFilters) -> str:
    """Everything of a payload but its cells, as htmx out-of-band swaps for these filters:
    joining rows (into their group), removed rows, row and column heads, the summary."""
    try:
        reqs = filters.requirements()
    except ValueError:
        reqs = ()
    q = filters.q.lower()
    parts = []
    group_label = filters.group if filters.group != NO_GROUP else ""
    for row in payload.get("rows_added", ()):
        if not filters.node_visible(row["node"], row["labels"], reqs):
            continue
        row_cells = [(k, s, h) for k, s, h in row["cells"] if filters.column_visible(k)]
        static_html = [h for k, _, h in row.get("static_cells", ()) if filters.static_visible(k)]
        if filters.state and not any(
            s and (s == filters.state or (filters.state == "problems" and State(s).is_problem))
            for _, s, _ in row_cells
        ):
            continue
        group = row["labels"].get(group_label, "") if group_label else ""
        html = fragments.row_html(
            dom_id(row["node"]),
            row["node"],
            row["problem"],
            row["head"],
            [h for _, _, h in row_cells] + static_html,
            new=True,
        )
        # A stale copy of the row (node left and came back) is removed by the page's script
        # before the append; an oob "delete" here would log a miss on every normal join.
        parts.append(
            format_html(
                '<div hx-swap-oob="beforeend:#gr-{}">{}</div>', dom_id("group:" + group), html
            )
        )
    for name in payload.get("rows_removed", ()):
        parts.append(format_html('<div id="r-{}" hx-swap-oob="delete"></div>', dom_id(name)))
    for row in payload.get("rows_changed", ()):
        if not q or q in row["node"].lower():
            parts.append(row["head"])
    for key, html in payload.get("columns_changed", ()):
        if filters.column_visible(key):
            parts.append(html)
    if payload.get("summary") and not filters.active:
        parts.append(payload["summary"])
    return "".join(parts)
