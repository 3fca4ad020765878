from __future__ import annotations

import os
import socket
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.diagnostics.models import DiagnosticPing
from core.diagnostics.repository import DiagnosticPingRepository
from core.errors import NotFoundError
from core.logging import current_request_id

log = structlog.get_logger(__name__)


async def create_ping(
    session: AsyncSession, source: str, note: str | None = None
) -> DiagnosticPing:
    ping = DiagnosticPing(
        source=source, note=note, request_id=current_request_id(), created_at=utcnow()
    )
    return await DiagnosticPingRepository(session).add(ping)


async def get_ping(session: AsyncSession, ping_id: uuid.UUID) -> DiagnosticPing:
    ping = await DiagnosticPingRepository(session).get(ping_id)
    if ping is None:
        raise NotFoundError(f"No diagnostic ping {ping_id}")
    return ping


async def process_ping(session: AsyncSession, ping_id: uuid.UUID) -> bool:
    """Record that a worker handled the ping; False when it was already handled or is unknown."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    processed = await DiagnosticPingRepository(session).mark_processed(ping_id, utcnow(), worker)
    log.info("diagnostics.ping.processed", ping_id=str(ping_id), first_time=processed)
    return processed
