"""Daily reconciliation against RuStore's invoice list, and the slot claim that runs it once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_sessionmaker
from core.integrations import rustore_client
from core.purchases.pipeline import AWAITING_PURCHASE_ID
from core.purchases.reconciliation import previous_day, reconcile_day
from core.queue import Job, create_broker, send
from core.rustore import RuStoreClient
from core.scheduling.models import ScheduledRun
from core.scheduling.service import claim_slot, finish_slot
from core.settings import Settings
from tests.fixtures.accounts import Account
from tests.fixtures.purchases import POINTS, Records, Shop
from workers.scheduler import RECONCILE_JOB, Jobs

pytestmark = pytest.mark.usefixtures("pipeline_worker")


@pytest.fixture
async def rustore(settings: Settings) -> AsyncIterator[RuStoreClient]:
    async with rustore_client(settings) as client:
        yield client


async def reconcile_invoice_day(
    settings: Settings, engine: AsyncEngine, rustore: RuStoreClient, invoice_id: int
) -> tuple[int, dict[str, int]]:
    """Reconcile the day RuStore dates `invoice_id` in; (jobs sent, unmatched reasons)."""
    invoice = await rustore.get_purchase(invoice_id)
    assert invoice.invoice_date is not None
    day = dt.datetime.fromisoformat(invoice.invoice_date).date()
    broker = create_broker(settings.redis_url, socket_timeout=2)
    try:

        def sender(job: Job, object_id: str) -> None:
            send(broker, job, object_id)

        report = await reconcile_day(create_sessionmaker(engine), rustore, sender, day)
    finally:
        broker.close()
    return report.jobs_sent, report.unmatched


async def test_a_paid_purchase_the_app_never_reported_is_credited(
    shop: Shop,
    user_account: Account,
    records: Records,
    settings: Settings,
    engine: AsyncEngine,
    rustore: RuStoreClient,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    assert await records.purchases_of_invoice(created["invoiceId"]) == []

    sent, _ = await reconcile_invoice_day(settings, engine, rustore, created["invoiceId"])

    [adopted] = await records.purchases_of_invoice(created["invoiceId"])
    assert sent >= 1
    assert str(adopted.user_id) == user_account.user_id
    final = await records.wait_final(adopted.id)
    assert final.state == "credited"
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_a_held_payment_found_without_its_purchase_id_waits_for_the_app_report(
    shop: Shop,
    user_account: Account,
    records: Records,
    settings: Settings,
    engine: AsyncEngine,
    rustore: RuStoreClient,
) -> None:
    """The invoice list names no purchase id, which :confirm needs: the purchase waits, without
    spending retries, until the app's report names it; then it is confirmed and credited once."""
    created = await shop.pay_in_rustore(user_account, "coins_100", two_stage=True)

    await reconcile_invoice_day(settings, engine, rustore, created["invoiceId"])

    [adopted] = await records.purchases_of_invoice(created["invoiceId"])
    waiting = await records.wait_for(adopted.id, lambda p: p.failure_reason is not None)
    assert (waiting.state, waiting.rustore_purchase_id) == ("confirming", None)
    assert waiting.failure_reason == AWAITING_PURCHASE_ID
    assert waiting.attempts == 1  # parked, not retried
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "PAID"

    reported = await shop.report_created(user_account, created)

    assert reported.status_code == 202
    assert reported.json()["id"] == str(adopted.id)
    final = await records.wait_final(adopted.id)
    assert (final.state, final.failure_reason) == ("credited", None)
    assert len(await records.ledger_of_purchase(adopted.id)) == 1
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_a_refund_the_app_never_heard_of_takes_the_points_back(
    shop: Shop,
    user_account: Account,
    records: Records,
    settings: Settings,
    engine: AsyncEngine,
    rustore: RuStoreClient,
) -> None:
    bought = await shop.buy(user_account, "coins_500")
    await shop.wait_final(user_account, bought.payment_id)
    shop.sandbox.control.refund(bought.invoice_id)

    await reconcile_invoice_day(settings, engine, rustore, bought.invoice_id)

    refunded = await records.wait_for(bought.payment_id, lambda p: p.state == "refunded")
    assert refunded.failure_reason == "RuStore refunded the payment"
    assert await shop.balance(user_account) == 0


async def test_an_invoice_with_a_payload_we_never_issued_is_left_alone(
    shop: Shop,
    user_account: Account,
    records: Records,
    settings: Settings,
    engine: AsyncEngine,
    rustore: RuStoreClient,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100", payload="kp1.not-ours")

    _, unmatched = await reconcile_invoice_day(settings, engine, rustore, created["invoiceId"])

    assert unmatched.get("the developer payload matches no purchase intent", 0) >= 1
    assert await records.purchases_of_invoice(created["invoiceId"]) == []


def test_the_day_reconciled_is_moscow_yesterday() -> None:
    late_utc_evening = dt.datetime(2026, 11, 22, 22, 30, tzinfo=dt.UTC)  # 01:30 on the 23rd MSK
    assert previous_day(late_utc_evening) == dt.date(2026, 11, 22)


async def test_a_slot_runs_once_and_a_dead_claim_is_taken_over(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    slot, lease = uuid.uuid4().hex, dt.timedelta(hours=1)

    async with sessions() as first, sessions() as second:
        assert await claim_slot(first, "test.job", slot, lease)
        await first.commit()
        assert not await claim_slot(second, "test.job", slot, lease)
        await second.commit()

    async with sessions() as session:  # the claimer died long ago without finishing
        await session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.slot == slot)
            .values(claimed_at=dt.datetime.now(dt.UTC) - 2 * lease)
        )
        assert await claim_slot(session, "test.job", slot, lease)
        await finish_slot(session, "test.job", slot, "done")
        await session.commit()

    async with sessions() as session:
        await session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.slot == slot)
            .values(claimed_at=dt.datetime.now(dt.UTC) - 2 * lease)
        )
        assert not await claim_slot(session, "test.job", slot, lease), "finished runs stay done"
        run = (
            await session.execute(select(ScheduledRun).where(ScheduledRun.slot == slot))
        ).scalar_one()
        assert run.outcome == "done"


async def test_two_schedulers_reconcile_a_day_once(settings: Settings, engine: AsyncEngine) -> None:
    # Other tests run real scheduler processes, which may have claimed today's run and been
    # stopped before finishing it; this test starts from no run at all.
    async with create_sessionmaker(engine)() as session:
        await session.execute(delete(ScheduledRun).where(ScheduledRun.job == RECONCILE_JOB))
        await session.commit()
    broker = create_broker(settings.redis_url, socket_timeout=2)
    first, second = Jobs(settings, broker), Jobs(settings, broker)
    try:
        await asyncio.gather(first.purchases_reconcile(), second.purchases_reconcile())
    finally:
        await first.close()
        await second.close()
        broker.close()

    async with create_sessionmaker(engine)() as session:
        runs = list(
            (
                await session.execute(select(ScheduledRun).where(ScheduledRun.job == RECONCILE_JOB))
            ).scalars()
        )
    assert len(runs) == 1
    assert runs[0].slot == previous_day(dt.datetime.now(dt.UTC)).isoformat()
    assert runs[0].finished_at is not None
    assert runs[0].outcome is not None
    assert runs[0].outcome.endswith("unmatched")
