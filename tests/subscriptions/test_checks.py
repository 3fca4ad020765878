"""Scenario 24 and the ordering guard: scheduled checks are claimed once per slot, a dead
scheduler's claim comes back after its lease, dunning keeps its spacing and maximum, and an old
or late RuStore answer never overwrites a newer one.

The jobs' code runs in this process (`sync`) against the sandbox, so each step is awaited
rather than polled; scheduler runs send to a recorder instead of Redis.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_sessionmaker, utcnow
from core.queue import SUBSCRIPTION_CHECK
from core.rustore import SubscriptionPurchase
from core.settings import Settings
from core.subscriptions import service
from core.subscriptions.pipeline import SubscriptionSync
from core.subscriptions.repository import SubscriptionRepository
from core.subscriptions.schedule import CLAIM_LEASE, CheckPolicy
from tests.fixtures.accounts import Account
from tests.fixtures.processes import Process
from tests.fixtures.subscriptions import PREMIUM, Subscriber, ago, sync
from workers import scheduler


@dataclass
class Recorder:
    """A broker stand-in: what a scheduler run sent. Its Redis client is the real one, which the
    scheduler pings before a sweep claims anything."""

    client: redis.Redis
    sent: list[dramatiq.Message[Any]] = field(default_factory=list)

    def enqueue(self, message: dramatiq.Message[Any], delay: int | None = None) -> None:
        self.sent.append(message)

    def ids(self, actor: str) -> list[str]:
        return [m.args[0] for m in self.sent if m.actor_name == actor]


async def due_rows(engine: AsyncEngine, account: Account, count: int) -> set[str]:
    """Verified subscriptions whose check fell due a second ago."""
    ids = set()
    async with create_sessionmaker(engine)() as session:
        repository = SubscriptionRepository(session)
        for _ in range(count):
            row = await repository.insert_new(
                {
                    "id": uuid.uuid4(),
                    "user_id": uuid.UUID(account.user_id),
                    "product_id": PREMIUM,
                    "rustore_purchase_id": str(uuid.uuid4()),
                    "verification": "verified",
                    "next_check_at": ago(1),
                }
            )
            assert row is not None
            ids.add(str(row.id))
        await session.commit()
    return ids


async def run_scheduler(settings: Settings, broker: Recorder) -> None:
    jobs = scheduler.Jobs(settings, broker)  # type: ignore[arg-type]
    try:
        await jobs.subscriptions_due()
    finally:
        await jobs.close()


async def test_two_schedulers_send_each_due_subscription_once(
    settings: Settings, engine: AsyncEngine, user_account: Account, subscription_catalogue: None
) -> None:
    mine = await due_rows(engine, user_account, 8)
    client = redis.Redis.from_url(settings.redis_url)
    first, second, later = Recorder(client), Recorder(client), Recorder(client)

    await asyncio.gather(run_scheduler(settings, first), run_scheduler(settings, second))
    await run_scheduler(settings, later)  # the next slot: the lease keeps them off

    sent = first.ids(SUBSCRIPTION_CHECK.actor) + second.ids(SUBSCRIPTION_CHECK.actor)
    assert sorted(i for i in sent if i in mine) == sorted(mine)
    assert [i for i in later.ids(SUBSCRIPTION_CHECK.actor) if i in mine] == []


async def test_a_claim_never_sent_is_claimed_again_after_the_lease(
    engine: AsyncEngine, user_account: Account, subscription_catalogue: None
) -> None:
    mine = await due_rows(engine, user_account, 3)
    sessions = create_sessionmaker(engine)

    async with sessions() as session:  # a scheduler claims, commits, and dies before sending
        _, claimed = await service.claim_due(session)
        await session.commit()
    async with sessions() as session:
        _, too_early = await service.claim_due(session)
        await session.commit()
    async with sessions() as session:
        after_lease = utcnow() + CLAIM_LEASE + dt.timedelta(seconds=1)
        reclaimed = await SubscriptionRepository(session).claim_due(after_lease, CLAIM_LEASE, 500)
        await session.rollback()

    assert mine <= {str(i) for i in claimed}
    assert mine.isdisjoint(str(i) for i in too_early)
    assert mine <= {str(i) for i, _ in reclaimed}


async def submitted(subscriber: Subscriber, account: Account, **plan: Any) -> tuple[Any, uuid.UUID]:
    """A subscription bought in the sandbox and submitted, not yet verified (no job sent)."""
    created = await subscriber.buy_in_rustore(account, **plan)
    submission = service.Submission(PREMIUM, created["purchaseId"], None, None, None, False)
    async with create_sessionmaker(subscriber.engine)() as session:
        row, _ = await service.submit(session, uuid.UUID(account.user_id), submission)
        await session.commit()
    return created, row.id


async def test_dunning_keeps_its_spacing_and_stops_at_its_maximum(
    subscriber: Subscriber, user_account: Account, settings: Settings
) -> None:
    created, sub_id = await submitted(subscriber, user_account, grace_seconds=3600)
    subscriber.sandbox.control.fail_renewal(created["purchaseId"], immediately=True)
    policy = CheckPolicy(dunning_seconds=(60, 600), max_dunning_checks=3)
    checker = sync(settings, subscriber.engine, policy)
    try:
        await checker.verify(sub_id, last_attempt=False)
        seen = [await subscriber.row(sub_id)]
        for _ in range(3):
            await checker.check(sub_id)
            seen.append(await subscriber.row(sub_id))
    finally:
        await checker.rustore.aclose()

    assert {row.status for row in seen} == {"grace"}
    assert [row.dunning_checks for row in seen] == [1, 2, 3, 3]
    spacing = [
        round((row.next_check_at - row.observed_at).total_seconds()) if row.next_check_at else None
        for row in seen
    ]
    assert spacing == [60, 600, 600, None]


@dataclass
class Replay:
    """A RuStore client that answers with a saved (older) object, optionally only once told."""

    answer: SubscriptionPurchase
    release: asyncio.Event | None = None

    async def get_subscription(self, *_: Any, **__: Any) -> SubscriptionPurchase:
        if self.release is not None:
            await self.release.wait()
        return self.answer


async def test_older_answers_never_overwrite_newer_ones(
    subscriber: Subscriber, user_account: Account, settings: Settings
) -> None:
    created, sub_id = await submitted(subscriber, user_account)
    checker = sync(settings, subscriber.engine)
    real_rustore = checker.rustore
    try:
        await checker.verify(sub_id, last_attempt=False)
        before_renewal = await real_rustore.get_subscription(PREMIUM, created["purchaseId"])
        # A check that asks RuStore now but whose answer lands after a newer check's:
        release = asyncio.Event()
        late = SubscriptionSync(checker.engine, Replay(before_renewal, release), checker.policy)
        late_check = asyncio.create_task(late.check(sub_id))
        await asyncio.sleep(0.2)

        subscriber.sandbox.control.renew(created["purchaseId"])
        await checker.check(sub_id)
        renewed = await subscriber.row(sub_id)
        release.set()
        await late_check

        # A redelivered answer naming an earlier charge, though asked after the newer one:
        replayed = SubscriptionSync(checker.engine, Replay(before_renewal), checker.policy)
        await replayed.check(sub_id)
    finally:
        await real_rustore.aclose()

    after = await subscriber.row(sub_id)
    assert renewed.rustore_order_id is not None
    assert renewed.rustore_order_id.endswith("..0")
    assert renewed.expires_at is not None
    assert before_renewal.expiry_time < renewed.expires_at
    assert (after.expires_at, after.rustore_order_id, after.observed_at) == (
        renewed.expires_at,
        renewed.rustore_order_id,
        renewed.observed_at,
    )


async def test_redelivered_checks_keep_rustores_end_date(
    subscriber: Subscriber,
    user_account: Account,
    pipeline_worker: Process,
    settings: Settings,
) -> None:
    sub = await subscriber.subscribe(user_account)
    subscriber.sandbox.control.renew(sub.ref)
    broker = scheduler.create_broker(settings.redis_url, socket_timeout=2)
    try:
        for _ in range(3):
            scheduler.send(broker, SUBSCRIPTION_CHECK, sub.id)
    finally:
        broker.close()

    def attempts() -> list[dict[str, Any]]:
        return [
            e
            for e in pipeline_worker.json_logs()
            if e.get("event") == "subscription.check.attempt" and e.get("subscription_id") == sub.id
        ]

    async with asyncio.timeout(20):  # every redelivery ran, each one reading RuStore
        while True:
            if len(attempts()) == 3:
                break
            await asyncio.sleep(0.1)
    row = await subscriber.wait_row(sub.id, lambda r: r.rustore_order_id.endswith("..0"))
    rustore = subscriber.sandbox.control.get_subscription(sub.ref)

    assert row.expires_at is not None
    reported = dt.datetime.fromisoformat(rustore["expiryTime"])
    assert abs(row.expires_at - reported) < dt.timedelta(milliseconds=1)
    assert (row.status, row.dunning_checks) == ("active", 0)
    assert row.rustore is not None
    assert row.rustore["orderId"] == rustore["orderId"]
