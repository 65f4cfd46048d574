"""The fault suite: what a hostile, broken or restored cluster does to a collector.

Every test collected here carries the `faults` marker (`pytest -m faults` runs just these;
`make test` runs them with the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
