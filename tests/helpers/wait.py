"""Waiting for a condition instead of sleeping for a fixed time: a test that sleeps past a
lock's TTL or a snapshot interval fails on a loaded machine and wastes time on an idle one.

`wait_until` polls `predicate` until it is true and raises AssertionError naming `what`
(and the text `details()` returns then, e.g. a server's log) when `timeout` seconds pass
first. `poll` does the same but returns the outcome, for `assert poll(...), "why"` or a
retry.
`async_wait_until` / `async_poll` are the twins for async tests; with `in_thread=True`
the predicate runs in a worker thread (one that does blocking I/O, e.g. Redis).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def _failure(timeout: float, what: str, details: Callable[[], str] | None) -> AssertionError:
    message = f"timed out after {timeout} s waiting for {what or 'the condition'}"
    return AssertionError(message + ("\n" + details() if details else ""))


def poll(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """True as soon as `predicate()` is; False when it still is not after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    what: str = "",
    *,
    interval: float = 0.05,
    details: Callable[[], str] | None = None,
) -> None:
    if not poll(predicate, timeout, interval):
        raise _failure(timeout, what, details)


async def async_poll(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    in_thread: bool = False,
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        done = await asyncio.to_thread(predicate) if in_thread else predicate()
        if done:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    what: str = "",
    *,
    interval: float = 0.05,
    in_thread: bool = False,
    details: Callable[[], str] | None = None,
) -> None:
    if not await async_poll(predicate, timeout, interval, in_thread=in_thread):
        raise _failure(timeout, what, details)
