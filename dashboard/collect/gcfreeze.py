"""Keep the garbage collector's full passes short in a long-running dashboard process.

A full (generation 2) collection walks every container object the process tracks. After
a big initial sync that is millions of them — a simulated 5,000-node cluster alone keeps
~4 million dicts and lists — and one pass stalls every thread, the event loop included,
for over a second (measured 1.2 s; it showed as a 2.1 s outlier in the browser
benchmark's change → DOM latency). What a sync builds lives as long as the process, so
once it is in place we collect what is garbage already and move the survivors to the
permanent generation (`gc.freeze`), which full passes skip. Reference counting still
frees frozen objects as they are dropped; only frozen reference cycles would be kept.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)
_lock = threading.Lock()


def freeze_long_lived(reason: str) -> float:
    """Collect, then freeze what survives; returns the seconds it took (call off the event
    loop: the collection itself is one more full pass)."""
    with _lock:
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        took = time.perf_counter() - started
    log.info("froze %d long-lived objects after %s (%.2f s)", gc.get_freeze_count(), reason, took)
    return took
