"""Dependencies shared by controllers: a database session per request, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """A session the controller commits explicitly; rolled back if the handler raises.

    A connection that broke under a statement sent on the driver directly (the ledger's,
    `core.db.session_driver`) is unknown to SQLAlchemy, so its ROLLBACK fails too: the connection
    is then discarded, and the handler's own error (an outage: 503) is what the client sees,
    not the rollback's (a 500).
    """
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            try:
                await session.rollback()
            except SQLAlchemyError:
                await session.invalidate()
            raise


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings
