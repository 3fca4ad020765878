"""The async SQLAlchemy engine, sessions and the declarative base, and the pooled connections'
own asyncpg connections for the few hot statements run on the driver directly.

Services take an `AsyncSession` (the ledger's changes: the transaction's asyncpg connection) and
never commit on their own; the caller (a controller or an actor) owns the transaction, so each
recovery point in a job is one short, explicit commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, cast

import asyncpg
from sqlalchemy import MetaData, event, exc, func
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime

from core.settings import Settings, get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class UUIDPrimaryKey:
    """A random UUID primary key: ids of user-visible objects must not be guessable."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's own asyncpg connection, on which each statement commits alone.

    For the hottest single statements (core/purchases/repository.py, `PurchaseStatements`):
    a statement run here cost 45 µs of CPU at 20 in flight, against 350 µs through an ORM
    session (its unit of work, SQLAlchemy's execution context and result rows, and the greenlet
    bridge each async call crosses), more than PostgreSQL spends running it. What it gives up is
    SQLAlchemy's statement building and error wrapping, so it suits a few fixed statements only.
    A transaction begun here must end here (`driver_transaction` does that): the pool's reset on
    return does not see it, so a connection left inside one is invalidated, never pooled again.
    A connection the server dropped is still caught on the next checkout
    (`_refuse_closed_connection`).
    """
    async with engine.connect() as connection:
        driver = await _driver(connection)
        try:
            yield driver
        finally:
            if driver.is_in_transaction():
                # A transaction its owner could not end (the connection broke, or the task was
                # cancelled during ROLLBACK): the pool must never hand that connection out again.
                await connection.invalidate()


@asynccontextmanager
async def driver_transaction(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """`driver_connection` inside a transaction: committed when the block ends, rolled back when
    it raises. For a few fixed statements that must commit together (the worker's credit)."""
    async with driver_connection(engine) as connection, connection.transaction():
        yield connection


async def session_driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`'s transaction, for statements run on the driver
    that must commit or roll back with the session's (the ledger's, `LedgerStatements`).

    SQLAlchemy's asyncpg adapter sends BEGIN only with the session's first statement; before
    that a statement sent on the driver would commit alone, so a session that has sent none is
    made to begin first.
    """
    connection = await session.connection()
    driver = await _driver(connection)
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT")
    return driver


async def _driver(connection: AsyncConnection) -> asyncpg.Connection:
    return cast(asyncpg.Connection, (await connection.get_raw_connection()).driver_connection)


def async_database_url(url: str) -> str:
    """Accept the usual `postgres://` and `postgresql://` forms and pick the asyncpg driver."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+asyncpg{sep}{rest}"
    return url


def create_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        async_database_url(settings.database_url),
        pool_size=settings.database_pool_size,
        # No overflow: a connection opened for a burst and closed after it is paid for again at
        # the next burst (TLS negotiation, asyncpg's type introspection, every statement prepared
        # anew), which under steady load was a tenth of the api's CPU. A fixed pool keeps them.
        max_overflow=0,
        pool_timeout=settings.database_pool_timeout,
        connect_args={
            "timeout": settings.database_pool_timeout,
            # A row another transaction holds longer than this fails the statement (503) instead
            # of stalling a request or a job behind it.
            "server_settings": {"lock_timeout": f"{settings.database_lock_timeout * 1000:.0f}"},
        },
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip.

    SQLAlchemy's `pool_pre_ping` sends BEGIN, an empty query and ROLLBACK on every checkout
    with asyncpg: three round trips before each request's first statement. A restarted or killed
    server closes its connections, and asyncpg marks a connection closed as soon as the event loop
    sees that, so asking the driver catches the same restarts for free; the pool then connects
    afresh. A connection that dies unnoticed (a silent network drop) fails its statement instead,
    SQLAlchemy invalidates the pool, and the api answers that one request 503 with Retry-After.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@cache
def get_engine() -> AsyncEngine:
    """The engine of a worker or scheduler process (the api keeps its own in app state)."""
    return create_engine(get_settings())


@cache
def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(get_engine())
