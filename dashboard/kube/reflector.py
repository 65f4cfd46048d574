"""List-then-watch reflectors: keep a consumer's copy of one resource exact, forever.

One `Reflector` per resource follows client-go's Reflector loop (docs/list-watch.md):

    list (paginated, raw bytes)  ->  Replace(records, rv)
    watch from rv, bookmarks on  ->  Change(...) per event; rv advances on every event
        clean end / network error   -> ask the server whether it still has rv, then watch
                                       again from it (no relist needed)
        410 (HTTP or ERROR event)   -> list again: a fresh Replace for the whole resource
        504 "Too large resource     -> the server's store went back in time (an etcd
          version"                     restore): list again from scratch; a list whose
                                       version is lower than the one held says so in
                                       the status
        other errors                -> exponential backoff with full jitter, Retry-After

The official `kubernetes.watch.Watch` is not used: with `deserialize=False` it stops
tracking the resourceVersion and raises KeyError on ERROR events, and it retries a 410
with the same stale resourceVersion (docs/list-watch.md). The stream is read here instead.

Threads, not asyncio: the official client is synchronous (blocking urllib3). Each reflector
runs in its own thread so its blocking reads never stall the asyncio event loop that serves
the web pages; the consumer takes events over through a queue it drains on its own ticks
(dashboard/collect/sources.py `KubeSource`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import urllib3.exceptions as u3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from dashboard.coverage.events import Change, Replace
from dashboard.coverage.records import Record, Skipped, decode_event, tombstone

from .connection import ConnectionState
from .errors import (
    BAD_OBJECT,
    FORBIDDEN,
    GONE,
    NOT_KUBERNETES,
    PROTOCOL,
    SERVER_ERROR,
    TOO_LARGE,
    ConnectionProblem,
    ProblemError,
    RequestContext,
    classify,
    from_status,
)
from .identity import ServerIdentity, identify
from .resources import (
    DEFAULT_PAGE_SIZE,
    NODE_EVENTS_FORBIDDEN,
    RESOURCES,
    check_resource_version,
    list_all,
    record_key,
    request,
    server_of,
    watched_resources,
)

log = logging.getLogger(__name__)

CONNECTING = ConnectionState.CONNECTING
SYNCED = ConnectionState.SYNCED
STALE = ConnectionState.STALE
FAILED = ConnectionState.FAILED
STOPPED = ConnectionState.STOPPED

# The resource name under which ClusterWatch reports the cluster's aggregated status.
CLUSTER = "cluster"
# How often an address that answered as something other than a Kubernetes API server is
# asked again: somebody has to fix the kubeconfig (or start the cluster), so slowly.
NOT_KUBERNETES_RETRY_SECONDS = 60.0


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class HistoryReset:
    """The server's resourceVersion went back: its store was restored from a backup (or
    replaced), so a resource was listed afresh. Kept on the synced status, for people."""

    resource: str
    before: str  # the resourceVersion we held
    after: str  # the fresh list's
    at: float  # time.time() of that list

    @property
    def message(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.at))
        return (
            f"listed afresh at {when}: the API server's resourceVersion went back "
            f"({self.resource} {self.before} → {self.after}); its store was restored or replaced"
        )


@dataclass(frozen=True, slots=True)
class Status:
    state: ConnectionState
    problem: ConnectionProblem | None
    since: float  # time.time() when this state began (for stale: when it first failed)
    reset: HistoryReset | None = None  # the last time the server's history went back


Event = Replace | Change | Status


@dataclass(slots=True)
class WatchStats:
    """Counters for /metrics (written by the reflector's thread; plain int updates)."""

    lists: int = 0  # full lists, the first included (more than one = relists)
    watches: int = 0  # watch requests (more than one = reconnects)
    events: int = 0  # ADDED/MODIFIED/DELETED received
    errors: int = 0  # failed requests (retried with backoff)
    last_event_at: float = 0.0  # time.time() of the last event or bookmark
    history_resets: int = 0  # relists after the server's resourceVersion went back
    # Lists made as a WatchList stream (sendInitialEvents=true), included in `lists`; the
    # rest were paginated. `list_mode` says how the last one was made ("watch-list" or
    # "paginated"), `watch_list_refused` why the server's WatchList is not used, if so.
    streamed_lists: int = 0
    list_mode: str = ""
    watch_list_refused: str = ""
    # Objects left out right now because they cannot be decoded, by key (replaced as a
    # whole by each list; the watch adds and removes). Written by the reflector's thread
    # only, and read elsewhere by copying (atomic for a dict).
    skipped: dict[str, Skipped] = field(default_factory=dict)

    @property
    def relists(self) -> int:
        return max(0, self.lists - 1)

    @property
    def reconnects(self) -> int:
        return max(0, self.watches - 1)


Sink = Callable[[str, Event], None]


# --------------------------------------------------------------------------- backoff


MAX_RETRY_AFTER = 300.0


class Backoff:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        delay = self.rng.uniform(0, ceiling)
        # The server said when: never come back sooner (within reason: a bogus header
        # must not park the reflector for hours).
        return max(delay, min(retry_after, MAX_RETRY_AFTER)) if retry_after else delay

    def reset(self) -> None:
        self.attempt = 0


class _Relist(Exception):
    """Only a fresh list can continue: the watch's resourceVersion expired (410), or the
    server is behind it (its store went back in time)."""

    def __init__(self, why: str = "resourceVersion expired"):
        super().__init__(why)
        self.why = why


class _Stopped(Exception):
    pass


# HTTP statuses with which a server refuses a WatchList request outright: 422 from a
# kube-apiserver whose WatchList feature gate is off ("sendInitialEvents is forbidden for
# watch unless the WatchList feature gate is enabled") or from one older than v1.27
# ("resourceVersionMatch is forbidden for watch"); 400 from servers that validate the
# parameters differently. Anything else is an ordinary failure (auth, throttling...).
WATCH_LIST_REFUSED_STATUSES = frozenset({400, 422})
# After a refusal the reflector lists page by page, and asks again this much later (the
# cluster may have been upgraded, or its gate turned on) rather than on every relist.
WATCH_LIST_RETRY_SECONDS = 3600.0

# An optional resource the server refuses (403: RBAC grants it nowhere near us) is asked
# again this rarely: a Role may be added later, but a refusal is not news every 30 s.
OPTIONAL_FORBIDDEN_RETRY_SECONDS = 600.0

# A watch that ends cleanly this quickly, having delivered nothing, is not progress: backing
# off keeps a server that accepts and immediately closes watches from becoming a hot loop.
MIN_USEFUL_WATCH_SECONDS = 1.0


# --------------------------------------------------------------------------- reflector


class Reflector:
    def __init__(
        self,
        api_client: ApiClient,
        resource: str,
        sink: Sink,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        watch_timeout_seconds: int = 300,
        connect_timeout: float = 10.0,
        read_timeout: float = 90.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        watch_list: bool = True,
        optional_forbidden_retry: float = OPTIONAL_FORBIDDEN_RETRY_SECONDS,
    ):
        """`read_timeout` bounds every read: a silently dropped connection (no FIN, no RST)
        is noticed after that long at worst, then the watch resumes from the last RV. It
        should exceed the server's bookmark interval (kube-apiserver: about a minute).

        Backoff: full jitter between 0 and min(backoff_cap, backoff_base * 2**failures);
        `rng` and `sleep` are injectable for tests. By default the wait ends early on stop().

        `watch_list`: make initial lists and relists as a WatchList stream (one watch with
        sendInitialEvents=true, docs/list-watch.md#streaming-lists-watchlist) where the
        server supports it, falling back to paginated lists where it does not.

        `optional_forbidden_retry`: how long an optional resource the server refuses (403)
        waits before it is asked again.
        """
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r} (one of {', '.join(RESOURCES)})")
        self.api_client = api_client
        self.resource = resource
        self.spec = RESOURCES[resource]
        self.sink = sink
        # Nodes are cluster-scoped: a namespace does not apply to them. Node events are
        # watched in "default" whatever the cluster's namespace.
        self.namespace = (self.spec.namespace or namespace) if self.spec.namespaced else None
        self.label_selector = label_selector
        self.page_size = page_size
        self.watch_timeout_seconds = int(watch_timeout_seconds)
        self.timeouts = (connect_timeout, read_timeout)
        self.backoff = Backoff(backoff_base, backoff_cap, rng)
        self._sleep = sleep
        self._clock = clock
        self._stop = threading.Event()
        self._response_lock = threading.Lock()
        self._response: Any = None
        self._thread: threading.Thread | None = None
        self._ever_synced = False
        self._status = Status(CONNECTING, None, clock())
        self._reset: HistoryReset | None = None
        self.resource_version = ""  # the last one seen (list, event or bookmark)
        self.stats = WatchStats()
        self.watch_list = watch_list
        self.optional_forbidden_retry = optional_forbidden_retry
        self._watch_list_refused_at: float | None = None  # time.monotonic()

    # ------------------------------------------------------------------ control

    @property
    def status(self) -> Status:
        return self._status

    def start(self) -> Reflector:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run, name=f"reflector:{self.resource}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to end and unblock a read in progress; does not wait."""
        self._stop.set()
        with self._response_lock:
            resp = self._response
        if resp is not None:
            _abort(resp)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        self._emit(self._status)
        rv = ""
        # Once a watch from `rv` has ended (its timeout, a cut, a restart of the server),
        # the server is asked whether it still has `rv` before the next watch: a watch from
        # a version the server has not reached is accepted and then stays silent (the real
        # watch cache drops events and bookmarks up to it), which after an etcd restore
        # would hide every change for good.
        verify = False
        while not self._stop.is_set():
            try:
                if not rv:
                    streamed = self._watch_list() if self._use_watch_list() else None
                    if streamed is not None:
                        # Listed and watched in one stream, which has now ended.
                        rv, verify = streamed, True
                        continue
                    rv = self._list()
                    verify = False
                elif verify:
                    self._check(rv)
                verify = True
                # Synced is declared once the watch is accepted: "listed and watching".
                rv = self._watch(rv)
            except _Stopped:
                break
            except _Relist as relist:
                # Relisting is the normal recovery, not a failure: the state stays as it is.
                log.info("%s: %s, relisting", self.resource, relist.why)
                rv = ""
            except Exception as exc:  # every failure is retried; classify says why
                if self._stop.is_set():
                    break
                problem = classify(exc, self._context("watch" if rv else "list"))
                if problem.kind == TOO_LARGE:
                    # client-go's answer to "Too large resource version": the version we
                    # hold is unavailable; a list without one (a consistent read) is not.
                    # Not a failure; the short backoff only keeps a server that says so at
                    # once (the real one waits 3 s first) from making a tight loop.
                    log.warning("%s: %s", self.resource, problem.message)
                    rv = ""
                    self._wait(self.backoff.next())
                    continue
                self.stats.errors += 1
                if problem.kind in (PROTOCOL, BAD_OBJECT):
                    rv = ""  # a response we could not decode: we may have missed events
                self._set_status(STALE if self._ever_synced else FAILED, problem)
                delay = self.backoff.next(problem.retry_after)
                if self.spec.optional and problem.kind == FORBIDDEN:
                    delay = max(delay, self.optional_forbidden_retry)
                log.warning("%s: %s (retrying in %.1f s)", self.resource, problem.message, delay)
                self._wait(delay)
        self._set_status(STOPPED, None)

    def _check(self, rv: str) -> None:
        """Raise _Relist unless the server's store has reached `rv` (see run())."""
        try:
            check_resource_version(
                self.api_client,
                self.spec,
                rv,
                namespace=self.namespace,
                request_timeout=self.timeouts,
                on_response=self._track,
            )
        except ApiException as exc:
            if exc.status == 410:
                raise _Relist from None
            raise  # TOO_LARGE included: run() relists for it like for a watch's
        self._check_stopped()

    def _list(self) -> str:
        before = self.resource_version
        found: dict[str, Skipped] = {}
        records, rv = list_all(
            self.api_client,
            self.spec,
            namespace=self.namespace,
            label_selector=self.label_selector,
            page_size=self.page_size,
            request_timeout=self.timeouts,
            on_response=self._track,
            on_skipped=lambda item: found.__setitem__(item.key, item),
        )
        self._check_stopped()
        for key, item in found.items():
            self._note_skipped(key, item)
        self.stats.skipped = found
        self.stats.lists += 1
        self.stats.list_mode = "paginated"
        # Pods: the API cannot select "owned by any DaemonSet" with a label selector —
        # attribution is by the controller ownerReference, not labels (docs/cells.md), and
        # field selectors cannot reach ownerReferences. So every pod is listed and watched,
        # but decoded straight into the compact record (owner_uid "" when not a DaemonSet
        # pod), which is cheap; the consumer drops those records.
        self._replace(records, rv, before)
        return rv

    def _replace(self, records: list[Record], rv: str, before: str) -> None:
        """Hand on a whole list (paginated or streamed), consistent at `rv`."""
        if _older(rv, before):
            # Shown until the next problem, so whoever looks learns why the matrix jumped.
            self._reset = HistoryReset(self.resource, before, rv, self._clock())
            self.stats.history_resets += 1
            log.warning("%s: %s", self.resource, self._reset.message)
        self._emit(Replace(self.spec.replace_kind, records, rv))
        self.backoff.reset()
        self.resource_version = rv

    # ------------------------------------------------------------------ WatchList

    def _use_watch_list(self) -> bool:
        if not self.watch_list:
            return False
        refused = self._watch_list_refused_at
        return refused is None or time.monotonic() - refused >= WATCH_LIST_RETRY_SECONDS

    def _refuse_watch_list(self, why: str) -> None:
        self._watch_list_refused_at = time.monotonic()
        self.stats.watch_list_refused = why
        log.info(
            "%s: the server does not stream lists (%s): listing page by page", self.resource, why
        )

    def _watch_list(self) -> str | None:
        """List as one WatchList stream and keep watching on it (client-go's watchList).

        The request is a watch with sendInitialEvents=true, resourceVersionMatch=NotOlderThan
        and no resourceVersion (a consistent read, like the first page of a paginated list),
        with bookmarks on: the server sends every object as a synthetic ADDED, then one
        BOOKMARK annotated k8s.io/initial-events-end at the snapshot's resourceVersion, then
        ordinary events. The objects are collected until that bookmark and handed on as one
        Replace, then the same stream is followed as a watch.

        Returns the last resourceVersion when the stream ends after the bookmark, or None
        when the caller should list page by page instead: the server refused the request
        (remembered for WATCH_LIST_RETRY_SECONDS), sent an ERROR, or the stream ended before
        the bookmark (nothing was handed on, so nothing is lost). Other failures raise, as
        a paginated list's would.
        """
        started = time.monotonic()
        before = self.resource_version
        try:
            resp = request(
                self.api_client,
                self.spec,
                self.namespace,
                self.label_selector,
                watch=True,
                send_initial_events=True,
                resource_version_match="NotOlderThan",
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_timeout_seconds,
                _request_timeout=self.timeouts,
            )
        except ApiException as exc:
            status = exc.status or 0
            if status in WATCH_LIST_REFUSED_STATUSES:
                self._refuse_watch_list(classify(exc, self._context("watch")).message)
                return None
            if 400 <= status < 500 and status != 429:
                # As client-go: making progress beats insisting. A paginated list is
                # authorized as "list", this stream as "watch"; should the list fail too,
                # that failure is reported, backed off and retried as usual.
                problem = classify(exc, self._context("watch"))
                log.info(
                    "%s: watch-list refused (%s), listing page by page",
                    self.resource,
                    problem.message,
                )
                return None
            raise
        self._track(resp)
        self.stats.watches += 1
        try:
            lines = _lines(resp)
            initial = self._initial_events(lines)
            if initial is None:
                return None
            records, found, rv = initial
            self._check_stopped()
            for key, item in found.items():
                self._note_skipped(key, item)
            self.stats.skipped = found
            self.stats.lists += 1
            self.stats.streamed_lists += 1
            self.stats.list_mode = "watch-list"
            # Served after all (an upgraded server, a gate turned on): forget the refusal.
            self._watch_list_refused_at = None
            self.stats.watch_list_refused = ""
            self._replace(records, rv, before)
            rv, _ = self._follow(lines, rv)
        finally:
            self._untrack(resp)
        self._check_stopped()
        log.debug(
            "%s: watch-list stream ended after %.1f s", self.resource, time.monotonic() - started
        )
        return rv

    def _initial_events(
        self, lines: Iterator[bytes]
    ) -> tuple[list[Record], dict[str, Skipped], str] | None:
        """Read a WatchList stream up to its initial-events-end bookmark: the objects, the
        ones left out, and the snapshot's resourceVersion; None to fall back (see above)."""
        objects: dict[str, Record] = {}
        found: dict[str, Skipped] = {}
        try:
            for line in lines:
                self._check_stopped()
                ev = decode_event(line, self.spec.kind)
                self.stats.last_event_at = time.time()
                if ev.type == "ERROR":
                    problem = from_status(ev.status or {}, self._context("watch"))
                    code = (ev.status or {}).get("code")
                    if code in WATCH_LIST_REFUSED_STATUSES or problem.kind == SERVER_ERROR:
                        # e.g. "the required storage feature RequestWatchProgress is disabled"
                        self._refuse_watch_list(problem.message)
                    else:
                        log.info(
                            "%s: watch-list stream failed (%s)", self.resource, problem.message
                        )
                    return None
                if ev.type == "BOOKMARK":
                    if ev.initial_events_end:
                        return list(objects.values()), found, ev.resource_version
                    continue
                if ev.skipped is not None:
                    key = ev.skipped.key
                    objects.pop(key, None)
                    if ev.type == "DELETED":
                        found.pop(key, None)
                    else:
                        found[key] = ev.skipped
                    continue
                if ev.record is None:
                    continue
                key = record_key(ev.record)
                found.pop(key, None)
                if ev.type == "DELETED":
                    objects.pop(key, None)
                else:
                    objects[key] = ev.record
        except (u3.ReadTimeoutError, u3.ProtocolError) as exc:
            self._check_stopped()
            log.info("%s: watch-list stream cut (%s)", self.resource, type(exc).__name__)
            return None
        self._check_stopped()
        log.info(
            "%s: watch-list stream ended before its initial-events-end bookmark", self.resource
        )
        return None

    def _watch(self, rv: str) -> str:
        """Stream changes after `rv`; returns the last RV seen when the stream ends cleanly."""
        started = time.monotonic()
        try:
            resp = request(
                self.api_client,
                self.spec,
                self.namespace,
                self.label_selector,
                watch=True,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_timeout_seconds,
                _request_timeout=self.timeouts,
            )
        except ApiException as exc:
            if exc.status == 410:
                raise _Relist from None
            raise
        self._track(resp)
        self.stats.watches += 1
        try:
            rv, events = self._follow(_lines(resp), rv)
        finally:
            self._untrack(resp)
        self._check_stopped()
        if events or time.monotonic() - started >= MIN_USEFUL_WATCH_SECONDS:
            self.backoff.reset()
        else:
            self._wait(self.backoff.next())
        return rv

    def _follow(self, lines: Iterator[bytes], rv: str) -> tuple[str, int]:
        """Apply a watch stream's events until it ends: (the last RV seen, events)."""
        events = 0
        try:
            # Only now is the cluster answering again after a failure.
            self._set_status(SYNCED, None)
            for line in lines:
                self._check_stopped()
                ev = decode_event(line, self.spec.kind)
                if ev.type == "ERROR":
                    problem = from_status(ev.status or {}, self._context("watch"))
                    if problem.kind == GONE:
                        raise _Relist
                    if problem.kind == TOO_LARGE:
                        raise _Relist(problem.message)
                    raise ProblemError(problem)
                if ev.resource_version:
                    rv = ev.resource_version
                    self.resource_version = rv
                self.stats.last_event_at = time.time()
                if ev.skipped is not None:
                    self._skip_event(ev.type, ev.skipped)
                    continue
                if ev.type != "BOOKMARK" and ev.record is not None:
                    if self.stats.skipped:
                        self._unskip(ev.record)
                    events += 1
                    self.stats.events += 1
                    self._emit(Change(ev.type, ev.record))
        except (u3.ReadTimeoutError, u3.ProtocolError) as exc:
            self._check_stopped()
            # A quiet stream hit the read timeout, or the connection dropped mid-stream:
            # both are resumed from the last RV. Were the server really gone, the next
            # request fails and the status turns stale then.
            log.info("%s: watch interrupted (%s), resuming", self.resource, type(exc).__name__)
        return rv, events

    # ------------------------------------------------------------------ skipped objects

    def _note_skipped(self, key: str, item: Skipped) -> None:
        """Log an object we leave out, once while it stays unreadable."""
        known = self.stats.skipped.get(key)
        if known is None or known.reason != item.reason:
            log.warning(
                "%s: skipped an object that cannot be read: %s", self.resource, item.describe()
            )

    def _skip_event(self, event_type: str, item: Skipped) -> None:
        """A watched object we cannot decode: leave it out, as the next list would, so an
        older copy does not linger in the matrix; the stream goes on (no relist)."""
        key = item.key
        skipped = dict(self.stats.skipped)  # copy on write: other threads read it
        if event_type == "DELETED":
            skipped.pop(key, None)
        else:
            self._note_skipped(key, item)
            skipped[key] = item
        self.stats.skipped = skipped
        if key:
            self._emit(Change("DELETED", tombstone(item)))

    def _unskip(self, record: Record) -> None:
        key = record_key(record)
        if key in self.stats.skipped:
            skipped = dict(self.stats.skipped)
            del skipped[key]
            self.stats.skipped = skipped

    # ------------------------------------------------------------------ helpers

    def _context(self, verb: str) -> RequestContext:
        return self.spec.context(verb, self.namespace, server_of(self.api_client))

    def _track(self, resp: Any) -> None:
        with self._response_lock:
            self._response = resp
        if self._stop.is_set():  # stop() ran before we could register: abort ourselves
            _abort(resp)
            raise _Stopped

    def _untrack(self, resp: Any) -> None:
        with self._response_lock:
            if self._response is resp:
                self._response = None
        # Best effort: the connection may be broken or already closed by stop().
        with contextlib.suppress(Exception):
            resp.release_conn()

    def _check_stopped(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _set_status(self, state: ConnectionState, problem: ConnectionProblem | None) -> None:
        old = self._status
        if state == SYNCED:
            self._ever_synced = True
        elif problem is not None:
            self._reset = None  # a newer story to tell: the failure
        reset = self._reset if state == SYNCED else None
        if old.state == state and old.problem == problem and old.reset == reset:
            return
        # A stale/failed state keeps its start time while the failure's details change.
        since = old.since if old.state == state else self._clock()
        self._status = Status(state, problem, since, reset)
        self._emit(self._status)

    def _emit(self, event: Event) -> None:
        try:
            self.sink(self.resource, event)
        except Exception:
            # A consumer bug must not kill the reflector thread (the cluster would freeze
            # silently); it is logged loudly instead.
            log.exception("%s: sink failed on %s", self.resource, type(event).__name__)


def _older(rv: str, than: str) -> bool:
    """`rv` is numerically lower than `than`. resourceVersions are opaque to clients: this
    only tells people that a server's history went back (it decides nothing: the server
    compares, see _check), and is False unless both are plain integers (etcd's are)."""
    plain = rv.isascii() and rv.isdecimal() and than.isascii() and than.isdecimal()
    return plain and int(rv) < int(than)


def _abort(resp: Any) -> None:
    """Unblock a thread blocked reading `resp`: shut the socket down (close alone does not
    wake a blocked recv on Linux), then close."""
    for action in ("shutdown", "close"):
        # Either may fail: already closed, released to the pool, or never connected.
        with contextlib.suppress(Exception):
            getattr(resp, action)()


def _lines(resp: Any) -> Iterator[bytes]:
    """Complete JSON lines of a watch stream; a line may span chunks, so buffer until b"\\n"."""
    buf = bytearray()
    for chunk in _chunks(resp):
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if end > start:
                yield bytes(buf[start:end])
            start = end + 1
        del buf[:start]
    if buf.strip():
        # The stream ended inside a line: the connection was cut. That partial line is
        # dropped and the watch resumes from the last complete event.
        raise u3.ProtocolError("watch stream ended mid-line")


def _chunks(resp: Any) -> Iterator[bytes]:
    # The API server streams watches with chunked encoding: yield each chunk as it arrives
    # (stream() would wait for 64 KiB on a non-chunked body; read1 returns what is there).
    if resp.chunked and resp.supports_chunked_reads():
        yield from resp.read_chunked(None, decode_content=True)
    else:
        while chunk := resp.read1(65536):
            yield chunk


# --------------------------------------------------------------------------- cluster


class ClusterWatch:
    """One reflector thread per resource for one cluster, and the cluster's status.

    Before any reflector starts, the server is identified (`identity.py`): an address that
    answers as some other HTTP server (a web page, the dashboard itself) is not polled as if
    it were a failing cluster. The status is then failed with "this is not a Kubernetes API
    server (… answered …)", and the identification is retried slowly
    (`not_kubernetes_retry` seconds); transport failures and 401s there are retried with the
    reflectors' backoff.

    Status, aggregated over the resources:
      connecting  identifying the server, or not all resources listed yet, nothing failing
      synced      every resource listed and watching
      stale       was synced; at least one resource is failing now (since when, why)
      failed      never synced and failing (not Kubernetes, auth, forbidden, TLS, DNS...)
    Optional resources (node events in "default" when one other namespace is watched) are
    left out of it: refused or failing, they only add `notes`, and a refused one is asked
    again every OPTIONAL_FORBIDDEN_RETRY_SECONDS.

    The sink receives every reflector event as `sink(resource, event)`, plus
    `sink(CLUSTER, Status)` whenever the aggregated status changes. It is called from the
    reflector threads (one at a time per resource, concurrently across resources).
    """

    def __init__(
        self,
        api_client: ApiClient,
        sink: Sink,
        resources: tuple[str, ...] | list[str] | None = None,
        namespace: str | None = None,
        *,
        label_selectors: dict[str, str] | None = None,
        autostart: bool = True,
        clock: Callable[[], float] = time.time,
        identify_first: bool = True,
        identify_timeout: float = 10.0,
        not_kubernetes_retry: float = NOT_KUBERNETES_RETRY_SECONDS,
        **reflector_options: Any,
    ):
        self.api_client = api_client
        self.identity: ServerIdentity | None = None
        self._identify_first = identify_first
        self._identify_timeout = identify_timeout
        self._not_kubernetes_retry = not_kubernetes_retry
        self._identify_backoff = Backoff(
            reflector_options.get("backoff_base", 0.5),
            reflector_options.get("backoff_cap", 30.0),
            reflector_options.get("rng"),
        )
        self._identify_stop = threading.Event()
        self._identify_thread: threading.Thread | None = None
        self._sink = sink
        self._clock = clock
        self._cond = threading.Condition()
        self._ever_synced = False
        self._stopped = False
        self._status = Status(CONNECTING, None, clock())
        self._resource_status: dict[str, Status] = {}
        selectors = label_selectors or {}
        self.reflectors = {
            name: Reflector(
                api_client,
                name,
                self._on_event,
                namespace=namespace,
                label_selector=selectors.get(name),
                clock=clock,
                **reflector_options,
            )
            for name in (watched_resources(namespace) if resources is None else resources)
        }
        self._resource_status = {name: r.status for name, r in self.reflectors.items()}
        if autostart:
            self.start()

    def start(self) -> ClusterWatch:
        if not self._identify_first:
            self._start_reflectors()
        elif self._identify_thread is None:
            self._identify_thread = threading.Thread(
                target=self._identify_then_start, name="reflector:identify", daemon=True
            )
            self._identify_thread.start()
        return self

    def _start_reflectors(self) -> None:
        for reflector in self.reflectors.values():
            reflector.start()

    def _identify_then_start(self) -> None:
        server = server_of(self.api_client)
        while not self._identify_stop.is_set():
            try:
                self.identity = identify(self.api_client, self._identify_timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is retried; classify says why
                if self._identify_stop.is_set():
                    return
                problem = classify(exc, RequestContext(verb="get", server=server))
                if problem.kind == NOT_KUBERNETES:
                    delay = self._not_kubernetes_retry
                else:
                    delay = self._identify_backoff.next(problem.retry_after)
                self._set_cluster_failure(problem)
                log.warning("%s: %s (retrying in %.1f s)", server, problem.message, delay)
                self._identify_stop.wait(delay)
                continue
            log.info("%s: %s", server, self.identity.describe())
            with self._cond:
                if self._stopped:
                    return
                self._start_reflectors()
            return

    def _set_cluster_failure(self, problem: ConnectionProblem) -> None:
        with self._cond:
            if self._stopped:
                return
            old = self._status
            if old.state == FAILED and old.problem == problem:
                return
            since = old.since if old.state == FAILED else self._clock()
            self._status = Status(FAILED, problem, since)
            self._sink(CLUSTER, self._status)
            self._cond.notify_all()

    @property
    def status(self) -> Status:
        return self._status

    @property
    def notes(self) -> list[str]:
        """What the synced status leaves out: optional resources refused or failing (node
        events in "default"), one sentence each, deduplicated."""
        notes: list[str] = []
        with self._cond:
            statuses = dict(self._resource_status)
        for name, status in statuses.items():
            if not RESOURCES[name].optional or status.state not in (STALE, FAILED):
                continue
            problem = status.problem
            if problem is not None and problem.kind == FORBIDDEN:
                note = NODE_EVENTS_FORBIDDEN
            else:
                note = f"node events not shown: {problem.message if problem else 'failing'}"
            if note not in notes:
                notes.append(note)
        return notes

    @property
    def resource_status(self) -> dict[str, Status]:
        with self._cond:
            return dict(self._resource_status)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until every resource is listed and watching; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._status.state == SYNCED, timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every reflector and wait (at most `timeout` in all) for their threads.

        Returns promptly even with watches blocked in a read: their sockets are shut down.
        The threads are daemons, so one stuck in a slow connect cannot keep the process up.
        """
        with self._cond:
            self._stopped = True
        self._identify_stop.set()
        for reflector in self.reflectors.values():
            reflector.stop()
        deadline = time.monotonic() + timeout
        if self._identify_thread is not None:
            # Blocked in a request at worst: bounded by identify_timeout, and a daemon.
            self._identify_thread.join(max(0.0, deadline - time.monotonic()))
        for reflector in self.reflectors.values():
            reflector.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ aggregation

    def _on_event(self, resource: str, event: Event) -> None:
        if not isinstance(event, Status):
            self._sink(resource, event)
            return
        with self._cond:
            if self._stopped and event.state != STOPPED:
                return
            self._resource_status[resource] = event
            self._sink(resource, event)
            new = self._aggregate()
            if new is not None:
                self._status = new
                self._sink(CLUSTER, new)
            self._cond.notify_all()

    def _aggregate(self) -> Status | None:
        """The new cluster status, or None if unchanged. Called with the lock held."""
        # Optional resources never decide the cluster's state: they leave notes (above).
        statuses = [
            s for name, s in self._resource_status.items() if not RESOURCES[name].optional
        ] or list(self._resource_status.values())
        failing = [s for s in statuses if s.state in (STALE, FAILED)]
        reset: HistoryReset | None = None
        if all(s.state == STOPPED for s in statuses):
            state, problem, since = STOPPED, None, self._clock()
        elif all(s.state == SYNCED for s in statuses):
            self._ever_synced = True
            state, problem, since = SYNCED, None, self._clock()
            resets = [s.reset for s in statuses if s.reset is not None]
            reset = max(resets, key=lambda r: r.at) if resets else None
        elif failing:
            first = min(failing, key=lambda s: s.since)
            state = STALE if self._ever_synced else FAILED
            problem, since = first.problem, first.since
        else:
            state, problem, since = CONNECTING, None, self._clock()
        old = self._status
        if old.state == state and old.problem == problem and old.reset == reset:
            return None
        if old.state == state and state != STALE and state != FAILED:
            since = old.since
        return Status(state, problem, since, reset)
