"""Purchase actors: thin wrappers that hand ids to `core.purchases.pipeline`."""

from __future__ import annotations

import uuid
from functools import cache

import dramatiq

from core.db import get_engine
from core.purchases.pipeline import PurchaseVerifier, RefundSync, RetryLater
from core.queue import PURCHASE_SYNC, PURCHASE_VERIFY
from workers.broker import settings
from workers.jobs import current_attempt, job_actor
from workers.resources import rustore

VERIFY_MAX_RETRIES = 15  # with the backoff below: about 40 minutes of trying


@cache
def _verifier() -> PurchaseVerifier:
    return PurchaseVerifier(get_engine(), rustore(), settings.rustore_app_id)


@cache
def _refund_sync() -> RefundSync:
    return RefundSync(get_engine(), rustore())


@job_actor(PURCHASE_VERIFY, max_retries=VERIFY_MAX_RETRIES, min_backoff=1_000, max_backoff=300_000)
async def verify(purchase_id: str) -> None:
    """Verify, confirm and credit one purchase; a final purchase is left alone."""
    try:
        await _verifier().run(uuid.UUID(purchase_id), last_attempt=current_attempt().is_last)
    except RetryLater as exc:
        raise dramatiq.Retry(str(exc)) from exc


@job_actor(PURCHASE_SYNC, max_retries=10)
async def sync(purchase_id: str) -> None:
    """Re-read a credited purchase and take the points back if RuStore refunded it."""
    await _refund_sync().run(uuid.UUID(purchase_id))
