"""Scenario 21: spends racing for one balance; the account row lock lets in what it holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_sessionmaker
from tests.fixtures.accounts import Account
from tests.fixtures.points import AuditFn, FundFn

SPENDS = 100
PRICE = 10
BALANCE = 500


async def _spend(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.post(
        "/api/points/spend",
        json={"amount": PRICE, "reason": "race"},
        headers={**account.headers, "Idempotency-Key": uuid.uuid4().hex},
    )


async def test_concurrent_spends_take_exactly_the_balance(
    client: httpx.AsyncClient, user_account: Account, fund: FundFn, audit: AuditFn
) -> None:
    await fund(user_account, BALANCE)

    responses = await asyncio.gather(*(_spend(client, user_account) for _ in range(SPENDS)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: BALANCE // PRICE, 409: SPENDS - BALANCE // PRICE}, [
        r.text for r in responses if r.status_code >= 500
    ]
    refused = {r.json()["code"] for r in responses if r.status_code == 409}
    assert refused == {"insufficient_points"}
    remaining = sorted(r.json()["balance"] for r in responses if r.status_code == 200)
    assert remaining == list(range(0, BALANCE, PRICE)), "each success saw its own balance"
    after = await audit(user_account.user_id)
    after.assert_consistent()
    assert (after.balance, after.entries) == (0, 1 + BALANCE // PRICE)


async def test_a_spend_blocked_by_a_held_account_lock_fails_fast_with_503(
    client: httpx.AsyncClient,
    user_account: Account,
    fund: FundFn,
    audit: AuditFn,
    engine: AsyncEngine,
) -> None:
    """Scenario 15's "wallet row locked by another session": a bounded wait, then a clear 503."""
    await fund(user_account, BALANCE)
    async with create_sessionmaker(engine)() as holder:
        await holder.execute(
            text("SELECT 1 FROM points_accounts WHERE user_id = :user_id FOR UPDATE"),
            {"user_id": uuid.UUID(user_account.user_id)},
        )
        started = time.monotonic()
        response = await _spend(client, user_account)
        waited = time.monotonic() - started
        await holder.rollback()

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert waited < 5
    assert (await audit(user_account.user_id)).balance == BALANCE
    assert (await _spend(client, user_account)).status_code == 200, "free again once released"
