"""The package as a user installs it: a wheel built from the committed files (in a copy, so
the build leaves nothing in the checkout), installed into a fresh virtualenv that has
nothing else — no Django, no project on sys.path. Built once per test session.

The build and the install reach PyPI (setuptools for the isolated build, the CLI's
dependencies), as `pip install` does for a user; pip's cache makes later runs quicker.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def run(
        self, *argv: str, env: dict[str, str] | None = None, **kw
    ) -> subprocess.CompletedProcess:
        """Run a command of the venv (`daemonviz`, `kubectl-daemonviz`, `python`), from a
        directory outside the checkout so nothing of it is importable by accident."""
        exe = argv[0] if "/" in argv[0] else str(self.bin / argv[0])
        return subprocess.run(
            [exe, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.venv,
            env=env,
            **kw,
        )


def _tracked_copy(dest: Path) -> Path:
    files = subprocess.run(
        [
            "git",
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "pyproject.toml",
            "README.md",
            "dashboard",
            "daemonviz",
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for rel in filter(None, files):
        target = dest / rel.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel.decode(), target)
    return dest


def build_and_install(tmp: Path) -> Installed:
    src = _tracked_copy(tmp / "src")
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = dist.glob("daemonviz-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {wheel.name} failed:\n{proc.stderr[-3000:]}")
    return Installed(venv=venv, wheel=wheel)
