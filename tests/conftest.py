"""Shared fixtures: a real redis-server (the bundled one, AOF on) for the session, flushed per
test; the real app served by uvicorn on a loopback port; platforms with real API keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from tests.helpers import UNTHROTTLED, make_admin_key, make_platform
from tests.live import LiveService, start_service
from tests.workers.conftest import Workers

MiB = 1024 * 1024


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-chaos",
        action="store_true",
        help="run the full forms of tests/reliability and of the S6 flood",
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec").start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "var",
        max_upload_bytes=4 * MiB,
        max_image_pixels=40_000_000,
        max_request_json_bytes=256 * 1024,
        **UNTHROTTLED,
    )


@pytest.fixture
def service(settings: Settings, redis_url: str) -> Iterator[LiveService]:
    live = start_service(settings, redis_url)
    yield live
    live.stop()


@pytest.fixture
def client(service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as http:
        yield http


@pytest.fixture
def api_key(settings: Settings, redis_url: str) -> str:
    return make_platform(settings, redis_url, "ExampleTube")


@pytest.fixture
def admin_key(settings: Settings, redis_url: str) -> str:
    return make_admin_key(settings, redis_url)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Real worker processes on the test Redis (started by the test), stopped afterwards."""
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    pool = Workers(redis_url, log_dir)
    yield pool
    pool.stop_all()
