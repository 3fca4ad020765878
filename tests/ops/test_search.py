"""Ops search: one box that finds purchases, subscriptions and users by any of their ids, an
email or a state, the card of one user, and every purchase search on an index with 100,000+
purchases in the table."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import create_sessionmaker, session_driver, utcnow
from core.errors import InvalidRequestError, NotFoundError
from core.ops import search
from core.points import service as points
from core.points.models import EntrySource
from core.purchases.models import Purchase
from core.purchases.repository import PurchaseRepository
from core.subscriptions.models import Subscription
from core.subscriptions.repository import SubscriptionRepository
from tests.fixtures.accounts import Account
from tests.points.test_query_plans import INVOICE_BASE, Bulk, assert_indexed, explain, recorded_sql
from tests.points.test_query_plans import bulk as bulk  # the module's 100,000 purchases


@dataclass(frozen=True)
class Bought:
    purchase: Purchase
    subscription: Subscription


async def _insert(session: AsyncSession, account: Account, state: str, **ids: object) -> Purchase:
    purchase = await PurchaseRepository(session).insert_new(
        {
            "id": uuid.uuid4(),
            "user_id": uuid.UUID(account.user_id),
            "product_id": "coins_100",
            "invoice_id": uuid.uuid4().int % 10**15,
            "rustore_purchase_id": f"rs-{uuid.uuid4().hex}",
            "order_id": uuid.uuid4(),
            "state": state,
            **ids,
        }
    )
    assert purchase is not None
    return purchase


@pytest.fixture
async def bought(engine: AsyncEngine, user_account: Account) -> Bought:
    """A user with a credited and a pending purchase and a verified subscription."""
    async with create_sessionmaker(engine)() as session:
        await _insert(session, user_account, "pending", created_at=utcnow() - dt.timedelta(hours=1))
        purchase = await _insert(session, user_account, "credited")
        subscription = await SubscriptionRepository(session).insert_new(
            {
                "id": uuid.uuid4(),
                "user_id": uuid.UUID(user_account.user_id),
                "product_id": "premium",
                "subscription_token": f"token-{uuid.uuid4().hex}",
                "invoice_id": uuid.uuid4().int % 10**15,
                "order_id": uuid.uuid4(),
                "verification": "verified",
                "status": "active",
            }
        )
        assert subscription is not None
        await session.commit()
    return Bought(purchase, subscription)


async def test_a_purchase_is_found_by_each_of_its_ids_and_its_owner(
    db_session: AsyncSession, bought: Bought, user_account: Account
) -> None:
    purchase = bought.purchase
    queries = [
        str(purchase.id),
        str(purchase.order_id),
        str(purchase.invoice_id),
        purchase.rustore_purchase_id,
        f"  {purchase.rustore_purchase_id}  ",
    ]
    for query in queries:
        found = await search.search_purchases(db_session, query=query)
        assert [p.id for p in found] == [purchase.id], query

    for owner in (user_account.user_id, user_account.email.upper()):
        found = await search.search_purchases(db_session, query=owner)
        assert [p.state for p in found] == ["credited", "pending"], "newest first"
        credited = await search.search_purchases(db_session, query=owner, state="credited")
        assert [p.id for p in credited] == [purchase.id]


async def test_searches_that_match_nothing_find_nothing(
    db_session: AsyncSession, bought: Bought
) -> None:
    for query in (str(uuid.uuid4()), "nobody@example.com", "no-such-purchase", "123"):
        assert await search.search_purchases(db_session, query=query) == []
        assert await search.search_subscriptions(db_session, query=query) == []
        assert await search.search_users(db_session, query=query) == []


async def test_an_empty_query_lists_the_newest_in_a_state(
    db_session: AsyncSession, bought: Bought
) -> None:
    newest = await search.search_purchases(db_session, query="", state="credited", limit=1)

    assert [p.id for p in newest] == [bought.purchase.id]
    assert await search.search_users(db_session, query=None) == []


async def test_a_subscription_is_found_by_its_ids_owner_and_state(
    db_session: AsyncSession, bought: Bought, user_account: Account
) -> None:
    sub = bought.subscription
    for query in (
        str(sub.id),
        str(sub.order_id),
        str(sub.invoice_id),
        sub.subscription_token,
        user_account.user_id,
        user_account.email,
    ):
        found = await search.search_subscriptions(db_session, query=query)
        assert [s.id for s in found] == [sub.id], query
    for state, expected in (("active", [sub.id]), ("verified", [sub.id]), ("grace", [])):
        found = await search.search_subscriptions(db_session, query=user_account.email, state=state)
        assert [s.id for s in found] == expected, state


@pytest.mark.parametrize(
    ("kind", "state"), [("purchases", "active"), ("subscriptions", "credited"), ("purchases", "x")]
)
async def test_an_unknown_state_is_a_client_error(
    db_session: AsyncSession, kind: str, state: str
) -> None:
    finder = search.search_purchases if kind == "purchases" else search.search_subscriptions
    with pytest.raises(InvalidRequestError) as refused:
        await finder(db_session, query=None, state=state)
    assert refused.value.code == "invalid_state"


async def test_an_overlong_query_is_a_client_error(db_session: AsyncSession) -> None:
    with pytest.raises(InvalidRequestError):
        await search.search_purchases(db_session, query="x" * 300)


async def test_users_are_found_by_id_and_email_and_have_a_card(
    db_session: AsyncSession, bought: Bought, user_account: Account
) -> None:
    user_id = uuid.UUID(user_account.user_id)
    ledger = await session_driver(db_session)
    await points.credit(
        ledger, user_id, 70, source=EntrySource.PURCHASE, source_id=str(bought.purchase.id)
    )
    await points.claw_back(
        ledger, user_id, 100, source=EntrySource.PURCHASE, source_id=str(bought.purchase.id),
        reason="refunded",
    )  # fmt: skip
    await db_session.commit()

    for query in (user_account.user_id, user_account.email.title()):
        assert [u.id for u in await search.search_users(db_session, query=query)] == [user_id]
    card = await search.user_card(db_session, user_id)

    assert (card.user.email, card.balance, card.debt) == (user_account.email, 0, 30)
    assert [(e.kind, e.amount) for e in card.ledger] == [("clawback", -70), ("credit", 70)]
    assert [s.id for s in card.subscriptions] == [bought.subscription.id]
    assert [p.state for p in card.purchases] == ["credited", "pending"]


async def test_the_card_of_an_unknown_user_is_not_found(db_session: AsyncSession) -> None:
    with pytest.raises(NotFoundError):
        await search.user_card(db_session, uuid.uuid4())


async def test_every_purchase_search_stays_on_an_index(
    engine: AsyncEngine, db_session: AsyncSession, bulk: Bulk
) -> None:
    owner = bulk.user_ids[0]
    bulky = (await search.search_purchases(db_session, query=str(owner), limit=1))[0]
    email = (await search.user_card(db_session, owner)).user.email
    unknown = str(uuid.uuid4())
    searches: list[tuple[str | None, str | None]] = [
        (str(bulky.id), None),
        (str(owner), None),
        (str(owner), "pending"),
        (email, None),
        (str(INVOICE_BASE + 17), None),
        ("bulk-7000000000017", None),
        (unknown, "credited"),
        (None, None),
        (None, "pending"),
    ]
    for query, state in searches:
        with recorded_sql() as statements:
            found = await search.search_purchases(db_session, query=query, state=state)
        assert found or query == unknown, (query, state)
        [statement] = statements
        plan = await explain(engine, statement, analyze=True)
        assert_indexed(plan, "purchases")
        assert plan["Plan"]["Actual Total Time"] < 50, (query, state)
