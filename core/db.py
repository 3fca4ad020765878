"""The async SQLAlchemy engine, sessions and the declarative base, and beside each engine an
asyncpg pool (`DriverPool`) for the few hot statements run on the driver directly.

Services take an `AsyncSession` (the ledger's changes: the transaction's asyncpg connection) and
never commit on their own; the caller (a controller or an actor) owns the transaction, so each
recovery point in a job is one short, explicit commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import cache
from typing import Any, cast

import asyncpg
from sqlalchemy import Engine, MetaData, event, exc, func
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime
from sqlalchemy.util import await_only

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
    """A connection from the engine's driver pool, on which each statement commits alone.

    For the hottest single statements (core/purchases/repository.py, `PurchaseStatements`, and
    the worker's credit): a statement run here cost 45 µs of CPU at 20 in flight, against 350 µs
    through an ORM session (its unit of work, SQLAlchemy's execution context and result rows, and
    the greenlet bridge each async call crosses), more than PostgreSQL spends running it. What it
    gives up is SQLAlchemy's statement building and error wrapping, so it suits a few fixed
    statements only. The pool is asyncpg's own (`DriverPool`), not the engine's: a checkout from
    SQLAlchemy's pool crosses the greenlet bridge twice and cost 130 µs, one from asyncpg's 50.
    A transaction begun here must end here (`driver_transaction` does that); a connection left
    inside one is closed, never pooled again.
    """
    async with await _driver_pools[engine.sync_engine].checkout() as connection:
        try:
            yield connection
        finally:
            # A connection that broke is back in the pool already, closed (asyncpg's proxy for it
            # then raises InterfaceError); one left inside a transaction (the task was cancelled
            # during ROLLBACK) must never be handed out again.
            with suppress(asyncpg.InterfaceError):
                if connection.is_in_transaction():
                    connection.terminate()


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
    raw = await connection.get_raw_connection()
    driver = cast(asyncpg.Connection, raw.driver_connection)
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT")
    return driver


def async_database_url(url: str) -> str:
    """Accept the usual `postgres://` and `postgresql://` forms and pick the asyncpg driver."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+asyncpg{sep}{rest}"
    return url


def driver_database_url(url: str) -> str:
    """The same URL as asyncpg itself takes it: `postgresql://`, whichever form was given."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql{sep}{rest}" if scheme.startswith("postgres") else url


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
            "server_settings": lock_timeout_setting(settings),
        },
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    driver_pool = _driver_pools[engine.sync_engine] = DriverPool(settings)
    event.listen(engine.sync_engine, "engine_disposed", driver_pool.close_in_dispose)
    return engine


def lock_timeout_setting(settings: Settings) -> dict[str, str]:
    """A row another transaction holds longer than this fails the statement (503) instead of
    stalling a request or a job behind it."""
    return {"lock_timeout": f"{settings.database_lock_timeout * 1000:.0f}"}


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


class DriverPool:
    """asyncpg's pool beside an engine's, for `driver_connection`: the same database, size,
    timeouts and lock timeout, opened in the event loop of its first checkout (asyncpg binds a
    pool to a loop) and closed with the engine (`engine.dispose()`).

    Connections are opened as needed and closed after five idle minutes. The reset on return is
    only asyncpg's own bookkeeping, not its default RESET ALL, UNLISTEN and unlock round trip:
    these connections run fixed statements that leave no session state behind, and
    `driver_connection` closes one left inside a transaction.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None

    async def checkout(self) -> Any:
        """asyncpg's acquire context, within the pool timeout (then TimeoutError: a 503)."""
        if self._pool is None:
            self._pool = self._create()
        # Initializes it once, then returns at once. With no connections to open first it does
        # not yield to the loop, so two first checkouts cannot both start it.
        pool = await self._pool
        return pool.acquire(timeout=self.settings.database_pool_timeout)

    def _create(self) -> asyncpg.Pool:
        settings = self.settings
        return asyncpg.create_pool(
            driver_database_url(settings.database_url),
            min_size=0,
            max_size=settings.database_pool_size,
            timeout=settings.database_pool_timeout,
            server_settings=lock_timeout_setting(settings),
            reset=_keep_session,
        )

    def close_in_dispose(self, _engine: Engine) -> None:
        """The engine's `engine_disposed` event, which SQLAlchemy fires inside its greenlet
        bridge, so the pool's (awaitable) close can be awaited there."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await_only(self._close(pool))

    async def _close(self, pool: asyncpg.Pool) -> None:
        """Close gracefully, which waits for every connection to come back; within the checkout
        timeout, as disposing SQLAlchemy's pool does not wait for its checked-out ones."""
        try:
            await asyncio.wait_for(pool.close(), self.settings.database_pool_timeout)
        except TimeoutError:
            pool.terminate()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """`DriverPool`'s reset: nothing to undo (see there)."""


_driver_pools: weakref.WeakKeyDictionary[Engine, DriverPool] = weakref.WeakKeyDictionary()
"""Each engine's driver pool, so `driver_connection(engine)` serves every caller of an engine."""


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@cache
def get_engine() -> AsyncEngine:
    """The engine of a worker or scheduler process (the api keeps its own in app state)."""
    return create_engine(get_settings())


@cache
def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(get_engine())
