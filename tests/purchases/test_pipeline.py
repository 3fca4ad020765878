"""End to end against the RuStore sandbox over HTTP: intent → purchase → verify → credited."""

from __future__ import annotations

import pytest

from tests.fixtures.accounts import Account
from tests.fixtures.processes import Process
from tests.fixtures.purchases import POINTS, Shop

pytestmark = pytest.mark.usefixtures("pipeline_worker")


async def test_one_stage_purchase_is_completed_and_credited(
    shop: Shop, user_account: Account
) -> None:
    bought = await shop.buy(user_account, "coins_100")
    assert bought.response.status_code == 202, bought.response.text
    assert bought.response.json()["status"] == "pending"

    final = await shop.wait_final(user_account, bought.payment_id)

    assert final["status"] == "completed"
    assert final["pointsCredited"] == POINTS["coins_100"]
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_two_stage_purchase_is_confirmed_by_the_worker(
    shop: Shop, user_account: Account, pipeline_worker: Process
) -> None:
    bought = await shop.buy(user_account, "coins_500", two_stage=True)
    assert shop.sandbox.control.get_purchase(bought.invoice_id)["status"] == "PAID"

    final = await shop.wait_final(user_account, bought.payment_id)

    assert final["status"] == "completed"
    assert shop.sandbox.control.get_purchase(bought.invoice_id)["status"] == "CONFIRMED"
    assert await shop.balance(user_account) == POINTS["coins_500"]


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("REJECTED", "RuStore rejected the payment"),
        ("CANCELLED", "the payment was cancelled"),
        ("EXPIRED", "the payment expired before it was completed"),
    ],
)
async def test_unpaid_purchase_is_rejected_with_its_reason(
    shop: Shop, user_account: Account, outcome: str, reason: str
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100", paid=False)
    shop.sandbox.control.fail(created["invoiceId"], outcome)

    response = await shop.report(
        user_account, created["invoiceId"], created["purchaseId"], "coins_100"
    )
    final = await shop.wait_final(user_account, response.json()["id"])

    assert final["status"] == "rejected"
    assert final["failureReason"] == reason
    assert final["pointsCredited"] == 0
    assert await shop.balance(user_account) == 0
