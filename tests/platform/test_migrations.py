"""Migrations apply, reverse and re-apply cleanly, and describe exactly what the models declare."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from core.db import async_database_url
from core.models import Base
from devstack.stack import database_name, drop_database, ensure_database, with_database
from tests.fixtures.processes import PROJECT_ROOT


@pytest.fixture(scope="module")
def scratch_database_url(base_env: dict[str, str]) -> Iterator[str]:
    """A database of its own, so reversing migrations cannot disturb the shared test database."""
    url = base_env["DATABASE_URL"]
    scratch = with_database(url, database_name(url) + "_migrations")
    asyncio.run(ensure_database(scratch, recreate=True))
    yield scratch
    asyncio.run(drop_database(scratch))


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def test_upgrade_downgrade_upgrade(scratch_database_url: str) -> None:
    config = alembic_config(scratch_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def test_models_match_migrations(scratch_database_url: str) -> None:
    command.upgrade(alembic_config(scratch_database_url), "head")

    async def compare() -> list[Any]:
        engine = create_async_engine(async_database_url(scratch_database_url))
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        await engine.dispose()
        return differences

    assert asyncio.run(compare()) == []
