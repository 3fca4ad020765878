from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.diagnostics.models import DiagnosticPing


class DiagnosticPingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, ping: DiagnosticPing) -> DiagnosticPing:
        self.session.add(ping)
        await self.session.flush()
        return ping

    async def get(self, ping_id: uuid.UUID) -> DiagnosticPing | None:
        return await self.session.get(DiagnosticPing, ping_id)

    async def mark_processed(self, ping_id: uuid.UUID, at: dt.datetime, worker: str) -> bool:
        """Set `processed_at` once; a redelivered message finds it set and changes nothing."""
        result = await self.session.execute(
            update(DiagnosticPing)
            .where(DiagnosticPing.id == ping_id, DiagnosticPing.processed_at.is_(None))
            .values(processed_at=at, processed_by=worker)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
