"""A versioned in-memory object store: what etcd plus the API server's watch cache are to a
real cluster, for the simulator.

The simulator writes Kubernetes JSON objects (dicts) into it; the fake API server serves
lists and watches from it, and the in-process source follows its event log. Each write
bumps one cluster-wide resourceVersion, as etcd's revision does, and the log keeps a
bounded window of history: a watch from a resourceVersion older than the window gets
410 Expired, which is exactly the case clients must survive. `snapshot()` and `restore()`
play an etcd backup and its restore: the store, its revision and its history go back to
the snapshot's, so clients that followed the newer store hold resourceVersions from the
future (docs/list-watch.md).
"""

from __future__ import annotations

import builtins
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    api_version: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("nodes", "Node", "v1", False),
        Resource("pods", "Pod", "v1", True),
        Resource("daemonsets", "DaemonSet", "apps/v1", True),
        Resource("controllerrevisions", "ControllerRevision", "apps/v1", True),
        Resource("services", "Service", "v1", True),
        Resource("endpointslices", "EndpointSlice", "discovery.k8s.io/v1", True),
        Resource("namespaces", "Namespace", "v1", False),
        Resource("events", "Event", "v1", True),
        Resource("priorityclasses", "PriorityClass", "scheduling.k8s.io/v1", False),
    )
}


