"""A purchase's timeline, from a real purchase through the real worker: what the api stored,
each attempt and RuStore call the worker recorded (a failed one included), the credit, the
notifications about it and what admins did to it."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import Role
from core.accounts.tokens import AccessClaims
from core.audit import service as audit
from core.audit.models import Target
from core.db import utcnow
from core.errors import NotFoundError
from core.purchases.timeline import TimelineEvent, purchase_timeline
from tests.fixtures.accounts import Account
from tests.fixtures.purchases import POINTS, Records, Shop, invoice_glob
from tests.fixtures.webhooks import Webhooks

pytestmark = pytest.mark.usefixtures("pipeline_worker")

CALLS_WRITTEN_WITHIN = 5.0
READ_FAULT_TIMES = 5
"""More than the RuStore client's own 4 attempts: the job's first attempt fails and is retried."""


def _steps(events: list[TimelineEvent]) -> list[tuple[str, str | None, str | None]]:
    return [(event.kind, event.method, event.outcome) for event in events]


async def _timeline_with_calls(
    session: AsyncSession, purchase_id: uuid.UUID, calls: int
) -> list[TimelineEvent]:
    """The timeline once the worker has written `calls` RuStore calls. An attempt's calls are
    written in one INSERT when the attempt ends (`PurchaseEventRecorder.held`), a moment after
    the credit it led to has committed."""
    deadline = time.monotonic() + CALLS_WRITTEN_WITHIN
    while True:
        events = await purchase_timeline(session, purchase_id)
        if sum(event.kind == "rustore_call" for event in events) >= calls:
            return events
        assert time.monotonic() < deadline, f"only these were written: {_steps(events)}"
        await session.rollback()
        await asyncio.sleep(0.05)


async def test_timeline_of_a_purchase_that_needed_a_retry(
    shop: Shop, user_account: Account, records: Records, db_session: AsyncSession
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_500", two_stage=True)
    shop.sandbox.control.set_fault(
        invoice_glob(created["invoiceId"]), error_rate=1, times=READ_FAULT_TIMES
    )
    response = await shop.report_created(user_account, created)
    final = await records.wait_final(response.json()["id"], within=40)
    assert final.state == "credited", final.failure_reason

    events = await _timeline_with_calls(db_session, final.id, calls=4)

    assert _steps(events) == [
        ("submitted", None, None),
        ("enqueued", None, None),
        ("attempt", None, None),
        ("rustore_call", "get_purchase", "transient"),
        ("retry", None, None),
        ("attempt", None, None),
        ("rustore_call", "get_purchase", "ok"),
        ("paid", None, None),
        ("rustore_call", "confirm_purchase", "ok"),
        ("rustore_call", "get_purchase", "ok"),
        ("credit", None, "ok"),
    ]
    assert events == sorted(events, key=lambda event: event.at)
    assert events[0].detail == f"request {response.headers['x-request-id']}"
    calls = [event for event in events if event.kind == "rustore_call"]
    assert [call.attempt for call in calls] == [1, 2, 2, 2]
    assert all(call.latency_ms is not None and call.latency_ms > 0 for call in calls)
    assert "Something went wrong" in (calls[0].detail or "")
    assert events[4].detail == "RuStore: Something went wrong"
    assert events[-1].detail == f"+{POINTS['coins_500']} points"


async def test_timeline_shows_a_refund_its_notification_and_admin_actions(
    shop: Shop,
    user_account: Account,
    admin_account: Account,
    records: Records,
    webhooks: Webhooks,
    db_session: AsyncSession,
) -> None:
    bought = await shop.buy(user_account, "coins_100")
    purchase = await records.wait_final(bought.payment_id)
    refunded = shop.sandbox.control.refund(bought.invoice_id)
    body = webhooks.invoice_body(refunded, "REFUNDED")
    assert (await webhooks.post(body)).status_code == 200
    await records.wait_for(purchase.id, lambda row: row.state == "refunded")
    admin = AccessClaims(uuid.UUID(admin_account.user_id), frozenset({Role.ADMIN}), "t", utcnow())
    await audit.record(
        db_session, actor=admin, action="purchase.note", target_type=Target.PURCHASE,
        target_id=purchase.id, before=None, after=None, reason="customer called",
    )  # fmt: skip
    await db_session.commit()

    events = await purchase_timeline(db_session, purchase.id)

    assert _steps(events)[-5:] == [
        ("notification", None, "processed"),
        ("rustore_call", "get_purchase", "ok"),  # purchase.sync, sent by the notification
        ("refund", None, "refunded"),
        ("clawback", None, "ok"),
        ("admin", None, "purchase.note"),
    ]
    notification, _, refund, clawback, action = events[-5:]
    assert (notification.detail or "").startswith("INVOICE_STATUS · REFUNDED")
    assert refund.detail == "RuStore refunded the payment"
    assert clawback.detail == f"-{POINTS['coins_100']} points taken back"
    assert action.detail == f"by {admin_account.email}: customer called"


async def test_timeline_of_an_unknown_purchase_is_not_found(db_session: AsyncSession) -> None:
    with pytest.raises(NotFoundError):
        await purchase_timeline(db_session, uuid.uuid4())
