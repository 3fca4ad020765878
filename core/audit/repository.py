from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import User
from core.audit.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(self, actor_user_id: uuid.UUID, values: dict[str, Any]) -> AuditEntry:
        """Insert an entry; the actor's email is copied from `users` by the same statement."""
        email = select(User.email).where(User.id == actor_user_id).scalar_subquery()
        statement = (
            insert(AuditEntry)
            .values(actor_user_id=actor_user_id, actor_email=email, **values)
            .returning(AuditEntry)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def page(
        self,
        target_type: str | None,
        target_id: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Newest first, keyset-paged on the id (the primary key, or the target index)."""
        query = select(AuditEntry)
        if target_type is not None:
            query = query.where(AuditEntry.target_type == target_type)
        if target_id is not None:
            query = query.where(AuditEntry.target_id == target_id)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        query = query.order_by(AuditEntry.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())
