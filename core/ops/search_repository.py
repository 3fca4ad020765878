"""The SQL behind ops search: every lookup is an equality on an indexed column (or a state and
the newest first), so each search stays on an index however many rows there are.

The indexes it relies on: the primary keys, the unique RuStore ids and `users.email`, the
`user_id` indexes, and from migration 0007 the order-id, invoice-id and state-then-created-at
indexes of purchases and subscriptions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.accounts.models import User
from core.purchases.models import Purchase, PurchaseState
from core.subscriptions.models import Subscription, Verification

VERIFICATIONS = frozenset(Verification)
Row = TypeVar("Row", Purchase, Subscription)
SUBSCRIPTION_TEXTS = [Subscription.rustore_purchase_id, Subscription.subscription_token]


@dataclass(frozen=True)
class Terms:
    """What a search box held, read every way it can be: an id, a number, an email, a string.
    `None` for the whole dataclass means no query at all (everything, newest first)."""

    uuid: uuid.UUID | None = None
    number: int | None = None
    email: str | None = None
    text: str | None = None


class SearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def purchases(self, terms: Terms | None, state: str | None, limit: int) -> list[Purchase]:
        """By purchase, user, order or invoice id, RuStore purchase id or email; newest first."""
        if terms is None:  # the newest of one state, or of each state
            states = [state] if state is not None else list(PurchaseState)
            return await self._newest(Purchase, [Purchase.state == s for s in states], [], limit)
        filters = [Purchase.state == state] if state is not None else []
        return await self._newest(
            Purchase, _matches(Purchase, terms, [Purchase.rustore_purchase_id]), filters, limit
        )

    async def subscriptions(
        self, terms: Terms | None, state: str | None, limit: int
    ) -> list[Subscription]:
        """As `purchases`; `state` is a verification step (pending…) or a status (active…)."""
        filters = []
        if state in VERIFICATIONS:
            filters.append(Subscription.verification == state)
        elif state is not None:
            filters.append(Subscription.status == state)
        if terms is None:  # the newest in that state, or of each verification step
            every = [Subscription.verification == step for step in Verification]
            return await self._newest(Subscription, filters or every, [], limit)
        return await self._newest(
            Subscription, _matches(Subscription, terms, SUBSCRIPTION_TEXTS), filters, limit
        )

    async def users(self, terms: Terms, limit: int) -> list[User]:
        matches = []
        if terms.uuid is not None:
            matches.append(User.id == terms.uuid)
        if terms.email is not None:
            matches.append(User.email == terms.email)
        if not matches:
            return []
        query = select(User).where(or_(*matches)).order_by(User.created_at.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def _newest(
        self,
        model: type[Row],
        matches: list[ColumnElement[bool]],
        filters: list[ColumnElement[bool]],
        limit: int,
    ) -> list[Row]:
        """The newest `limit` rows matching any of `matches`, and all of `filters`.

        Each match is its own `ORDER BY created_at DESC LIMIT n` branch of a UNION, so each
        runs on the index that suits it (a user's purchases on the user index, an id on its
        unique key, a state on the state index) and reads at most `limit` rows; one OR would
        make PostgreSQL collect every match of every branch (all 25,000 purchases of a user)
        before sorting them. The newest of all rows are the newest of each state's, which
        spares the table an index on `created_at` alone that the planner would then prefer,
        wrongly, for a user's own purchase list.
        """
        newest = (model.created_at.desc(), model.id.desc())
        if not matches:
            return []
        branches = [
            select(model.id).where(match, *filters).order_by(*newest).limit(limit)
            for match in matches
        ]
        found = union(*branches).subquery()
        query = select(model).where(model.id.in_(select(found.c.id))).order_by(*newest)
        return list((await self.session.execute(query.limit(limit))).scalars())


def _matches(
    model: type[Row], terms: Terms, texts: list[InstrumentedAttribute[str | None]]
) -> list[ColumnElement[bool]]:
    """Each reading of the search box as a condition on `model`'s indexed columns."""
    matches = []
    if terms.uuid is not None:
        matches += [column == terms.uuid for column in (model.id, model.user_id, model.order_id)]
    if terms.number is not None:
        matches.append(model.invoice_id == terms.number)
    if terms.email is not None:
        matches.append(model.user_id.in_(_users_with_email(terms.email)))
    if terms.text is not None:
        matches += [column == terms.text for column in texts]
    return matches


def _users_with_email(email: str) -> Select[uuid.UUID]:
    return select(User.id).where(User.email == email)
