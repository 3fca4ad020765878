"""The points api over HTTP: balance, history, spending, and admin corrections."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from core.accounts.models import Role
from tests.fixtures.accounts import Account, MakeAccount
from tests.fixtures.points import AuditFn, FundFn

ENTRY_FIELDS = {"id", "type", "amount", "balanceAfter", "reference", "reason", "createdAt"}


def _keyed(account: Account, key: str | None = None) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def _spend(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await client.post("/api/points/spend", json=body, headers=_keyed(account, key))


async def _balance(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get("/api/points/balance", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _history(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> list[dict[str, Any]]:
    """Every entry, following the cursor page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/points/history", params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items


async def test_a_new_user_has_nothing(client: httpx.AsyncClient, user_account: Account) -> None:
    assert await _balance(client, user_account) == {"balance": 0, "debt": 0}
    assert await _history(client, user_account) == []


async def test_profile_shows_the_ledger_balance(
    client: httpx.AsyncClient, user_account: Account, fund: FundFn
) -> None:
    await fund(user_account, 250)
    assert (await _spend(client, user_account, {"amount": 40, "reason": "hat"})).status_code == 200

    profile = await client.get("/api/user/profile", headers=user_account.headers)

    assert profile.status_code == 200, profile.text
    assert (
        profile.json()["pointsBalance"] == 210 == (await _balance(client, user_account))["balance"]
    )


async def test_history_pages_newest_first_and_only_the_callers(
    client: httpx.AsyncClient, make_account: MakeAccount, fund: FundFn
) -> None:
    owner, other = await make_account(), await make_account()
    await fund(other, 999)
    for amount in (100, 200, 300):
        await fund(owner, amount)
    for amount in (50, 70):
        response = await _spend(client, owner, {"amount": amount, "reason": f"item {amount}"})
        assert response.status_code == 200, response.text

    entries = await _history(client, owner, limit=2)

    assert [e["amount"] for e in entries] == [-70, -50, 300, 200, 100]
    assert [e["balanceAfter"] for e in entries] == [480, 550, 600, 300, 100]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert all(set(e) == ENTRY_FIELDS for e in entries)
    assert entries[0]["type"] == "spend"
    assert entries[0]["reason"] == "item 70"
    assert entries[0]["reference"].startswith("spend:")
    assert entries[-1]["type"] == "grant"
    assert entries[-1]["reference"].startswith("admin:")


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "abc"},
        {"cursor": "-1"},
        {"cursor": "²"},  # str.isdigit() says yes, int() says no
        {"cursor": "9" * 30},  # beyond bigint: must not reach PostgreSQL
        {"limit": 0},
        {"limit": 101},
    ],
)
async def test_history_refuses_a_bad_cursor_or_limit(
    client: httpx.AsyncClient, user_account: Account, params: dict[str, Any]
) -> None:
    response = await client.get("/api/points/history", params=params, headers=user_account.headers)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "reason": "zero"},
        {"amount": -10, "reason": "negative"},
        {"amount": 1.5, "reason": "fraction"},
        {"amount": 10},
        {"amount": 10, "reason": ""},
        {"amount": 10, "reason": "x", "userId": str(uuid.uuid4())},
        {"amount": 10, "reason": "x", "balance": 1_000_000},
    ],
)
async def test_a_malformed_spend_is_400_and_changes_nothing(
    client: httpx.AsyncClient, user_account: Account, fund: FundFn, body: dict[str, Any]
) -> None:
    await fund(user_account, 100)

    response = await _spend(client, user_account, body)

    assert response.status_code == 400, response.text
    assert await _balance(client, user_account) == {"balance": 100, "debt": 0}


async def test_a_spend_without_idempotency_key_is_400(
    client: httpx.AsyncClient, user_account: Account, fund: FundFn
) -> None:
    await fund(user_account, 100)

    response = await client.post(
        "/api/points/spend", json={"amount": 10, "reason": "x"}, headers=user_account.headers
    )

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"
    assert (await _balance(client, user_account))["balance"] == 100


