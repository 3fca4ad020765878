"""RuStore's subscription notifications alone keep the subscription right: no scheduler run and no
app call between the change in RuStore and Kopilka knowing it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_sessionmaker
from core.notifications.models import NotificationStatus
from core.subscriptions.models import OPEN_VERIFICATION, Subscription
from tests.fixtures.accounts import Account
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.subscriptions import WITHIN_SECONDS, Subscriber
from tests.fixtures.webhooks import Webhooks

pytestmark = pytest.mark.usefixtures("pipeline_worker")


async def verified_from_rustore(engine: AsyncEngine, rustore_purchase_id: str) -> Subscription:
    """Wait until Kopilka's row of the subscription RuStore's purchase id names is decided."""
    query = select(Subscription).where(Subscription.rustore_purchase_id == rustore_purchase_id)
    async with asyncio.timeout(WITHIN_SECONDS):
        while True:
            async with create_sessionmaker(engine)() as session:
                row = (await session.execute(query)).scalar_one_or_none()
            if row is not None and row.verification not in OPEN_VERIFICATION:
                return row
            await asyncio.sleep(0.1)


async def test_a_payment_failure_notification_moves_the_subscription_to_grace(
    subscriber: Subscriber,
    webhooks: Webhooks,
    user_account: Account,
    sandbox_reset: SandboxHandle,
) -> None:
    sub = await subscriber.subscribe(user_account, period_seconds=3600, grace_seconds=600)
    webhooks.send_from_sandbox(retry_seconds=[0.5, 1])

    sandbox_reset.control.fail_renewal(sub.ref, immediately=True)

    grace = await subscriber.wait_row(sub.id, lambda row: row.status == "grace")
    assert grace.period == "grace"
    received = [
        row
        for row in await webhooks.rows()
        if row.purchase_id == sub.ref and row.event == "PAYMENT_FAILED"
    ]
    assert received
    # The subscription is updated inside the processing; the journal entry right after it.
    events = [await webhooks.wait_done(row.notification_id) for row in received]
    assert all(row.status == NotificationStatus.PROCESSED for row in events)
    assert events[0].outcome == f"re-read subscription {sub.id} from RuStore"


async def test_a_subscription_the_app_never_reported_is_recorded_from_the_notification(
    subscriber: Subscriber,
    webhooks: Webhooks,
    user_account: Account,
    sandbox_reset: SandboxHandle,
) -> None:
    webhooks.send_from_sandbox(retry_seconds=[0.5, 1])

    created = await subscriber.buy_in_rustore(user_account)  # RuStore notifies ACTIVATED

    adopted = await verified_from_rustore(subscriber.engine, created["purchaseId"])

    assert str(adopted.user_id) == user_account.user_id
    assert (adopted.verification, adopted.status) == ("verified", "active")

    reported = await subscriber.report(user_account, created)
    assert reported.status_code == 202
    assert reported.json()["id"] == str(adopted.id)
