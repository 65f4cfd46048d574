"""Run the real ASGI app under daphne in a subprocess, for browser tests: websockets need
a real server (pytest-django's live_server speaks only HTTP)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.ports import free_port
from tests.helpers.processes import serving_process

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
    url = f"http://127.0.0.1:{port}"
    with serving_process(
        [DAPHNE, *extra, "-b", "127.0.0.1", "-p", str(port), app],
        ready_url=url + "/accounts/login/",
        log_path=tmp / "daphne.log",
        what="daphne",
        cwd=ROOT,
        env=env,
    ):
        yield url
