"""Real Redis and PostgreSQL servers for the scale-out tests, on free 127.0.0.1 ports in
temporary directories, started once per session and stopped at its end.

Debian's packages provide them (`make service-deps` installs `redis-server` and
`postgresql`). PostgreSQL refuses to run as root, so as root (CI) it runs as the `postgres`
user the package creates, through `runuser`. Missing binaries skip the tests that need
them, except under CI=true, where they fail: a green CI must not hide a missing install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ports import free_port

REDIS_SERVER = "/usr/bin/redis-server"


def _missing(what: str) -> None:
    message = f"{what} is not installed (make service-deps installs Debian's package)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout=20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(tmp: Path) -> Redis:
    if not os.path.exists(REDIS_SERVER):
        _missing("redis-server")
    port = free_port()
    log = tmp / "redis.log"
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp), "--logfile", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.touch()
    _wait_port(port, proc, "redis-server", log)
    return Redis(port, proc)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    port: int
    datadir: Path
    bindir: Path
    as_user: list[str]

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_postgres() -> Postgres:
    bindir = _pg_bin()
    if bindir is None:
        _missing("postgresql")
    # Not under pytest's tmp dirs: those are private to root, and postgres runs as its user.
    base = Path(tempfile.mkdtemp(prefix="daemonviz-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            _missing("runuser")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    data, log = base / "data", base / "postgres.log"
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--no-sync", "--no-instructions"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
         "-w", "-t", "30", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    return Postgres(port, data, bindir, as_user)


def stop_postgres(pg: Postgres) -> None:
    subprocess.run(
        [*pg.as_user, str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "-m", "immediate",
         "-w", "stop"],
        capture_output=True,
    )  # fmt: skip
    shutil.rmtree(pg.datadir.parent, ignore_errors=True)
