"""Shared integration fixtures: a registry free of the DB's collectors, and session-wide
real servers for the scale-out tests (tests/helpers/services.py)."""

from __future__ import annotations

import pytest

from tests.helpers import services
from tests.helpers.processes import stop_process


@pytest.fixture
def no_embedded_collectors(settings):
    """Tests register their own collectors; the ASGI app must not start the DB's ones."""
    from dashboard.collect.registry import registry

    settings.DAEMONVIZ_EMBEDDED_COLLECTOR = False
    registry.clear()
    yield
    registry.clear()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = services.start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_process(server.proc)


@pytest.fixture(scope="session")
def postgres_server():
    pg = services.start_postgres()
    yield pg
    services.stop_postgres(pg)


@pytest.fixture
def redis_client(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()
