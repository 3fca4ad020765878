"""The audit log: every admin action writes its entry in its own transaction, the database refuses
to change the log, and admins and support read it at GET /api/admin/audit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.audit.models import AuditEntry
from core.db import create_sessionmaker
from tests.fixtures.accounts import Account
from tests.fixtures.platform import assert_problem
from tests.fixtures.purchases import PRICES, Shop
from tests.fixtures.subscriptions import Subscriber
from tests.fixtures.webhooks import Webhooks

RESTRICT_VIOLATION = "23001"  # what the append-only trigger raises
AUDIT = "/api/admin/audit"


async def entries_of(engine: AsyncEngine, target_type: str, target_id: str) -> list[AuditEntry]:
    """The target's entries read straight from PostgreSQL, oldest first."""
    async with create_sessionmaker(engine)() as session:
        query = (
            select(AuditEntry)
            .where(AuditEntry.target_type == target_type, AuditEntry.target_id == target_id)
            .order_by(AuditEntry.id)
        )
        return list((await session.execute(query)).scalars())


def assert_made_by(entry: AuditEntry, admin: Account, response: httpx.Response) -> None:
    assert (str(entry.actor_user_id), entry.actor_email) == (admin.user_id, admin.email)
    assert entry.request_id == response.headers["x-request-id"]


async def _adjust(
    client: httpx.AsyncClient, admin: Account, user: Account, kind: str, amount: int
) -> httpx.Response:
    return await client.post(
        f"/api/admin/users/{user.user_id}/points/{kind}",
        json={"amount": amount, "reason": f"ticket 42: {kind}"},
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
    )


async def test_points_grant_and_clawback_are_audited_with_before_and_after(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_account: Account, user_account: Account
) -> None:
    granted = await _adjust(client, admin_account, user_account, "grant", 100)
    clawed = await _adjust(client, admin_account, user_account, "clawback", 130)

    assert (granted.status_code, clawed.status_code) == (200, 200), clawed.text
    grant, clawback = await entries_of(engine, "user", user_account.user_id)
    assert (grant.action, grant.reason) == ("points.grant", "ticket 42: grant")
    assert grant.before == {"balance": 0, "debt": 0}
    assert grant.after is not None
    assert (grant.after["balance"], grant.after["amount"]) == (100, 100)
    assert_made_by(grant, admin_account, granted)
    assert clawback.action == "points.clawback"
    assert clawback.before == {"balance": 100, "debt": 0}
    assert clawback.after is not None
    assert (clawback.after["balance"], clawback.after["debt"]) == (0, 30)
    assert_made_by(clawback, admin_account, clawed)


async def test_a_replayed_idempotent_grant_writes_one_entry(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_account: Account, user_account: Account
) -> None:
    url = f"/api/admin/users/{user_account.user_id}/points/grant"
    headers = {**admin_account.headers, "Idempotency-Key": uuid.uuid4().hex}
    for _ in range(2):
        response = await client.post(url, json={"amount": 5, "reason": "once"}, headers=headers)
        assert response.status_code == 200

    assert len(await entries_of(engine, "user", user_account.user_id)) == 1


async def test_an_admin_action_that_fails_leaves_no_entry(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_account: Account
) -> None:
    stranger = str(uuid.uuid4())
    response = await client.post(
        f"/api/admin/users/{stranger}/points/grant",
        json={"amount": 5, "reason": "nobody"},
        headers={**admin_account.headers, "Idempotency-Key": uuid.uuid4().hex},
    )

    assert response.status_code == 404
    assert await entries_of(engine, "user", stranger) == []


async def test_catalogue_changes_are_audited(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_account: Account
) -> None:
    product_id = f"audit_{uuid.uuid4().hex[:12]}"
    product = {"productId": product_id, "type": "consumable", "title": "Coins", "points": 10}
    created = await client.post("/api/admin/products", json=product, headers=admin_account.headers)
    changed = await client.patch(
        f"/api/admin/products/{product_id}",
        json={"points": 20, "active": False},
        headers=admin_account.headers,
    )

    assert (created.status_code, changed.status_code) == (201, 200), changed.text
    create, update = await entries_of(engine, "product", product_id)
    assert (create.action, create.before) == ("product.create", None)
    assert create.after is not None
    assert (create.after["title"], create.after["points"]) == ("Coins", 10)
    assert_made_by(create, admin_account, created)
    assert update.action == "product.update"
    assert (update.before, update.after) == (
        {"points": 10, "active": True},
        {"points": 20, "active": False},
    )


