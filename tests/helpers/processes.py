"""Servers the tests start as subprocesses (daphne, the OIDC provider, Redis...): started
with their output in a log file, waited for until they answer, and always stopped —
terminate first, kill when that is not heard within ten seconds."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except OSError:
        return False
    return True


@contextmanager
def serving_process(
    cmd: list[str],
    *,
    ready_url: str,
    log_path: Path,
    what: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 30,
) -> Iterator[subprocess.Popen]:
    """Run `cmd` until the block ends, once `ready_url` answers; a process that exits or
    does not answer within `timeout` fails the test with the tail of its log."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not _answers(ready_url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"{what} did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            yield proc
        finally:
            stop_process(proc)
