"""RuStore's subscription notifications alone keep the subscription right: no scheduler run and no
app call between the change in RuStore and Kopilka knowing it."""

from __future__ import annotations

import pytest

from core.notifications.models import NotificationStatus
from tests.fixtures.accounts import Account
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.subscriptions import Subscriber
from tests.fixtures.webhooks import Webhooks

pytestmark = pytest.mark.usefixtures("pipeline_worker")


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
    events = [
        row
        for row in await webhooks.rows()
        if row.purchase_id == sub.ref and row.event == "PAYMENT_FAILED"
    ]
    assert events
    assert all(row.status == NotificationStatus.PROCESSED for row in events)
    assert events[0].outcome == f"re-read subscription {sub.id} from RuStore"
