"""Readiness checks of the services every process depends on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import msgspec
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

CHECK_TIMEOUT_SECONDS = 2.0


class ComponentState(msgspec.Struct, frozen=True):
    status: str
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.status == "up"


async def _probe(check: Awaitable[object]) -> ComponentState:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return ComponentState("down", f"no answer within {CHECK_TIMEOUT_SECONDS:g}s")
    except Exception as exc:
        return ComponentState("down", f"{type(exc).__name__}: {exc}".strip()[:300])
    return ComponentState("up")


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def check_components(engine: AsyncEngine, redis: Redis) -> dict[str, ComponentState]:
    """Probe PostgreSQL and Redis concurrently, each bounded by a short timeout."""
    database, queue = await asyncio.gather(_probe(_select_one(engine)), _probe(redis.ping()))
    return {"database": database, "redis": queue}
