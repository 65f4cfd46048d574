import sys
from pathlib import Path

import pytest

# Captured Kubernetes objects, committed with the tests (provenance in SOURCES.md there).
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(autouse=True)
def _fresh_connection_test_rate():
    """Test connection's per-admin rate lives in process memory: a user pk reused by a later
    test must not inherit an earlier test's count."""
    yield
    connection = sys.modules.get("dashboard.clusters.connection")
    if connection is not None:  # only tests that used it can have counted anything
        connection.rate_limit.reset()
