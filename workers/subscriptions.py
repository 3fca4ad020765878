"""Subscription actors: thin wrappers that hand ids to `core.subscriptions.pipeline`."""

from __future__ import annotations

import uuid
from functools import cache

import dramatiq

from core.db import get_engine
from core.purchases.pipeline import RetryLater
from core.queue import SUBSCRIPTION_CHECK, SUBSCRIPTION_VERIFY
from core.subscriptions.pipeline import SubscriptionSync
from core.subscriptions.schedule import CheckPolicy
from workers.broker import settings
from workers.jobs import current_attempt, job_actor
from workers.resources import rustore

VERIFY_MAX_RETRIES = 15  # with the backoff below: about 40 minutes of trying
CHECK_MAX_RETRIES = 5  # then the claim lease runs out and the scheduler sends it again


@cache
def subscription_sync() -> SubscriptionSync:
    return SubscriptionSync(get_engine(), rustore(), CheckPolicy.from_settings(settings))


@job_actor(
    SUBSCRIPTION_VERIFY, max_retries=VERIFY_MAX_RETRIES, min_backoff=1_000, max_backoff=300_000
)
async def verify(subscription_id: str) -> None:
    """Verify a submitted subscription with RuStore and bind it to its payload's owner."""
    try:
        await subscription_sync().verify(
            uuid.UUID(subscription_id), last_attempt=current_attempt().is_last
        )
    except RetryLater as exc:
        raise dramatiq.Retry(str(exc)) from exc


@job_actor(SUBSCRIPTION_CHECK, max_retries=CHECK_MAX_RETRIES, min_backoff=1_000, max_backoff=60_000)
async def check(subscription_id: str) -> None:
    """Re-read a verified subscription from RuStore, re-derive it and set its next check."""
    await subscription_sync().check(uuid.UUID(subscription_id))
