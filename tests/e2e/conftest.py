"""The e2e tier: a real control plane (built and cached by controlplane/build.sh), started
once per session and stopped at the end, also when a test fails or the run is interrupted.

Only collected tests marked `e2e` use these fixtures; the default run (`make test`)
deselects them (`-m "not e2e"` in pyproject's addopts), so it never builds anything.
"""

from __future__ import annotations

import pytest

from tests.e2e.controlplane.cluster import ControlPlane, build


def _log(message: str) -> None:
    # Visible with -s, and in the captured output of a failing test otherwise.
    print(f"[e2e] {message}", flush=True)


@pytest.fixture(scope="session")
def control_plane(request):
    bins = build(log=_log)  # about a second when the binaries are cached
    plane = ControlPlane.create(bins, log=_log)
    plane.start()
    failed_before = request.session.testsfailed
    try:
        yield plane
    finally:
        failed = request.session.testsfailed > failed_before
        if failed:
            _log(plane.diagnostics())
        plane.stop(keep_logs=failed)