async def test_notification_replay_is_audited(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhooks: Webhooks,
    shop: Shop,
    admin_account: Account,
) -> None:
    created = shop.sandbox.control.create_purchase(
        "coins_100", PRICES["coins_100"], developer_payload="not-ours"
    )
    body = webhooks.invoice_body(shop.sandbox.control.pay(created["invoiceId"]), "CONFIRMED")
    assert (await webhooks.post(body)).status_code == 200
    row = await webhooks.row(webhooks.id_of(body))
    assert row is not None

    response = await client.post(
        f"/api/admin/notifications/{row.id}/replay", headers=admin_account.headers
    )

    assert response.status_code == 202, response.text
    (entry,) = await entries_of(engine, "notification", str(row.id))
    assert entry.action == "notification.replay"
    assert entry.before is not None
    assert entry.before["status"] == row.status
    assert entry.after == {"status": "received"}
    assert_made_by(entry, admin_account, response)


async def test_subscription_refund_is_audited(
    subscriber: Subscriber,
    engine: AsyncEngine,
    user_account: Account,
    admin_account: Account,
    pipeline_worker: Any,
) -> None:
    sub = await subscriber.subscribe(user_account)
    url = f"/api/admin/subscriptions/{sub.id}/refund"

    first = await subscriber.client.post(url, headers=admin_account.headers)
    again = await subscriber.client.post(url, headers=admin_account.headers)

    assert (first.status_code, again.status_code) == (200, 200), first.text
    (entry,) = await entries_of(engine, "subscription", sub.id)  # the repeat changed nothing
    assert entry.action == "subscription.refund"
    assert entry.before is not None
    assert entry.before["status"] == "active"
    assert entry.after is not None
    assert entry.after["status"] == "refunded"
    assert_made_by(entry, admin_account, first)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET reason = 'edited' WHERE target_id = :target",
        "UPDATE audit_log SET after = NULL WHERE target_id = :target",
        "DELETE FROM audit_log WHERE target_id = :target",
        "TRUNCATE audit_log",
    ],
)
async def test_the_database_refuses_to_change_the_log(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    db_session: AsyncSession,
    admin_account: Account,
    user_account: Account,
    sql: str,
) -> None:
    assert (await _adjust(client, admin_account, user_account, "grant", 7)).status_code == 200
    before = await entries_of(engine, "user", user_account.user_id)

    with pytest.raises(DBAPIError) as refused:
        await db_session.execute(text(sql), {"target": user_account.user_id})
    await db_session.rollback()

    assert getattr(refused.value.orig, "sqlstate", None) == RESTRICT_VIOLATION
    after = await entries_of(engine, "user", user_account.user_id)
    assert [(e.id, e.reason, e.after) for e in after] == [(e.id, e.reason, e.after) for e in before]


async def test_admins_and_support_read_the_log_newest_first_in_pages(
    client: httpx.AsyncClient,
    admin_account: Account,
    support_account: Account,
    user_account: Account,
) -> None:
    for amount in (1, 2, 3):
        assert (await _adjust(client, admin_account, user_account, "grant", amount)).is_success
    query = {"targetType": "user", "targetId": user_account.user_id, "limit": 2}

    first = await client.get(AUDIT, params=query, headers=support_account.headers)
    cursor = first.json()["nextCursor"]
    second = await client.get(
        AUDIT, params={**query, "cursor": cursor}, headers=admin_account.headers
    )

    assert first.status_code == 200, first.text
    amounts = [item["after"]["amount"] for item in first.json()["items"]]
    amounts += [item["after"]["amount"] for item in second.json()["items"]]
    assert amounts == [3, 2, 1]
    item = first.json()["items"][0]
    assert (item["action"], item["actorEmail"], item["targetId"]) == (
        "points.grant",
        admin_account.email,
        user_account.user_id,
    )
    assert second.json()["nextCursor"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "abc"}, "invalid_cursor"),
        ({"targetType": "planet"}, "validation_error"),
        ({"limit": 0}, "validation_error"),
    ],
)
async def test_a_malformed_listing_is_a_400(
    client: httpx.AsyncClient, admin_account: Account, params: dict[str, Any], code: str
) -> None:
    response = await client.get(AUDIT, params=params, headers=admin_account.headers)

    assert_problem(response, 400, code)


async def test_users_cannot_read_the_log(client: httpx.AsyncClient, user_account: Account) -> None:
    assert (await client.get(AUDIT, headers=user_account.headers)).status_code == 403
    assert (await client.get(AUDIT)).status_code == 401
