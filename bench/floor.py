"""The floor: the least work any design must do to accept a purchase durably.

`POST /accept` stores the body with one asyncpg INSERT (autocommit, so durable when answered) and
pushes its id with one Redis LPUSH: no auth, no validation, no idempotency, no ORM. It runs under
uvicorn with the api's server options and process count (WEB_CONCURRENCY), so our accept
throughput divided by this one is the price of everything Kopilka does on top.
`python -m bench.floor` serves it on FLOOR_PORT.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from litestar import Litestar, Request, get, post
from redis.asyncio import Redis

from core.db import driver_database_url
from core.settings import load_settings

TABLE = """CREATE TABLE IF NOT EXISTS floor_purchases (
    id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"""


@get("/health")
async def health() -> str:
    return "ok"


@post("/accept", status_code=202)
async def accept(request: Request[Any, Any, Any]) -> dict[str, str]:
    purchase_id = uuid.uuid4()
    body = (await request.body()).decode()
    await request.app.state.pool.execute(
        "INSERT INTO floor_purchases (id, body) VALUES ($1, $2)", purchase_id, body
    )
    await request.app.state.redis.lpush("floor:queue", str(purchase_id))
    return {"id": str(purchase_id), "status": "pending"}


@asynccontextmanager
async def resources(app: Litestar) -> AsyncIterator[None]:
    dsn = driver_database_url(os.environ["DATABASE_URL"])
    pool_size = load_settings().database_pool_size  # per process, as the api's
    app.state.pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    app.state.redis = Redis.from_url(os.environ["REDIS_URL"])
    async with app.state.pool.acquire() as connection, connection.transaction():
        # The server's processes start together, and CREATE TABLE IF NOT EXISTS run at the same
        # moment by two of them can still fail on the catalogue's unique index: one at a time.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('floor_purchases'))")
        await connection.execute(TABLE)
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.pool.close()


def create_app() -> Litestar:
    return Litestar(
        [health, accept], lifespan=[resources], logging_config=None, openapi_config=None
    )


def main() -> None:
    uvicorn.run(
        "bench.floor:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ["FLOOR_PORT"]),
        workers=load_settings().web_concurrency,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
