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


def pytest_collection_modifyitems(config, items):
    """Browser tests run last. Playwright's sync API drives its own asyncio loop in the
    main thread, and after the browser tests pytest-asyncio could not start another one
    there ("Runner.run() cannot be called from a running event loop": the collector-crash
    fault tests failed in a full run, and pass alone). Every other tier runs first."""
    browser = Path(__file__).parent / "browser"
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(browser))
