"""What the api does with purchases: issue intents, accept submissions, read status."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.batching import Batcher
from core.catalogue import service as catalogue
from core.catalogue.models import ProductType
from core.db import utcnow
from core.errors import ConflictError, NotFoundError
from core.idempotency import service as idempotency
from core.idempotency.repository import KeyBusy
from core.idempotency.service import KeyClaim, StoredResponse, UnclaimedKey
from core.logging import current_request_id
from core.purchases.models import OPEN_STATES, Purchase, PurchaseIntent, PurchaseState
from core.purchases.repository import (
    FirstSubmission,
    PurchaseRepository,
    PurchaseStatements,
    UserIntents,
    UserPurchases,
    purchase_statements,
)

ONE_TIME_TYPES = (ProductType.CONSUMABLE, ProductType.NON_CONSUMABLE)
PAYLOAD_PREFIX = "kp1."


@dataclass(frozen=True)
class Submission:
    invoice_id: int
    rustore_purchase_id: str | None
    product_id: str
    order_id: uuid.UUID | None
    sandbox: bool


async def create_intent(
    session: AsyncSession, user_id: uuid.UUID, product_id: str, types: tuple[ProductType, ...]
) -> PurchaseIntent:
    """An order id and an unguessable developer payload binding the coming purchase to the user."""
    product = await catalogue.purchasable(session, product_id, types)
    intent = PurchaseIntent(
        user_id=user_id,
        product_id=product.product_id,
        developer_payload=PAYLOAD_PREFIX + secrets.token_urlsafe(24),
        created_at=utcnow(),
    )
    return await UserIntents(session, user_id).add(intent)


class FirstSubmissions:
    """The usual submission, a purchase nobody reported under a key never used, written with its
    key and committed in one statement; submissions made at about the same time share one
    (core/batching.py), which under load saves most of PostgreSQL's work per submission.

    It runs on asyncpg directly (`PurchaseStatements`): one statement needs no ORM session, and
    this is the api's most frequent write. One per process, made with its engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._batcher: Batcher[FirstSubmission, bool] = Batcher(self._write)

    async def submit(
        self,
        key: UnclaimedKey,
        submission: Submission,
        types: tuple[ProductType, ...],
        answer: Callable[[Purchase], StoredResponse],
    ) -> tuple[Purchase, StoredResponse] | None:
        """(the purchase, the answer stored under the key), committed. None for anything else,
        with nothing written; the caller then calls `submit` under `run_idempotent`, which tells
        the cases apart."""
        now = utcnow()
        purchase = Purchase(
            **_new_purchase_values(key.user_id, submission, now),
            created_at=now,
            updated_at=now,
            points_credited=0,
            attempts=0,
        )
        response = answer(purchase)
        first = FirstSubmission(purchase, KeyClaim(key, response, claimed_at=now), types)
        with idempotency.refusing_busy_keys():
            if not await self._batcher(first):
                return None
        return purchase, response

    async def _write(self, batch: list[FirstSubmission]) -> list[bool | Exception]:
        async with purchase_statements(self.engine) as statements:
            if len(batch) > 1:
                try:
                    inserted = await statements.submit_first(batch)
                except KeyBusy:  # one key is held by a request still running: that one's 409
                    inserted = None
                if inserted is not None:
                    return [first.purchase.id in inserted for first in batch]
            return [await _write_alone(statements, first) for first in batch]


async def _write_alone(statements: PurchaseStatements, first: FirstSubmission) -> bool | Exception:
    """One submission in a statement of its own; a key held by another request is its error."""
    try:
        inserted = await statements.submit_first([first])
    except KeyBusy as exc:
        return exc
    return inserted is not None and first.purchase.id in inserted


async def submit(
    session: AsyncSession,
    user_id: uuid.UUID,
    submission: Submission,
    types: tuple[ProductType, ...] = ONE_TIME_TYPES,
) -> tuple[Purchase, bool]:
    """Record a purchase the app reports, once per RuStore purchase; (purchase, job to send).

    The same RuStore purchase sent again, under another key or from another device, returns the
    existing row, with a job to send only when this report names its missing purchase id. Who
    owns it is decided by verification from RuStore's developer payload, never by who submitted
    it first.
    """
    await catalogue.purchasable(session, submission.product_id, types)
    repository = PurchaseRepository(session)
    purchase = await repository.insert_new(_new_purchase_values(user_id, submission, utcnow()))
    if purchase is not None:
        return purchase, True
    existing = await repository.by_rustore_ids(
        submission.invoice_id, submission.rustore_purchase_id
    )
    if existing is not None and existing.user_id != user_id:
        existing = await _take_over(session, user_id, submission, existing)
    if existing is None:
        raise ConflictError(
            "This RuStore purchase was already submitted from another account",
            code="purchase_already_submitted",
        )
    if existing.rustore_purchase_id is None and submission.rustore_purchase_id is not None:
        # Found by reconciliation or a notification without RuStore's purchase id: the app's
        # report names it, so a held payment can now be confirmed; its job goes out again.
        named = await repository.name_purchase_id(existing.id, submission.rustore_purchase_id)
        if named is not None:
            return named, True
    return existing, False


def _new_purchase_values(
    user_id: uuid.UUID, submission: Submission, now: dt.datetime
) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "product_id": submission.product_id,
        "invoice_id": submission.invoice_id,
        "rustore_purchase_id": submission.rustore_purchase_id,
        "order_id": submission.order_id,
        "sandbox": submission.sandbox,
        "state": PurchaseState.PENDING,
        "request_id": current_request_id(),
        "enqueued_at": now,  # optimistic: cleared if sending fails (see mark_not_enqueued)
    }


async def _take_over(
    session: AsyncSession, user_id: uuid.UUID, submission: Submission, existing: Purchase
) -> Purchase | None:
    """Move a not-yet-verified purchase to the submitter whose own intent it names.

    Another account may report a purchase first (a shared device, or on purpose). If the
    submitter's report carries the order id of its own intent for this product, it is the likely
    owner, and the purchase moves to it while still open. This decides nothing about money:
    verification credits whoever RuStore's developer payload names, so a wrong move is undone.
    """
    if submission.order_id is None:
        return None
    intent = await UserIntents(session, user_id).find(submission.order_id)
    if intent is None or intent.product_id != existing.product_id:
        return None
    return await PurchaseRepository(session).transition(existing.id, OPEN_STATES, user_id=user_id)


async def mark_not_enqueued(session: AsyncSession, purchase_id: uuid.UUID) -> None:
    """The queue was unreachable: leave the purchase for the sweeper to send."""
    await PurchaseRepository(session).mark_not_enqueued(purchase_id)


async def poll(engine: AsyncEngine, user_id: uuid.UUID, purchase_id: uuid.UUID) -> Purchase:
    """The user's purchase as a status poll sees it; 404 for a missing or foreign id.

    Polling is the api's most frequent request, and this is all it reads: one indexed SELECT on
    asyncpg directly (`PurchaseStatements`), with no ORM session or SQLAlchemy execution around
    it and no BEGIN or ROLLBACK.
    """
    async with purchase_statements(engine) as statements:
        purchase = await statements.find_own(user_id, purchase_id)
    if purchase is None:
        raise NotFoundError(f"No purchase {purchase_id}")
    return purchase


async def list_own(
    session: AsyncSession,
    user_id: uuid.UUID,
    before: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Purchase]:
    return await UserPurchases(session, user_id).page(before, limit)
