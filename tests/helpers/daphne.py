"""Run the real ASGI app under daphne in a subprocess, for browser tests: websockets need
a real server (pytest-django's live_server speaks only HTTP)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")


def manage(env: dict, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        input=input,
    )


@contextmanager
def running_daphne(
    tmp: Path, env: dict, app: str = "daemonviz.asgi:application", *extra: str
) -> Iterator[str]:
    """Serve `app` on a free 127.0.0.1 port until the block ends; yields the base URL.
    The log stays in `tmp/daphne.log` (its tail is printed when start-up fails)."""
    port = free_port()
    log_path = tmp / "daphne.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [DAPHNE, *extra, "-b", "127.0.0.1", "-p", str(port), app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(url, proc, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_until_serving(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/accounts/login/", timeout=1)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("daphne did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
