"""Scenario 23: RuStore refunds a purchase whose points were already spent.

The policy (core/points/service.py, docs/points.md): take back what the balance holds with a
compensating clawback, record the rest as debt, and let later credits pay the debt off first.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import driver_transaction
from core.points import service as points
from core.points.models import EntrySource
from tests.fixtures.accounts import Account
from tests.fixtures.points import AuditFn


@pytest.fixture
def ledger(engine: AsyncEngine, user_account: Account) -> Ledger:
    return Ledger(engine, uuid.UUID(user_account.user_id))


class Ledger:
    """The pipeline's side of one user's points: purchase credits and refunds, each committed."""

    def __init__(self, engine: AsyncEngine, user_id: uuid.UUID) -> None:
        self.engine = engine
        self.user_id = user_id

    async def credit(self, purchase_id: str, amount: int) -> points.Change:
        async with driver_transaction(self.engine) as connection:
            return await points.credit(
                connection, self.user_id, amount, source=EntrySource.PURCHASE, source_id=purchase_id
            )

    async def refund(self, purchase_id: str, amount: int) -> points.Change:
        async with driver_transaction(self.engine) as connection:
            return await points.claw_back(
                connection, self.user_id, amount, source=EntrySource.PURCHASE,
                source_id=purchase_id, reason="RuStore refunded the purchase",
            )  # fmt: skip


async def _history(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/api/points/history?limit=100", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _spend(client: httpx.AsyncClient, account: Account, amount: int) -> httpx.Response:
    return await client.post(
        "/api/points/spend",
        json={"amount": amount, "reason": "shop"},
        headers={**account.headers, "Idempotency-Key": uuid.uuid4().hex},
    )


def _rows(entries: list[dict[str, Any]]) -> list[tuple[str, int, int, str]]:
    return [(e["type"], e["amount"], e["balanceAfter"], e["reference"]) for e in entries]


async def test_refund_of_spent_points_becomes_debt_that_later_credits_repay(
    client: httpx.AsyncClient,
    user_account: Account,
    admin_account: Account,
    ledger: Ledger,
    audit: AuditFn,
) -> None:
    await ledger.credit("p-refunded", 100)
    assert (await _spend(client, user_account, 70)).status_code == 200
    before_refund = await _history(client, user_account)

    refund = await ledger.refund("p-refunded", 100)

    assert (refund.balance, refund.debt) == (0, 70)
    assert [(e.kind, e.amount) for e in refund.entries] == [("clawback", -30)]
    after_refund = await _history(client, user_account)
    assert after_refund[1:] == before_refund, "earlier entries are never changed"
    assert _rows(after_refund[:1]) == [("clawback", -30, 0, "purchase:p-refunded")]
    assert not (await ledger.refund("p-refunded", 100)).applied, "a redelivered refund is a no-op"
    assert (await _spend(client, user_account, 1)).json()["code"] == "insufficient_points"

    small = await ledger.credit("p-next", 50)

    assert (small.balance, small.debt) == (0, 20)
    credit_id = small.entries[0].id
    assert _rows((await _history(client, user_account))[:2]) == [
        ("clawback", -50, 0, f"debt:{credit_id}"),
        ("credit", 50, 50, "purchase:p-next"),
    ]

    granted = await client.post(
        f"/api/admin/users/{user_account.user_id}/points/grant",
        json={"amount": 100, "reason": "goodwill"},
        headers={**admin_account.headers, "Idempotency-Key": uuid.uuid4().hex},
    )

    assert granted.json() == {"balance": 80, "debt": 0}
    history = await _history(client, user_account)
    assert [(e["type"], e["amount"], e["balanceAfter"]) for e in history[:2]] == [
        ("clawback", -20, 80),
        ("grant", 100, 100),
    ]
    assert all(e["balanceAfter"] >= 0 for e in history)
    final = await audit(user_account.user_id)
    final.assert_consistent()
    assert (final.balance, final.debt, final.entries) == (80, 0, 7)


async def test_refund_of_unspent_points_takes_them_all_back(
    ledger: Ledger, user_account: Account, audit: AuditFn
) -> None:
    await ledger.credit("p-whole", 100)
    await ledger.credit("p-kept", 40)

    refund = await ledger.refund("p-whole", 100)

    assert (refund.balance, refund.debt) == (40, 0)
    assert [(e.kind, e.amount) for e in refund.entries] == [("clawback", -100)]
    (await audit(user_account.user_id)).assert_consistent()


async def test_refund_with_nothing_left_records_the_whole_debt(
    client: httpx.AsyncClient, ledger: Ledger, user_account: Account
) -> None:
    await ledger.credit("p-gone", 60)
    assert (await _spend(client, user_account, 60)).status_code == 200

    refund = await ledger.refund("p-gone", 60)

    assert (refund.balance, refund.debt) == (0, 60)
    assert _rows((await _history(client, user_account))[:1]) == [
        ("clawback", 0, 0, "purchase:p-gone")
    ], "a zero clawback still marks the refund as done, so a redelivery is a no-op"
    assert not (await ledger.refund("p-gone", 60)).applied
