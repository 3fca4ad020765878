"""Dependencies shared by controllers: a database session per request, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """A session the controller commits explicitly; rolled back if the handler raises."""
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings
