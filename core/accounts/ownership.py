"""Reads scoped to one owner, so another user's id behaves exactly like an unknown id.

Every domain whose rows belong to a user (purchases, subscriptions, ledger entries) subclasses
`OwnedRepository`: there is no method that reads by id alone, so a controller cannot forget the
owner filter, and a foreign id becomes a 404 rather than a 403 that would confirm it exists.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import UserOwned
from core.errors import NotFoundError

M = TypeVar("M", bound=UserOwned)


class OwnedRepository(Generic[M]):
    model: ClassVar[type[UserOwned]]
    noun: ClassVar[str] = "object"
    by_id: ClassVar[Select[Any]]
    """One row by id and owner, built once per model: building the statement took more CPU than
    executing it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.by_id = select(cls.model).where(
            cls.model.user_id == bindparam("owner_id"), cls.model.id == bindparam("object_id")
        )

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    def owned(self) -> Select[M]:
        """The base query of every read: only the owner's rows."""
        return select(self.model).where(self.model.user_id == self.owner_id)  # type: ignore[return-value]

    async def find(self, object_id: uuid.UUID) -> M | None:
        result = await self.session.execute(
            self.by_id, {"owner_id": self.owner_id, "object_id": object_id}
        )
        found: M | None = result.scalar_one_or_none()
        return found

    async def get(self, object_id: uuid.UUID) -> M:
        """The owner's row, or the same 404 for a missing and a foreign id."""
        found = await self.find(object_id)
        if found is None:
            raise NotFoundError(f"No {self.noun} {object_id}")
        return found
