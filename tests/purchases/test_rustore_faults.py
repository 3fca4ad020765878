"""RuStore misbehaving (reliability scenarios 12 and 13): 5xx, 429, resets, hangs and garbled
bodies are outlasted without a second confirm; when retries run out the purchase fails, uncredited.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from core.queue import PURCHASE_VERIFY
from tests.fixtures.accounts import Account
from tests.fixtures.platform import send_job
from tests.fixtures.processes import Process
from tests.fixtures.purchases import (
    POINTS,
    CallCounter,
    Records,
    Shop,
    confirm_glob,
    invoice_glob,
)

READ_FAULT_TIMES = 5
"""More than the RuStore client's own 4 attempts, so the job itself has to retry as well."""


async def _buy_through_faults(
    shop: Shop, account: Account, records: Records, glob_of: str, fault: dict[str, Any]
) -> tuple[dict[str, Any], CallCounter]:
    """A two-stage purchase reported under `fault`; returns it and a counter of the confirms
    that got past the fault to RuStore."""
    created = await shop.pay_in_rustore(account, "coins_500", two_stage=True)
    path = (
        invoice_glob(created["invoiceId"])
        if glob_of == "read"
        else confirm_glob(created["purchaseId"])
    )
    shop.sandbox.control.set_fault(path, **fault)
    confirms = CallCounter.on(shop.sandbox.control, confirm_glob(created["purchaseId"]))
    response = await shop.report_created(account, created)
    final = await records.wait_final(response.json()["id"], within=40)
    assert final.state == "credited", final.failure_reason
    assert len(await records.ledger_of_purchase(final.id)) == 1
    return created, confirms


@pytest.mark.parametrize(
    ("glob_of", "fault"),
    [
        ("read", {"error_rate": 1, "times": READ_FAULT_TIMES}),
        ("read", {"error_rate": 1, "error_status": 500, "times": READ_FAULT_TIMES}),
        ("read", {"rate_limit_rate": 1, "times": READ_FAULT_TIMES}),
        ("read", {"reset_rate": 1, "times": READ_FAULT_TIMES}),
        ("read", {"malformed_rate": 1, "times": READ_FAULT_TIMES}),
        ("confirm", {"error_rate": 1, "times": 2}),
        ("confirm", {"reset_rate": 1, "times": 2}),
    ],
    ids=["read-503", "read-500", "read-429", "read-reset", "read-malformed", "confirm-503",
         "confirm-reset"],
)  # fmt: skip
async def test_purchase_completes_after_rustore_recovers_with_one_confirm(
    shop: Shop,
    user_account: Account,
    records: Records,
    pipeline_worker: Process,
    glob_of: str,
    fault: dict[str, Any],
) -> None:
    created, confirms = await _buy_through_faults(shop, user_account, records, glob_of, fault)

    assert confirms.count == 1
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "CONFIRMED"
    assert await shop.balance(user_account) == POINTS["coins_500"]
    assert pipeline_worker.popen.poll() is None  # no answer crashes the worker


async def test_purchase_completes_after_rustore_hangs(
    shop: Shop, user_account: Account, records: Records, pipeline_worker: Process
) -> None:
    _, confirms = await _buy_through_faults(
        shop, user_account, records, "read", {"hang_rate": 1, "times": 1}
    )

    assert confirms.count == 1
    assert await shop.balance(user_account) == POINTS["coins_500"]


async def test_purchase_fails_uncredited_when_retries_run_out(
    shop: Shop, user_account: Account, records: Records, pipeline_worker: Process
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_500", two_stage=True)
    shop.sandbox.control.set_fault(invoice_glob(created["invoiceId"]), error_rate=1)
    confirms = CallCounter.on(shop.sandbox.control, confirm_glob(created["purchaseId"]))
    purchase = await records.submit_without_sending(user_account, created)

    send_job(
        os.environ["REDIS_URL"], PURCHASE_VERIFY, str(purchase.id), max_retries=1, min_backoff=100
    )
    final = await records.wait_final(purchase.id)

    assert final.state == "failed"
    assert final.failure_reason == "RuStore: Something went wrong"
    assert final.attempts == 2
    assert (final.points_credited, confirms.count) == (0, 0)
    assert await records.ledger_of_purchase(purchase.id) == []
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "PAID"
    polled = await shop.client.get(f"/api/payments/{purchase.id}", headers=user_account.headers)
    assert (polled.json()["status"], polled.json()["failureReason"]) == (
        "failed",
        "RuStore: Something went wrong",
    )
