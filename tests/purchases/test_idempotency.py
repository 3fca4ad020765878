"""Idempotency keys and duplicate submissions (reliability scenarios 1-5), over real HTTP.

Each test counts what was written (purchases, keys, ledger entries) and what ran (deliveries of
`purchase.verify`), so a broken dedup shows up as a second row, message or credit.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.accounts import Account, MakeAccount
from tests.fixtures.processes import Process
from tests.fixtures.purchases import POINTS, Records, Shop, deliveries, queued_messages

pytestmark = pytest.mark.usefixtures("pipeline_worker")

CONCURRENT_REQUESTS = 50


def _code(response: httpx.Response) -> str:
    return str(response.json().get("code"))


async def _assert_one_job(records: Records, worker: Process, payment_id: str) -> None:
    """The purchase is final, nothing for it is left in Redis, and one message carried it."""
    await records.wait_final(payment_id)
    assert queued_messages(os.environ["REDIS_URL"], payment_id) == 0
    messages = {event["message_id"] for event in deliveries(worker, payment_id)}
    assert len(messages) == 1, deliveries(worker, payment_id)


async def test_same_key_and_body_twice_replays_the_first_answer(
    shop: Shop, user_account: Account, records: Records, pipeline_worker: Process
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    key = uuid.uuid4().hex

    first = await shop.report_created(user_account, created, key=key)
    second = await shop.report_created(user_account, created, key=key)

    assert first.status_code == second.status_code == 202
    assert second.content == first.content
    assert first.headers["Idempotent-Replayed"] == "false"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(await records.purchases_of_invoice(created["invoiceId"])) == 1
    assert await records.idempotency_keys(user_account.user_id) == 1
    await _assert_one_job(records, pipeline_worker, first.json()["id"])


async def test_concurrent_requests_with_one_key_make_one_purchase(
    shop: Shop, user_account: Account, records: Records, pipeline_worker: Process
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    key = uuid.uuid4().hex

    answers = await asyncio.gather(
        *(shop.report_created(user_account, created, key=key) for _ in range(CONCURRENT_REQUESTS))
    )

    outcomes = Counter(
        (a.status_code, a.headers.get("Idempotent-Replayed") or _code(a)) for a in answers
    )
    assert outcomes[(202, "false")] == 1, outcomes
    assert set(outcomes) <= {(202, "false"), (202, "true"), (409, "idempotency_key_in_progress")}
    accepted = {a.content for a in answers if a.status_code == 202}
    assert len(accepted) == 1  # every replay is byte-identical to the original answer
    assert len(await records.purchases_of_invoice(created["invoiceId"])) == 1
    await _assert_one_job(records, pipeline_worker, json.loads(accepted.pop())["id"])


async def test_same_key_with_another_body_is_refused_and_writes_nothing(
    shop: Shop, user_account: Account, records: Records
) -> None:
    first = await shop.pay_in_rustore(user_account, "coins_100")
    other = await shop.pay_in_rustore(user_account, "coins_500")
    key = uuid.uuid4().hex
    assert (await shop.report_created(user_account, first, key=key)).status_code == 202

    reused = await shop.report_created(user_account, other, key=key)

    assert reused.status_code == 422
    assert _code(reused) == "idempotency_key_reused"
    assert await records.purchases_of_invoice(other["invoiceId"]) == []
    assert await records.idempotency_keys(user_account.user_id) == 1


async def test_an_expired_key_is_a_fresh_key(
    shop: Shop, user_account: Account, records: Records, engine: AsyncEngine
) -> None:
    first = await shop.pay_in_rustore(user_account, "coins_100")
    other = await shop.pay_in_rustore(user_account, "coins_500")
    key = uuid.uuid4().hex
    assert (await shop.report_created(user_account, first, key=key)).status_code == 202
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
                " WHERE user_id = :user_id"
            ),
            {"user_id": uuid.UUID(user_account.user_id)},
        )

    reused = await shop.report_created(user_account, other, key=key)

    assert reused.status_code == 202
    assert reused.headers["Idempotent-Replayed"] == "false"
    assert reused.json()["invoiceId"] == other["invoiceId"]
    assert await records.idempotency_keys(user_account.user_id) == 1


async def test_missing_key_is_required(shop: Shop, user_account: Account, records: Records) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    body = {
        "purchaseId": created["purchaseId"],
        "invoiceId": created["invoiceId"],
        "productId": "coins_100",
    }

    response = await shop.post_verify(user_account, body, key=None)

    assert response.status_code == 400
    assert _code(response) == "idempotency_key_required"
    assert await records.purchases_of_invoice(created["invoiceId"]) == []


@pytest.mark.parametrize(
    "key",
    # Other control characters never reach the app: uvicorn refuses them as a bad request.
    ["", "k" * 256, "tab\tinside", "caf\xe9"],
    ids=["empty", "256-chars", "tab", "non-ascii"],
)
async def test_malformed_key_is_refused_and_writes_nothing(
    shop: Shop, user_account: Account, records: Records, key: str
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    headers = {name.encode(): value.encode() for name, value in user_account.headers.items()}
    headers[b"Idempotency-Key"] = key.encode("latin-1")
    body = {
        "purchaseId": created["purchaseId"],
        "invoiceId": created["invoiceId"],
        "productId": "coins_100",
    }

    response = await shop.client.post("/api/payments/verify", json=body, headers=headers)

    assert response.status_code == 400, response.text
    assert _code(response) == "idempotency_key_invalid"
    assert await records.purchases_of_invoice(created["invoiceId"]) == []
    assert await records.idempotency_keys(user_account.user_id) == 0


async def test_longest_allowed_key_is_accepted(shop: Shop, user_account: Account) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")

    response = await shop.report_created(user_account, created, key="k" * 255)

    assert response.status_code == 202, response.text


async def test_keys_are_scoped_per_user(
    shop: Shop, user_account: Account, make_account: MakeAccount, records: Records
) -> None:
    other_user = await make_account()
    mine = await shop.pay_in_rustore(user_account, "coins_100")
    theirs = await shop.pay_in_rustore(other_user, "coins_500")
    key = uuid.uuid4().hex
    original = await shop.report_created(user_account, mine, key=key)

    same_body = await shop.report_created(other_user, mine, key=key)
    own_result = await shop.report_created(other_user, theirs, key=key)  # the 409 kept no key

    assert own_result.status_code == 202
    assert own_result.headers["Idempotent-Replayed"] == "false"
    assert own_result.json()["id"] != original.json()["id"]
    assert own_result.json()["invoiceId"] == theirs["invoiceId"]
    assert same_body.status_code == 409
    assert _code(same_body) == "purchase_already_submitted"
    assert original.json()["id"] not in same_body.text
    assert len(await records.purchases_of_user(other_user.user_id)) == 1


async def test_one_purchase_under_two_keys_is_one_purchase_and_one_credit(
    shop: Shop, user_account: Account, records: Records
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")

    phone, tablet = await asyncio.gather(
        shop.report_created(user_account, created), shop.report_created(user_account, created)
    )

    assert phone.status_code == tablet.status_code == 202
    assert phone.json()["id"] == tablet.json()["id"]
    assert len(await records.purchases_of_invoice(created["invoiceId"])) == 1
    final = await records.wait_final(phone.json()["id"])
    assert final.state == "credited"
    assert len(await records.ledger_of_purchase(final.id)) == 1
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_another_user_cannot_submit_a_submitted_purchase(
    shop: Shop, user_account: Account, make_account: MakeAccount, records: Records
) -> None:
    other_user = await make_account()
    created = await shop.pay_in_rustore(user_account, "coins_100")
    assert (await shop.report_created(user_account, created)).status_code == 202

    response = await shop.report_created(other_user, created)

    assert response.status_code == 409
    assert _code(response) == "purchase_already_submitted"
    assert await records.purchases_of_user(other_user.user_id) == []
    assert await records.idempotency_keys(other_user.user_id) == 0


async def test_points_go_to_the_payer_when_someone_else_submits_first(
    shop: Shop, user_account: Account, make_account: MakeAccount, records: Records
) -> None:
    intruder = await make_account()
    created = await shop.pay_in_rustore(user_account, "coins_100")

    submitted = await shop.report_created(intruder, created)
    assert submitted.status_code == 202
    final = await records.wait_final(submitted.json()["id"])

    assert final.state == "credited"
    assert str(final.user_id) == user_account.user_id
    assert await shop.balance(user_account) == POINTS["coins_100"]
    assert await shop.balance(intruder) == 0
    assert await records.ledger_of_user(intruder.user_id) == []
    hidden = await shop.client.get(f"/api/payments/{final.id}", headers=intruder.headers)
    assert hidden.status_code == 404
    payer_view = await shop.report_created(user_account, created)
    assert payer_view.status_code == 202
    assert payer_view.json()["id"] == str(final.id)
    assert payer_view.json()["status"] == "completed"


async def test_the_payer_takes_over_a_purchase_another_account_reported_first(
    shop: Shop, user_account: Account, make_account: MakeAccount, records: Records
) -> None:
    intruder = await make_account()
    created = await shop.pay_in_rustore(user_account, "coins_100", paid=False)
    submitted = await shop.report_created(intruder, created)
    assert submitted.status_code == 202

    payer_view = await shop.report_created(user_account, created)

    assert payer_view.status_code == 202
    assert payer_view.json()["id"] == submitted.json()["id"]
    gone = await shop.client.get(submitted.json()["statusUrl"], headers=intruder.headers)
    assert gone.status_code == 404
    shop.sandbox.control.pay(created["invoiceId"])
    final = await records.wait_final(submitted.json()["id"])
    assert final.state == "credited"
    assert str(final.user_id) == user_account.user_id
    assert await shop.balance(user_account) == POINTS["coins_100"]
    assert await records.ledger_of_user(intruder.user_id) == []
