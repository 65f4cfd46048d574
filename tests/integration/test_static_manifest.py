"""With DAEMONVIZ_STATIC_ROOT (the image's setting) static files are collected into
WhiteNoise's compressed manifest storage: hashed names on the pages, compressed copies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_collectstatic_makes_hashed_compressed_files_the_pages_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env |= {
        "DAEMONVIZ_STATIC_ROOT": str(tmp_path / "static"),
        "DAEMONVIZ_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "DAEMONVIZ_DEBUG": "false",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], env=env, check=True,
                   cwd=ROOT, capture_output=True, timeout=300)  # fmt: skip
    css = sorted((tmp_path / "static" / "css").glob("daemonviz.*.css"))
    assert css, "no hashed copy of daemonviz.css"
    assert Path(str(css[0]) + ".gz").exists()
    code = (
        "from django.templatetags.static import static;"
        "print(static('css/daemonviz.css'), static('js/daemonviz.js'))"
    )
    out = subprocess.run([*manage, "shell", "-c", code], env=env, check=True, cwd=ROOT,
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    assert f"/static/css/{css[0].name}" in out
    assert "/static/js/daemonviz." in out and "/static/js/daemonviz.js " not in out
