"""The same subscription life, learnt two ways: from RuStore's notifications alone (each one
delivered twice and shuffled), and from the scheduler's checks alone (notifications off).
Either way every state Kopilka shows is the one RuStore reports; no app call is involved."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.queue import create_broker
from core.settings import Settings
from core.subscriptions.models import Subscription
from tests.fixtures.accounts import Account
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.subscriptions import Subscribed, Subscriber, ago
from tests.fixtures.webhooks import Webhooks
from workers.scheduler import Jobs

pytestmark = pytest.mark.usefixtures("pipeline_worker")

GRACE_SECONDS = 5

Learn = Callable[[Subscribed], Awaitable[None]]
Shown = dict[str, Any]
WITHIN_SECONDS = 30


def life(
    control: Any, ref: str, first_end: str
) -> list[tuple[Callable[[], object], Callable[[Shown], bool]]]:
    """RuStore-side changes, each with what Kopilka must then show (GET /api/subscriptions/{id},
    derived at read time from RuStore's last answer)."""
    return [
        (lambda: control.renew(ref), lambda shown: shown["endDate"] > first_end),
        (lambda: control.fail_renewal(ref, immediately=True), lambda s: s["status"] == "grace"),
        (lambda: control.advance_clock(GRACE_SECONDS + 1), lambda s: s["status"] == "on_hold"),
        (lambda: control.recover(ref), lambda shown: shown["status"] == "active"),
        (lambda: control.cancel_subscription(ref), lambda s: s["status"] == "cancelled"),
        (lambda: control.renew(ref), lambda shown: shown["status"] == "expired"),  # period ends
    ]


async def shown_when(
    subscriber: Subscriber, account: Account, sub: Subscribed, arrived: Callable[[Shown], bool]
) -> Shown:
    async with asyncio.timeout(WITHIN_SECONDS):
        while True:
            shown = await subscriber.state(account, sub)
            if arrived(shown):
                return shown
            await asyncio.sleep(0.1)


async def all_sent(sandbox: SandboxHandle) -> dict[str, Any]:
    """The sandbox's delivery log once nothing is left to send (second deliveries included)."""
    async with asyncio.timeout(WITHIN_SECONDS):
        while True:
            log: dict[str, Any] = sandbox.control.notifications()
            if log["pending"] == 0:
                return log
            await asyncio.sleep(0.1)


async def live_through(
    subscriber: Subscriber, account: Account, control: Any, learn: Learn
) -> list[str]:
    sub = await subscriber.subscribe(
        account, period_seconds=3600, grace_seconds=GRACE_SECONDS, retry_seconds=3600
    )
    first_end = (await subscriber.state(account, sub))["endDate"]
    seen = []
    for change, arrived in life(control, sub.ref, first_end):
        change()
        await learn(sub)
        seen.append((await shown_when(subscriber, account, sub, arrived))["status"])
    return seen


EXPECTED = ["active", "grace", "on_hold", "active", "cancelled", "expired"]


async def test_notifications_alone_delivered_twice_and_out_of_order(
    subscriber: Subscriber,
    webhooks: Webhooks,
    user_account: Account,
    sandbox_reset: SandboxHandle,
) -> None:
    webhooks.send_from_sandbox(retry_seconds=[0.5, 1])
    sandbox_reset.control.configure_notifications(deliver_twice=True, shuffle=True)

    async def nothing(_: Subscribed) -> None:
        """Kopilka hears only what RuStore posts."""

    assert await live_through(subscriber, user_account, sandbox_reset.control, nothing) == EXPECTED
    log = await all_sent(sandbox_reset)
    deliveries = Counter(d["id"] for d in log["deliveries"])
    assert len(deliveries) >= len(EXPECTED)
    assert min(deliveries.values()) >= 2, "every notification was delivered twice"


@pytest.fixture
async def scheduler_jobs(settings: Settings) -> AsyncIterator[Jobs]:
    broker = create_broker(settings.redis_url, socket_timeout=2)
    jobs = Jobs(settings, broker)
    yield jobs
    await jobs.close()
    broker.close()


async def test_scheduler_alone_with_notifications_off(
    subscriber: Subscriber,
    user_account: Account,
    sandbox_reset: SandboxHandle,
    scheduler_jobs: Jobs,
    engine: AsyncEngine,
) -> None:
    sandbox_reset.control.configure_notifications(enabled=False)

    async def when_the_check_falls_due(sub: Subscribed) -> None:
        """As if the time of the next scheduled check had come; the scheduler does the rest."""
        async with engine.begin() as connection:
            await connection.execute(
                update(Subscription)
                .where(Subscription.id == uuid.UUID(sub.id))
                .values(next_check_at=ago(1))
            )
        await scheduler_jobs.subscriptions_due()

    learnt = await live_through(
        subscriber, user_account, sandbox_reset.control, when_the_check_falls_due
    )
    assert learnt == EXPECTED
    assert sandbox_reset.control.notifications()["deliveries"] == []
