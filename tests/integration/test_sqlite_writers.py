"""The default SQLite database (`make run`) under concurrent writers, as one daphne process
writes from several threads: a writer that waits behind a long write transaction queues and
succeeds, where SQLite's defaults (deferred transactions, 5 s) answered "database is locked"
— an admin save in the browser suite once failed that way."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.daphne import ROOT, manage

pytestmark = pytest.mark.slow

# Run in a fresh interpreter: the test process's own database is pytest-django's.
_WRITERS = r"""
import threading, time
import django
django.setup()
from django.contrib.auth.models import Group
from django.db import connection, transaction

with connection.cursor() as c:
    c.execute("PRAGMA journal_mode")
    print("journal", c.fetchone()[0])

held = threading.Event()

def long_writer():
    with transaction.atomic():
        Group.objects.create(name="long")
        held.set()
        time.sleep(6.5)  # longer than SQLite's default busy timeout of 5 s
    connection.close()

t = threading.Thread(target=long_writer)
t.start()
held.wait()
start = time.monotonic()
with transaction.atomic():
    Group.objects.create(name="waiting")
print("waited", round(time.monotonic() - start, 1))
t.join()
print("groups", sorted(Group.objects.values_list("name", flat=True)))
"""


def test_a_writer_behind_a_long_transaction_waits_instead_of_failing(tmp_path):
    env = {**os.environ, "DAEMONVIZ_SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    env.pop("DATABASE_URL", None)
    env["DJANGO_SETTINGS_MODULE"] = "daemonviz.settings"
    manage(env, "migrate", "--noinput")
    out = subprocess.run(
        [sys.executable, "-c", _WRITERS], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert lines["journal"] == "wal"  # readers go on beside the writer
    assert float(lines["waited"]) >= 5.0  # it really queued behind the long writer
    assert lines["groups"] == "['long', 'waiting']"
