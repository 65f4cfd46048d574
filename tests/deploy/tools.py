"""The real deployment tools the tests drive: helm (built from its Go module by
tests/e2e/controlplane/build.sh, `make deploy-tools`) and promtool (Debian's `prometheus`
package). A missing tool skips the tests that need it, except under CI=true, where it
fails: a green CI must not hide a missing install step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "daemonviz"

sys.path.insert(0, str(DEPLOY / "helm"))
import sync  # noqa: E402  (deploy/helm/sync.py: the chart -> deploy/ renderer)

sys.path.pop(0)


def _missing(what: str) -> None:
    message = f"{what} is not installed (`make deploy-tools` installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def helm() -> str:
    path = sync.default_helm()
    if not (os.path.isabs(path) and os.access(path, os.X_OK)) and not shutil.which(path):
        _missing("helm")
    return path


def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        _missing("promtool")
    return path


def run(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
        )
    return proc
