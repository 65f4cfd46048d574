from pathlib import Path

import pytest

# Captured Kubernetes objects, committed with the tests (provenance in SOURCES.md there).
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"fixtures not found at {FIXTURES}")
    return FIXTURES
