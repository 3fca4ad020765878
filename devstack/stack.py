"""The services a local stack needs: the given URLs, or embedded servers started on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core.db import driver_database_url
from devstack import STATE_DIR
from devstack.postgres import EmbeddedPostgres
from devstack.redis import EmbeddedRedis

DEV_DATABASE = "kopilka"
TEST_SUFFIX = "_test"
DEV_POSTGRES_PORT = 54329
DEV_REDIS_PORT = 63799
TEST_REDIS_DB = 1


@dataclass
class Stack:
    """Resolves DATABASE_URL and REDIS_URL, starting embedded servers for the missing ones."""

    environ: dict[str, str]
    postgres: EmbeddedPostgres = field(
        default_factory=lambda: EmbeddedPostgres(STATE_DIR / "postgres", DEV_POSTGRES_PORT)
    )
    redis: EmbeddedRedis = field(
        default_factory=lambda: EmbeddedRedis(STATE_DIR / "redis", DEV_REDIS_PORT)
    )
    started: list[str] = field(default_factory=list)

    def up(self, *, test: bool) -> dict[str, str]:
        """Environment with both URLs set; the test stack gets its own fresh database."""
        env = dict(self.environ)
        database_url = env.get("DATABASE_URL") or self._embedded_postgres_url()
        redis_url = env.get("REDIS_URL") or self._embedded_redis_url(TEST_REDIS_DB if test else 0)
        if test:
            database_url = with_database(database_url, database_name(database_url) + TEST_SUFFIX)
        asyncio.run(ensure_database(database_url, recreate=test))
        env["DATABASE_URL"] = database_url
        env["REDIS_URL"] = redis_url
        return env

    def down(self) -> None:
        """Stop the embedded servers this stack started (not ones that were already running)."""
        if "redis" in self.started:
            self.redis.stop()
        if "postgres" in self.started:
            self.postgres.stop()

    def _embedded_postgres_url(self) -> str:
        if self.postgres.start():
            self.started.append("postgres")
        return self.postgres.url(DEV_DATABASE)

    def _embedded_redis_url(self, db: int) -> str:
        if self.redis.start():
            self.started.append("redis")
        return self.redis.url(db)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or DEV_DATABASE


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def ensure_database(url: str, *, recreate: bool) -> None:
    """Create the database named in `url` (dropping it first when `recreate`)."""
    name = database_name(url)
    async with _server(url) as connection:
        if recreate:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')


async def drop_database(url: str) -> None:
    async with _server(url) as connection:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


@asynccontextmanager
async def _server(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the server's `postgres` database, for creating and dropping others."""
    connection = await asyncpg.connect(with_database(driver_database_url(url), "postgres"))
    try:
        yield connection
    finally:
        await connection.close()
