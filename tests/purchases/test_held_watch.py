"""The watchdog over two-stage payments RuStore holds: re-driven well before RuStore's automatic
reversal after 6 hours, and an error logged for any close to it."""

from __future__ import annotations

import datetime as dt

import pytest
import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_sessionmaker
from core.purchases import sweeps
from core.purchases.models import Purchase
from tests.fixtures.accounts import Account
from tests.fixtures.purchases import Records, Shop

HELD_FOR = dt.timedelta(minutes=15)


async def held_since(engine: AsyncEngine, purchase: Purchase, ago: dt.timedelta) -> None:
    """As if RuStore had been holding the payment for `ago` while we have not confirmed it."""
    async with engine.begin() as connection:
        await connection.execute(
            update(Purchase)
            .where(Purchase.id == purchase.id)
            .values(state="confirming", paid_at=dt.datetime.now(dt.UTC) - ago)
        )


@pytest.mark.parametrize(
    ("held", "alarm"),
    [
        (dt.timedelta(minutes=5), None),
        (dt.timedelta(hours=1), False),
        (dt.timedelta(hours=5, minutes=30), True),
    ],
)
async def test_held_payments_are_redriven_and_near_deadline_ones_raise_an_error(
    shop: Shop,
    user_account: Account,
    records: Records,
    engine: AsyncEngine,
    held: dt.timedelta,
    alarm: bool | None,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100", two_stage=True)
    purchase = await records.submit_without_sending(user_account, created)
    await held_since(engine, purchase, held)

    with structlog.testing.capture_logs() as logs:
        async with create_sessionmaker(engine)() as session:
            claimed = await sweeps.claim_held(session, HELD_FOR)
            await session.commit()

    errors = [e for e in logs if e["event"] == "purchase.hold_deadline_near"]
    if alarm is None:
        assert purchase.id not in claimed, "held briefly: left to the running job"
        return
    assert purchase.id in claimed
    assert (await records.purchase(purchase.id)).enqueued_at is not None
    near = [e for e in errors if e["purchase_id"] == str(purchase.id)]
    assert bool(near) is alarm
    if alarm:
        assert near[0]["log_level"] == "error"
