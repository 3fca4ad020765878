"""The services a local stack needs: the given URLs, or embedded servers started on demand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg

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
            database_url = _with_database(database_url, _database_name(database_url) + TEST_SUFFIX)
        asyncio.run(_ensure_database(database_url, recreate=test))
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


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or DEV_DATABASE


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def _ensure_database(url: str, *, recreate: bool) -> None:
    """Create the database named in `url` (dropping it first for a test run)."""
    name = _database_name(url)
    admin_url = _with_database(url.replace("+asyncpg", ""), "postgres")
    connection = await asyncpg.connect(admin_url)
    try:
        if recreate:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
