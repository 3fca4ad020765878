"""Liveness and readiness, with real outages: a Redis server stopped and started again."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec

from api.app import create_app
from api.request_context import RequestContext
from core.settings import Settings
from devstack.ports import free_port
from devstack.redis import EmbeddedRedis
from tests.fixtures.platform import serve


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")

    assert live.status_code == 200
    assert live.json() == {"status": "up"}
    assert ready.status_code == 200
    assert ready.json()["components"] == {
        "database": {"status": "up", "error": None},
        "redis": {"status": "up", "error": None},
    }


async def test_ready_turns_503_naming_redis_while_it_is_down(
    settings: Settings, tmp_path: Path
) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis")
    port = free_port()
    redis_server.start(port)
    app = create_app(msgspec.structs.replace(settings, redis_url=redis_server.url()))
    try:
        async with serve(RequestContext(app)) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/health/ready")).status_code == 200

            redis_server.stop()
            down = await client.get("/health/ready")
            assert down.status_code == 503
            assert down.json()["status"] == "down: redis"
            assert down.json()["components"]["redis"]["status"] == "down"
            assert down.json()["components"]["database"]["status"] == "up"
            assert (await client.get("/health/live")).status_code == 200

            redis_server.start(port)
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        redis_server.stop()


async def test_ready_names_the_database_when_postgres_is_unreachable(settings: Settings) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(msgspec.structs.replace(settings, database_url=unreachable))
    async with serve(RequestContext(app)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["status"] == "down: database"
    assert "Error" in response.json()["components"]["database"]["error"]
