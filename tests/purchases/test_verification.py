"""What RuStore reports decides, never what the client claims (scenarios 13, 14, 25, 26), and the
status api the app polls: ETag/304, Retry-After, `Prefer: wait`, paging and ownership."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.fixtures.accounts import Account, MakeAccount
from tests.fixtures.purchases import POINTS, PRICES, Records, Shop
from tests.fixtures.sandbox import APP_ID

pytestmark = pytest.mark.usefixtures("pipeline_worker")

# Each arrangement makes a RuStore purchase and returns it with the product the client claims.
# Mismatches are two-stage, held in PAID, to prove we never confirm (charge) what we reject.
Arrangement = Callable[[Shop, Account], Awaitable[tuple[dict[str, Any], str]]]


async def _another_product(shop: Shop, account: Account) -> tuple[dict[str, Any], str]:
    return await shop.pay_in_rustore(account, "coins_100", two_stage=True), "coins_500"


async def _another_amount(shop: Shop, account: Account) -> tuple[dict[str, Any], str]:
    created = await shop.pay_in_rustore(account, "coins_100", amount=100, two_stage=True)
    return created, "coins_100"


async def _payload_never_issued(shop: Shop, account: Account) -> tuple[dict[str, Any], str]:
    created = await shop.pay_in_rustore(account, "coins_100", payload="kp1.forged", two_stage=True)
    return created, "coins_100"


async def _another_app(shop: Shop, account: Account) -> tuple[dict[str, Any], str]:
    intent = await shop.intent(account, "coins_100")
    created = shop.sandbox.control.create_purchase(
        "coins_100",
        PRICES["coins_100"],
        two_stage=True,
        developer_payload=intent["developerPayload"],
        app_id=APP_ID + 1,
    )
    shop.sandbox.control.pay(created["invoiceId"])
    return created, "coins_100"


async def _reversed(shop: Shop, account: Account) -> tuple[dict[str, Any], str]:
    created = await shop.pay_in_rustore(account, "coins_100", two_stage=True)
    shop.sandbox.control.cancel(created["invoiceId"])
    return created, "coins_100"


async def _refunded(shop: Shop, account: Account) -> tuple[dict[str, Any], str]:
    created = await shop.pay_in_rustore(account, "coins_100")
    shop.sandbox.control.refund(created["invoiceId"])
    return created, "coins_100"


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (_another_product, "RuStore reports product 'coins_100', not 'coins_500'"),
        (_another_amount, "RuStore charged 100 kopecks, expected 9900"),
        (_payload_never_issued, "developer payload does not match a purchase intent"),
        (_another_app, "RuStore refuses access to this invoice: another app's"),
        (_reversed, "RuStore reversed the held payment"),
        (_refunded, "RuStore refunded the payment"),
    ],
    ids=["product", "amount", "payload", "app", "reversed", "refunded"],
)
async def test_purchase_rustore_does_not_back_is_rejected_without_credit(
    shop: Shop, user_account: Account, records: Records, arrange: Arrangement, reason: str
) -> None:
    created, claimed = await arrange(shop, user_account)

    response = await shop.report(user_account, created["invoiceId"], created["purchaseId"], claimed)
    final = await shop.wait_final(user_account, response.json()["id"])

    assert final["status"] == "rejected"
    assert final["failureReason"].startswith(reason)
    assert final["pointsCredited"] == 0
    assert await records.ledger_of_purchase(final["id"]) == []
    assert await shop.balance(user_account) == 0
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] != "CONFIRMED"


async def test_unpaid_purchase_stays_processing_and_completes_once_paid(
    shop: Shop, user_account: Account, records: Records
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100", paid=False)
    payment_id = (await shop.report_created(user_account, created)).json()["id"]

    waiting = await records.wait_for(payment_id, lambda purchase: purchase.attempts >= 2)
    polled = await shop.client.get(f"/api/payments/{payment_id}", headers=user_account.headers)
    assert waiting.state == "verifying"
    assert polled.json()["status"] == "processing"
    assert polled.headers["Retry-After"] == "1"

    shop.sandbox.control.pay(created["invoiceId"])
    final = await shop.wait_final(user_account, payment_id)

    assert final["status"] == "completed"
    assert (await records.purchase(payment_id)).attempts >= 3
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_prefer_wait_answers_with_the_final_state(shop: Shop, user_account: Account) -> None:
    bought = await shop.buy(user_account, "coins_100", wait=10)

    assert bought.response.status_code == 200, bought.response.text
    assert bought.response.headers["Preference-Applied"] == "wait=10"
    assert bought.response.json()["status"] == "completed"
    assert bought.response.json()["pointsCredited"] == POINTS["coins_100"]


async def test_status_polling_uses_etag_and_retry_after_until_final(
    shop: Shop, user_account: Account, records: Records
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    pending = await records.submit_without_sending(user_account, created)
    url = f"/api/payments/{pending.id}"

    first = await shop.client.get(url, headers=user_account.headers)
    etag = first.headers["ETag"]
    unchanged = await shop.client.get(url, headers={**user_account.headers, "If-None-Match": etag})

    assert first.status_code == 200
    assert first.headers["Retry-After"] == "1"
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == etag

    done = await shop.buy(user_account, "coins_100", wait=10)
    final_url = f"/api/payments/{done.payment_id}"
    final = await shop.client.get(
        final_url, headers={**user_account.headers, "If-None-Match": etag}
    )
    assert final.status_code == 200
    assert "Retry-After" not in final.headers
    assert final.headers["ETag"] != etag


async def test_payment_list_is_own_newest_first_with_cursor_paging(
    shop: Shop, user_account: Account, make_account: MakeAccount, records: Records
) -> None:
    other_user = await make_account()
    await records.submit_without_sending(
        other_user, await shop.pay_in_rustore(other_user, "coins_100")
    )
    mine = [
        await records.submit_without_sending(
            user_account, await shop.pay_in_rustore(user_account, "coins_100")
        )
        for _ in range(3)
    ]

    first = await shop.client.get("/api/payments?limit=2", headers=user_account.headers)
    cursor = first.json()["nextCursor"]
    second = await shop.client.get(
        f"/api/payments?limit=2&cursor={cursor}", headers=user_account.headers
    )

    listed = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert listed == [str(purchase.id) for purchase in reversed(mine)]
    assert second.json()["nextCursor"] is None
    bad = await shop.client.get("/api/payments?cursor=garbage", headers=user_account.headers)
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"


async def test_another_users_payment_is_not_found(
    shop: Shop, user_account: Account, make_account: MakeAccount, records: Records
) -> None:
    other_user = await make_account()
    theirs = await records.submit_without_sending(
        other_user, await shop.pay_in_rustore(other_user, "coins_100")
    )

    foreign = await shop.client.get(f"/api/payments/{theirs.id}", headers=user_account.headers)
    unknown = await shop.client.get(f"/api/payments/{uuid.uuid4()}", headers=user_account.headers)

    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["code"] == unknown.json()["code"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "completed"), ("points", 100000), ("userId", str(uuid.uuid4())), ("price", 1)],
)
async def test_client_cannot_set_server_fields(
    shop: Shop, user_account: Account, records: Records, field: str, value: object
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    body = {
        "purchaseId": created["purchaseId"],
        "invoiceId": created["invoiceId"],
        "productId": "coins_100",
        field: value,
    }

    response = await shop.post_verify(user_account, body, key=uuid.uuid4().hex)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert await records.purchases_of_invoice(created["invoiceId"]) == []
    assert await records.idempotency_keys(user_account.user_id) == 0
    assert await shop.balance(user_account) == 0
