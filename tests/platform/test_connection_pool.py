"""Pooled database connections: one the server closed is replaced at checkout, without a ping;
one left inside a transaction is never handed out again; a session's driver connection is inside
the session's transaction; the driver pool sends nothing between checkouts, gives up after the
pool timeout and closes with its engine."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine, create_sessionmaker, driver_connection, session_driver
from core.settings import Settings

BACKEND_PID = text("SELECT pg_backend_pid()")


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(BACKEND_PID)).scalar_one())


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    settings: Settings, engine: AsyncEngine
) -> None:
    own = create_engine(msgspec.structs.replace(settings, database_pool_size=1))
    try:
        pooled = await _backend_pid(own)
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
        await asyncio.sleep(0.2)  # the pooled connection's event loop reads the server's goodbye

        replacement = await _backend_pid(own)  # would fail on the dead connection

        assert replacement != pooled
    finally:
        await own.dispose()


async def test_checkout_sends_nothing_to_the_server(settings: Settings) -> None:
    """A request's first statement is its first round trip: SQLAlchemy's pre-ping would send an
    empty query (wrapped in BEGIN and ROLLBACK) at every checkout."""
    own = create_engine(msgspec.structs.replace(settings, database_pool_size=1))
    sent: list[str] = []
    try:
        async with own.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            driver.add_query_logger(lambda record: sent.append(record.query.strip()))

        await _backend_pid(own)

        # The statement itself runs as a prepared statement, which the logger does not see.
        assert sent == ["BEGIN;", "ROLLBACK;"]
    finally:
        await own.dispose()


async def test_a_driver_connection_left_in_a_transaction_is_not_pooled_again(
    settings: Settings,
) -> None:
    """The driver pool's reset on return sends nothing, so a block that could not end its
    transaction (a broken connection, a cancelled ROLLBACK) must not hand the next caller a
    connection still inside it."""
    own = create_engine(msgspec.structs.replace(settings, database_pool_size=1))
    try:
        async with driver_connection(own) as connection:
            await connection.execute("BEGIN")
            abandoned = connection.get_server_pid()

        async with driver_connection(own) as connection:
            assert connection.get_server_pid() != abandoned
            assert not connection.is_in_transaction()
    finally:
        await own.dispose()


async def test_a_sessions_driver_connection_is_inside_the_sessions_transaction(
    engine: AsyncEngine,
) -> None:
    """SQLAlchemy begins lazily; statements sent on the driver before the session sent one of its
    own would otherwise commit alone, outside the session's rollback."""
    async with create_sessionmaker(engine)() as session:
        driver = await session_driver(session)
        assert driver.is_in_transaction()
        await session.rollback()
        assert not driver.is_in_transaction()


async def test_a_driver_checkout_sends_nothing_to_the_server(settings: Settings) -> None:
    """asyncpg's default reset on return is a round trip (RESET ALL, UNLISTEN, unlock) that
    the driver pool's fixed statements do not need."""
    own = create_engine(msgspec.structs.replace(settings, database_pool_size=1))
    sent: list[str] = []
    try:
        async with driver_connection(own) as connection:
            pid = connection.get_server_pid()
            connection.add_query_logger(lambda record: sent.append(record.query))
        async with driver_connection(own) as connection:
            assert connection.get_server_pid() == pid

        assert sent == []
    finally:
        await own.dispose()


async def test_a_driver_connection_the_server_closed_is_replaced_at_checkout(
    settings: Settings, engine: AsyncEngine
) -> None:
    own = create_engine(msgspec.structs.replace(settings, database_pool_size=1))
    try:
        async with driver_connection(own) as connection:
            pooled = connection.get_server_pid()
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
        await asyncio.sleep(0.2)

        async with driver_connection(own) as connection:
            assert await connection.fetchval("SELECT pg_backend_pid()") != pooled
    finally:
        await own.dispose()


async def test_a_driver_checkout_gives_up_after_the_pool_timeout(settings: Settings) -> None:
    """A saturated pool fails fast (TimeoutError, which the api answers 503), never queues on."""
    tight = msgspec.structs.replace(settings, database_pool_size=1, database_pool_timeout=0.2)
    own = create_engine(tight)
    try:
        async with driver_connection(own):
            with pytest.raises(TimeoutError):
                async with driver_connection(own):
                    pass
    finally:
        await own.dispose()


async def test_disposing_the_engine_closes_its_driver_connections(
    settings: Settings, engine: AsyncEngine
) -> None:
    own = create_engine(settings)
    async with driver_connection(own) as connection:
        pid = connection.get_server_pid()

    await own.dispose()

    async with engine.connect() as admin:
        still_open = await admin.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    assert still_open == 0
