"""Notification actor: a thin wrapper that hands ids to `core.notifications.processor`."""

from __future__ import annotations

import uuid
from functools import cache, partial

import dramatiq

from core.db import get_sessionmaker
from core.notifications.processor import NotificationProcessor, RetryLater
from core.queue import NOTIFICATION_PROCESS, send
from workers.broker import broker
from workers.jobs import current_attempt, job_actor
from workers.resources import rustore
from workers.subscriptions import subscription_sync

PROCESS_MAX_RETRIES = 10  # with the backoff below: about 8 minutes of trying


@cache
def _processor() -> NotificationProcessor:
    return NotificationProcessor(
        get_sessionmaker(),
        rustore(),
        partial(send, broker),
        refresh_subscription=subscription_sync().refresh,
    )


@job_actor(
    NOTIFICATION_PROCESS, max_retries=PROCESS_MAX_RETRIES, min_backoff=1_000, max_backoff=120_000
)
async def process(notification_id: str) -> None:
    """Re-read what a stored notification is about and hand it to the purchase pipeline."""
    try:
        await _processor().run(uuid.UUID(notification_id), last_attempt=current_attempt().is_last)
    except RetryLater as exc:
        raise dramatiq.Retry(str(exc)) from exc
