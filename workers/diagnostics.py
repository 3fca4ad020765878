from __future__ import annotations

import uuid

from core.db import get_sessionmaker
from core.diagnostics import service
from core.queue import DIAGNOSTICS_PING
from workers.jobs import job_actor


@job_actor(DIAGNOSTICS_PING, max_retries=3)
async def ping(ping_id: str) -> None:
    """Mark a diagnostic ping processed: proof that a worker took a job off the queue."""
    async with get_sessionmaker()() as session:
        await service.process_ping(session, uuid.UUID(ping_id))
        await session.commit()
