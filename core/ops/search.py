"""Finding purchases, subscriptions and users for ops, and the card of one user.

    async def search_purchases(session, *, query: str | None, state: str | None = None,
                               limit: int = 50) -> list[Purchase]
    async def search_subscriptions(session, *, query: str | None, state: str | None = None,
                                   limit: int = 50) -> list[Subscription]
    async def search_users(session, *, query: str | None, limit: int = 50) -> list[User]
    async def user_card(session, user_id: uuid.UUID, *, entries: int = 20) -> UserCard

One search box: `query` is read as whatever it can be, and a row matching any reading is found.
A UUID is a purchase/subscription id, a user id or an order id; digits are an invoice id; an
address with `@` is a user's email (case-insensitive); anything else is a RuStore purchase id
(or a legacy subscription token). An empty query lists the newest purchases or subscriptions
(users are only found by a query). `state` filters purchases by
their state and subscriptions by verification step or status; an unknown state is a 400. Every
reading is an equality on an indexed column, so each search stays on an index.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import User
from core.errors import InvalidRequestError, NotFoundError
from core.ops.search_repository import SearchRepository, Terms
from core.points import service as points
from core.points.models import LedgerEntry
from core.purchases.models import Purchase, PurchaseState
from core.subscriptions.derivation import SubscriptionStatus
from core.subscriptions.models import Subscription, Verification

BIGINT_MAX = 2**63 - 1
QUERY_MAX = 254
PURCHASE_STATES = frozenset(PurchaseState)
SUBSCRIPTION_STATES = frozenset(Verification) | frozenset(SubscriptionStatus)
CARD_ROWS = 20


@dataclass(frozen=True)
class UserCard:
    """What support needs to answer "where are my points?" on one screen."""

    user: User
    balance: int
    debt: int
    ledger: list[LedgerEntry]
    """The newest entries first."""
    subscriptions: list[Subscription]
    purchases: list[Purchase]
    """The newest purchases first."""


async def search_purchases(
    session: AsyncSession, *, query: str | None, state: str | None = None, limit: int = 50
) -> list[Purchase]:
    _require_state(state, PURCHASE_STATES)
    return await SearchRepository(session).purchases(read_query(query), state, limit)


async def search_subscriptions(
    session: AsyncSession, *, query: str | None, state: str | None = None, limit: int = 50
) -> list[Subscription]:
    _require_state(state, SUBSCRIPTION_STATES)
    return await SearchRepository(session).subscriptions(read_query(query), state, limit)


async def search_users(session: AsyncSession, *, query: str | None, limit: int = 50) -> list[User]:
    terms = read_query(query)
    return [] if terms is None else await SearchRepository(session).users(terms, limit)


async def user_card(
    session: AsyncSession, user_id: uuid.UUID, *, entries: int = CARD_ROWS
) -> UserCard:
    """The user, their balance and debt, newest ledger entries, subscriptions and purchases."""
    repository = SearchRepository(session)
    user = await repository.user(user_id)
    if user is None:
        raise NotFoundError(f"No user {user_id}", code="user_not_found")
    balance, debt = await points.standing(session, user_id)
    by_user = Terms(uuid=user_id)
    return UserCard(
        user=user,
        balance=balance,
        debt=debt,
        ledger=await points.history(session, user_id, None, entries),
        subscriptions=await repository.subscriptions(by_user, None, entries),
        purchases=await repository.purchases(by_user, None, entries),
    )


def read_query(query: str | None) -> Terms | None:
    """Every reading of a search box (see the module docstring); None for an empty one."""
    text = (query or "").strip()
    if not text:
        return None
    if len(text) > QUERY_MAX:
        raise InvalidRequestError(f"query: at most {QUERY_MAX} characters", code="invalid_query")
    as_uuid = _uuid(text)
    number = int(text) if text.isascii() and text.isdigit() and int(text) <= BIGINT_MAX else None
    email = text.lower() if "@" in text else None
    return Terms(uuid=as_uuid, number=number, email=email, text=text)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _require_state(state: str | None, known: frozenset[str]) -> None:
    if state is not None and state not in known:
        raise InvalidRequestError(f"state: one of {', '.join(sorted(known))}", code="invalid_state")