async def test_a_repeated_spend_replays_the_first_answer(
    client: httpx.AsyncClient, user_account: Account, fund: FundFn, audit: AuditFn
) -> None:
    await fund(user_account, 100)
    body = {"amount": 30, "reason": "sword"}

    first = await _spend(client, user_account, body, key="spend-1")
    again = await _spend(client, user_account, body, key="spend-1")
    other_body = await _spend(client, user_account, {**body, "amount": 31}, key="spend-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert first.json() == {"balance": 70, "debt": 0}
    assert (first.headers["idempotent-replayed"], again.headers["idempotent-replayed"]) == (
        "false",
        "true",
    )
    assert other_body.status_code == 422
    assert (await audit(user_account.user_id)).entries == 2


async def test_a_refused_spend_leaves_its_key_free_for_a_retry(
    client: httpx.AsyncClient, user_account: Account, fund: FundFn, audit: AuditFn
) -> None:
    body = {"amount": 80, "reason": "shield"}

    refused = await _spend(client, user_account, body, key="retry-me")
    await fund(user_account, 100)
    retried = await _spend(client, user_account, body, key="retry-me")

    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_points"
    assert refused.json()["balance"] == 0
    assert retried.status_code == 200
    assert retried.json()["balance"] == 20
    (await audit(user_account.user_id)).assert_consistent()


async def test_support_cannot_spend(client: httpx.AsyncClient, support_account: Account) -> None:
    response = await _spend(client, support_account, {"amount": 1, "reason": "x"})
    assert response.status_code == 403


async def _adjust(
    client: httpx.AsyncClient, admin: Account, user_id: str, action: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"/api/admin/users/{user_id}/points/{action}", json=body, headers=_keyed(admin)
    )


@pytest.mark.parametrize("action", ["grant", "clawback"])
@pytest.mark.parametrize("role", [Role.USER, Role.SUPPORT])
async def test_only_admins_adjust_points(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    user_account: Account,
    audit: AuditFn,
    role: Role,
    action: str,
) -> None:
    caller = await make_account(role)

    response = await _adjust(
        client, caller, user_account.user_id, action, {"amount": 5, "reason": "x"}
    )

    assert response.status_code == 403
    assert (await audit(user_account.user_id)).entries == 0


@pytest.mark.parametrize("action", ["grant", "clawback"])
async def test_adjusting_an_unknown_user_is_404(
    client: httpx.AsyncClient, admin_account: Account, action: str
) -> None:
    response = await _adjust(
        client, admin_account, str(uuid.uuid4()), action, {"amount": 5, "reason": "x"}
    )
    assert response.status_code == 404, response.text


async def test_admin_grant_and_clawback_show_in_the_users_history(
    client: httpx.AsyncClient, admin_account: Account, user_account: Account, audit: AuditFn
) -> None:
    granted = await _adjust(
        client, admin_account, user_account.user_id, "grant", {"amount": 100, "reason": "sorry"}
    )
    clawed = await _adjust(
        client, admin_account, user_account.user_id, "clawback", {"amount": 130, "reason": "fraud"}
    )

    assert granted.json() == {"balance": 100, "debt": 0}
    assert clawed.json() == {"balance": 0, "debt": 30}
    entries = await _history(client, user_account)
    assert [(e["type"], e["amount"], e["reason"]) for e in entries] == [
        ("clawback", -100, "fraud"),
        ("grant", 100, "sorry"),
    ]
    assert await _balance(client, user_account) == {"balance": 0, "debt": 30}
    (await audit(user_account.user_id)).assert_consistent()


async def test_an_admin_adjustment_needs_a_reason(
    client: httpx.AsyncClient, admin_account: Account, user_account: Account
) -> None:
    response = await _adjust(client, admin_account, user_account.user_id, "grant", {"amount": 5})
    assert response.status_code == 400