class Expired(Exception):
    """The requested resourceVersion has left the history window (HTTP 410)."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    namespace: str
    obj: Obj
    data: bytes  # the object encoded once, so watchers and lists don't re-encode it


@dataclass(frozen=True)
class StoreSnapshot:
    """What `etcdctl snapshot save` keeps: every object, the revision and its history."""

    objects: dict[str, dict[tuple[str, str], tuple[Obj, bytes]]]
    rv: int
    log: tuple[Event, ...]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    """Thread-safe. Objects handed to `put` belong to the store and must not be mutated."""

    def __init__(self, history: int = 50_000, clock: Callable[[], str] = now_rfc3339) -> None:
        self._lock = threading.Condition()
        self._objects: dict[str, dict[tuple[str, str], tuple[Obj, bytes]]] = {
            r: {} for r in RESOURCES
        }
        self._log: deque[Event] = deque(maxlen=history)
        self._rv = 1
        self._uids = (uuid.UUID(int=i) for i in itertools.count(1))  # deterministic uids
        self._clock = clock
        self._epoch = 0  # bumped by compact(): lets tests force a 410 for everyone
        self._generation = 0  # bumped by restore(): the store was replaced by an older one
        # Called (under the store's lock, so they must be quick) after every change a
        # watcher would see: how an in-process follower learns of news without polling.
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ writes

    @property
    def resource_version(self) -> int:
        return self._rv

    def put(self, resource: str, obj: Obj, *, raw_fields: Mapping[str, bytes] | None = None) -> Obj:
        """Create or replace an object (by namespace/name); returns it with server fields set.

        `raw_fields` are top-level fields given as JSON bytes, served exactly as given: how
        tests store what no Python encoder would write (e.g. thousands of nesting levels,
        which the API server accepts in a ControllerRevision's free-form `data`)."""
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", ""), meta["name"])
        r = RESOURCES[resource]
        obj.setdefault("apiVersion", r.api_version)
        obj.setdefault("kind", r.kind)
        with self._lock:
            old = self._objects[resource].get(key)
            if old is None:
                meta.setdefault("uid", str(next(self._uids)))
                meta.setdefault("creationTimestamp", self._clock())
            else:
                meta["uid"] = old[0]["metadata"]["uid"]
                meta["creationTimestamp"] = old[0]["metadata"].get("creationTimestamp")
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            data = msgspec.json.encode(obj)
            for name, raw in (raw_fields or {}).items():
                data = data[:-1] + b"," + msgspec.json.encode(name) + b":" + raw + b"}"
            self._objects[resource][key] = (obj, data)
            self._append(
                Event(self._rv, "MODIFIED" if old else "ADDED", resource, key[0], obj, data)
            )
        return obj

    def delete(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self._lock:
            old = self._objects[resource].pop((namespace, name), None)
            if old is None:
                return None
            self._rv += 1
            # A DELETED event carries the last state, with the deletion's resourceVersion.
            obj = {**old[0], "metadata": {**old[0]["metadata"], "resourceVersion": str(self._rv)}}
            self._append(
                Event(self._rv, "DELETED", resource, namespace, obj, msgspec.json.encode(obj))
            )
            return obj

    def subscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _changed(self) -> None:
        self._lock.notify_all()
        for listener in self._listeners:
            listener()

    def _append(self, event: Event) -> None:
        self._log.append(event)
        self._changed()

    def compact(self) -> None:
        """Forget all history, as etcd compaction does: every open watch will need a relist."""
        with self._lock:
            self._log.clear()
            self._epoch += 1
            self._changed()

    def snapshot(self) -> StoreSnapshot:
        """A copy of the whole store as of now (objects are immutable once stored)."""
        with self._lock:
            objects = {r: dict(objs) for r, objs in self._objects.items()}
            return StoreSnapshot(objects, self._rv, tuple(self._log))

    def restore(self, snap: StoreSnapshot) -> None:
        """Put the store back to `snap`, as restoring an etcd backup does: objects, revision
        and history are the snapshot's, so the resourceVersion goes *back*. Writes after it
        count on from the snapshot's revision (etcd without --bump-revision)."""
        with self._lock:
            self._objects = {r: dict(snap.objects.get(r, {})) for r in RESOURCES}
            self._rv = snap.rv
            self._log = deque(snap.log, maxlen=self._log.maxlen)
            self._generation += 1
            self._changed()

    # ------------------------------------------------------------------ reads

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self._lock:
            entry = self._objects[resource].get((namespace, name))
            return entry[0] if entry else None

    def list(
        self, resource: str, namespace: str | None = None
    ) -> tuple[list[tuple[Obj, bytes]], int]:
        """A consistent snapshot of (object, encoded bytes), sorted by namespace/name, and its RV."""
        with self._lock:
            items = [
                v
                for (ns, _), v in sorted(self._objects[resource].items())
                if namespace is None or ns == namespace
            ]
            return items, self._rv

    def count(self, resource: str) -> int:
        with self._lock:
            return len(self._objects[resource])

    def oldest_rv(self) -> int:
        """The oldest resourceVersion a watch may still start from."""
        with self._lock:
            return self._log[0].rv - 1 if self._log else self._rv

    def events_since(
        self, rv: int, resource: str | None = None, namespace: str | None = None
    ) -> builtins.list[Event]:  # `list` in this class is the method above
        """Events after `rv`, oldest first. Raises Expired if `rv` is outside the window."""
        with self._lock:
            if rv < self.oldest_rv():
                raise Expired(rv, self.oldest_rv())
            if rv >= self._rv:
                return []
            # The log is ordered by rv; skip from the right end for the common "recent" case.
            out: list[Event] = []
            for ev in reversed(self._log):
                if ev.rv <= rv:
                    break
                if (resource is None or ev.resource == resource) and (
                    namespace is None or ev.namespace == namespace
                ):
                    out.append(ev)
            out.reverse()
            return out

    @property
    def epoch(self) -> int:
        """Bumped by every compact(): a watcher that saw it change must answer 410."""
        return self._epoch

    @property
    def generation(self) -> int:
        """Bumped by every restore(): a watch cache built on the old store is void."""
        return self._generation

    def wait_for_change(
        self, rv: int, timeout: float, until: Callable[[], bool] | None = None
    ) -> bool:
        """Block until the store moves past `rv` (or history is compacted, or the store
        restored); False on timeout.

        `until` (a no-argument callable) is an extra wake-up condition checked under the lock,
        re-evaluated on `wake()`: the API server uses it to end watches promptly on shutdown.
        """
        with self._lock:
            epoch, generation = self._epoch, self._generation
            return self._lock.wait_for(
                lambda: (
                    self._rv > rv
                    or self._epoch != epoch
                    or self._generation != generation
                    or (until is not None and until())
                ),
                timeout,
            )

    def wake(self) -> None:
        """Re-evaluate every waiter's condition (after an `until` flag was set elsewhere)."""
        with self._lock:
            self._lock.notify_all()
