"""Sending jobs from request handlers without ever stalling them on the queue.

Sends go through `AsyncEnqueuer` on the api's asyncio Redis client, never a thread. When Redis is
unreachable, the sender stops trying for a short cool-down: requests keep answering at full
speed, and the rows they committed are sent later by the scheduler's sweeper. PostgreSQL, not
Redis, is what makes an accepted request durable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import structlog
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from core.queue import AsyncEnqueuer, Job

log = structlog.get_logger(__name__)


class JobSender:
    def __init__(self, enqueuer: AsyncEnqueuer, cooldown_seconds: float = 5.0) -> None:
        self.enqueuer = enqueuer
        self.cooldown_seconds = cooldown_seconds
        self._skip_until = 0.0

    async def send(self, job: Job, *args: Any) -> bool:
        """True when the message is in the queue; False when it is left for the sweeper."""
        if time.monotonic() < self._skip_until:
            return False
        try:
            await self.enqueuer.send(job, *args)
        except redis.RedisError as exc:
            self._skip_until = time.monotonic() + self.cooldown_seconds
            log.warning("queue.unreachable", job=job.actor, error=str(exc))
            return False
        return True


async def send_after_commit(
    state: State,
    job: Job,
    row_id: uuid.UUID,
    leave_for_sweep: Callable[[AsyncSession, uuid.UUID], Awaitable[None]],
) -> None:
    """Send the job of a row just committed; if the queue is unreachable, mark the row so the
    scheduler's sweep sends it instead, in a session of its own (the usual case needs none)."""
    sender: JobSender = state.job_sender
    if not await sender.send(job, str(row_id)):
        async with state.sessionmaker() as session:
            await leave_for_sweep(session, row_id)
            await session.commit()
