from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast, get_args

import asyncpg
from sqlalchemy import (
    String,
    Table,
    any_,
    bindparam,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from core import resending
from core.accounts.ownership import OwnedRepository
from core.catalogue.models import Product
from core.db import driver_connection, utcnow
from core.idempotency.repository import lock_waits_as_busy
from core.idempotency.service import KeyClaim
from core.purchases.models import (
    OPEN_STATES,
    Purchase,
    PurchaseEvent,
    PurchaseEventKind,
    PurchaseIntent,
    PurchaseState,
)


class UserPurchases(OwnedRepository[Purchase]):
    """A user's purchases; a foreign id reads as unknown."""

    model = Purchase
    noun = "purchase"

    async def page(
        self, before: tuple[dt.datetime, uuid.UUID] | None, limit: int
    ) -> list[Purchase]:
        """Newest first, keyset-paged on (created_at, id) to stay on one index at any depth."""
        query = self.owned()
        if before is not None:
            # A row comparison lets PostgreSQL seek the index rather than filter earlier rows.
            query = query.where(tuple_(Purchase.created_at, Purchase.id) < tuple_(*before))
        query = query.order_by(Purchase.created_at.desc(), Purchase.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())


class UserIntents(OwnedRepository[PurchaseIntent]):
    model = PurchaseIntent
    noun = "purchase intent"

    async def add(self, intent: PurchaseIntent) -> PurchaseIntent:
        self.session.add(intent)
        await self.session.flush()
        return intent


PURCHASES = cast(Table, Purchase.__table__)


@functools.cache
def _transition(allowed_from: frozenset[str], columns: frozenset[str]) -> ReturningUpdate[Any]:
    """The conditional UPDATE of `PurchaseRepository.transition`, built once per shape.

    The worker runs a few shapes many times each; building the statement (and, through the ORM,
    loading the row into a session) cost more CPU than PostgreSQL spent running it. New values
    are parameters named `new_<column>`.
    """
    return (
        update(PURCHASES)
        .where(
            PURCHASES.c.id == bindparam("purchase_id"),
            # = ANY(array), not IN (…): an IN list is rendered again at every execution.
            PURCHASES.c.state == any_(literal(sorted(allowed_from), ARRAY(String))),
        )
        .values(
            {
                **{name: bindparam(f"new_{name}", PURCHASES.c[name].type) for name in columns},
                "updated_at": func.now(),
            }
        )
        .returning(*PURCHASES.c)
    )


INTENT_BY_PAYLOAD = select(PurchaseIntent).where(
    PurchaseIntent.developer_payload == bindparam("payload")
)


def _unattached(row: Mapping[str, Any] | None) -> Purchase | None:
    """The purchase a row of all its columns describes (SQLAlchemy's or asyncpg's), in no
    session: callers only read it."""
    return None if row is None else Purchase(**row)


class PurchaseRepository:
    """Reads and state changes of the pipeline; each change is a conditional UPDATE, so two
    workers (or a worker and the sweeper) can never move one purchase backwards or twice."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(self, values: dict[str, object]) -> Purchase | None:
        """Insert unless RuStore's invoice or purchase id is already known; None when it is."""
        statement = insert(Purchase).values(**values).on_conflict_do_nothing().returning(Purchase)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_rustore_ids(
        self, invoice_id: int, rustore_purchase_id: str | None
    ) -> Purchase | None:
        conditions = [Purchase.invoice_id == invoice_id]
        if rustore_purchase_id is not None:
            conditions.append(Purchase.rustore_purchase_id == rustore_purchase_id)
        result = await self.session.execute(select(Purchase).where(or_(*conditions)).limit(1))
        return result.scalar_one_or_none()

    async def get(self, purchase_id: uuid.UUID) -> Purchase | None:
        return await self.session.get(Purchase, purchase_id, populate_existing=True)

    async def intent_by_payload(self, payload: str) -> PurchaseIntent | None:
        result = await self.session.execute(INTENT_BY_PAYLOAD, {"payload": payload})
        return result.scalar_one_or_none()

    async def transition(
        self,
        purchase_id: uuid.UUID,
        allowed_from: Collection[str],
        **values: object,
    ) -> Purchase | None:
        """Move a purchase on only from one of `allowed_from`; None when it was elsewhere."""
        statement = _transition(frozenset(allowed_from), frozenset(values))
        parameters = {f"new_{name}": value for name, value in values.items()}
        result = await self.session.execute(statement, {"purchase_id": purchase_id, **parameters})
        return _unattached(result.mappings().one_or_none())

    async def name_purchase_id(
        self, purchase_id: uuid.UUID, rustore_purchase_id: str
    ) -> Purchase | None:
        """Record RuStore's purchase id on an open purchase that has none; None otherwise."""
        statement = (
            update(Purchase)
            .where(
                Purchase.id == purchase_id,
                Purchase.rustore_purchase_id.is_(None),
                Purchase.state.in_(OPEN_STATES),
            )
            .values(rustore_purchase_id=rustore_purchase_id, enqueued_at=utcnow())
            .returning(Purchase)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def mark_not_enqueued(self, purchase_id: uuid.UUID) -> None:
        await resending.mark_not_enqueued(self.session, Purchase, purchase_id)

    async def claim_stale(
        self, now: dt.datetime, stale_after: dt.timedelta, limit: int
    ) -> list[uuid.UUID]:
        """Open purchases whose message was never sent or has gone quiet; marks them re-sent."""
        still_open = Purchase.state.in_(OPEN_STATES)
        return await resending.claim_unsent(
            self.session, Purchase, still_open, now, stale_after, limit
        )

    async def held_since(self, before: dt.datetime, limit: int) -> list[Purchase]:
        """Two-stage purchases RuStore holds (PAID) that we have not confirmed since `before`."""
        result = await self.session.execute(
            select(Purchase)
            .where(Purchase.state == PurchaseState.CONFIRMING, Purchase.paid_at < before)
            .order_by(Purchase.paid_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(result.scalars())


class NewEvent(TypedDict):
    """The column values of one `purchase_events` row, as `PurchaseStatements.add_events` takes
    them."""

    purchase_id: uuid.UUID
    at: dt.datetime
    kind: PurchaseEventKind
    attempt: int
    method: str | None
    outcome: str | None
    latency_ms: float | None
    detail: str | None


class PurchaseEventRepository:
    """Reads of the worker's record of attempts, RuStore calls and retries
    (core/purchases/timeline.py); the worker writes it with `PurchaseStatements`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, purchase_id: uuid.UUID) -> list[PurchaseEvent]:
        result = await self.session.execute(
            select(PurchaseEvent)
            .where(PurchaseEvent.purchase_id == purchase_id)
            .order_by(PurchaseEvent.id)
        )
        return list(result.scalars())


START_ATTEMPT = """
    WITH started AS (
        UPDATE purchases
           SET attempts = attempts + 1,
               state = CASE WHEN state = $3 THEN $4 ELSE state END,
               updated_at = now()
         WHERE id = $1 AND state = ANY($2::text[])
        RETURNING *
    ), noted AS (
        INSERT INTO purchase_events (purchase_id, at, kind, attempt)
        SELECT id, $5, $6, attempts FROM started
    )
    SELECT * FROM started
"""
"""One round trip where a transaction of an UPDATE and an INSERT took four (with BEGIN and
COMMIT): a data-modifying CTE runs even though the outer SELECT does not read it, and both
writes commit or fail together, so the attempt and its timeline record always agree."""

PRODUCT_AND_INTENT = """
    SELECT p AS product, i AS intent
      FROM products p LEFT JOIN purchase_intents i ON i.developer_payload = $2
     WHERE p.product_id = $1
"""
"""What a verification compares RuStore's answer with, in one round trip instead of two; each
table's row comes back whole, as a record named by its columns."""

ADD_EVENTS = """
    INSERT INTO purchase_events (purchase_id, at, kind, attempt, method, outcome, latency_ms,
                                 detail)
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::int[], $5::text[],
                         $6::text[], $7::float8[], $8::text[])
"""
"""Any number of timeline records in one statement: a column of values per parameter."""

_EventField = Literal[
    "purchase_id", "at", "kind", "attempt", "method", "outcome", "latency_ms", "detail"
]
_EVENT_FIELDS: tuple[_EventField, ...] = get_args(_EventField)
"""`NewEvent`'s keys in the order of `ADD_EVENTS`' columns."""


@functools.cache
def _transition_sql(columns: tuple[str, ...]) -> str:
    """`PurchaseStatements.transition`'s UPDATE for one set of columns, built once per set.

    The names are checked against the table's columns here, so only a column name, never a
    value, is ever written into the SQL.
    """
    unknown = set(columns) - set(PURCHASES.c.keys())
    if unknown:
        raise ValueError(f"purchases has no column {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(columns, start=3))
    return (
        f"UPDATE purchases SET {assignments}, updated_at = now()"  # noqa: S608  # nosec B608
        " WHERE id = $1 AND state = ANY($2::text[]) RETURNING *"
    )


FIRST_SUBMISSIONS = """
    WITH submitted AS (
        SELECT *
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bytea[],
                      $6::timestamptz[], $7::timestamptz[], $8::uuid[], $9::text[], $10::bigint[],
                      $11::text[], $12::uuid[], $13::boolean[], $14::text[], $15::text[],
                      $16::text[])
            AS s(user_id, key, request_hash, response_status, response_body, claimed_at,
                 expires_at, id, product_id, invoice_id, rustore_purchase_id, order_id, sandbox,
                 state, request_id, types)
    ), claimable AS (
        SELECT DISTINCT ON (user_id, key) *
          FROM submitted s
         WHERE EXISTS (SELECT FROM products p
                        WHERE p.product_id = s.product_id AND p.active
                          AND p.type = ANY(string_to_array(s.types, ',')))
         ORDER BY user_id, key
    ), claimed AS (
        INSERT INTO idempotency_keys AS k
               (user_id, key, request_hash, response_status, response_body, created_at,
                expires_at)
        SELECT user_id, key, request_hash, response_status, response_body, claimed_at, expires_at
          FROM claimable
         ORDER BY user_id, key
        ON CONFLICT (user_id, key) DO UPDATE
           SET request_hash = excluded.request_hash,
               response_status = excluded.response_status,
               response_body = excluded.response_body,
               created_at = excluded.created_at,
               expires_at = excluded.expires_at
         WHERE k.expires_at < excluded.created_at
        RETURNING user_id, key
    ), inserted AS (
        INSERT INTO purchases (id, user_id, product_id, invoice_id, rustore_purchase_id,
                               order_id, sandbox, state, points_credited, attempts, request_id,
                               enqueued_at, created_at, updated_at)
        SELECT c.id, c.user_id, c.product_id, c.invoice_id, c.rustore_purchase_id, c.order_id,
               c.sandbox, c.state, 0, 0, c.request_id, c.claimed_at, c.claimed_at, c.claimed_at
          FROM claimable c JOIN claimed USING (user_id, key)
        ON CONFLICT DO NOTHING
        RETURNING id
    )
    SELECT CASE WHEN (SELECT count(*) FROM inserted) = (SELECT count(*) FROM claimed)
                THEN (SELECT coalesce(array_agg(id), '{}') FROM inserted)
                ELSE ARRAY[undo_first_submission()] END
"""
"""The usual submissions in one statement that commits alone (`PurchaseStatements.submit_first`):
for each, the key claimed with its answer, the product checked, the purchase inserted; the ids of
the purchases inserted come back. Requests made at about the same time share it
(`FirstSubmissions`, core/batching.py), since most of its cost is the statement, not its rows.

A key that expired is taken over. A submission whose key is in use or whose product cannot be
bought this way claims nothing, and nothing is inserted for it. Of several with one key (a
client's retries racing each other) only one is written, so that the answer stored under the key
is that of the purchase inserted with it, and the others replay it (and a key is claimed at most
once in the statement, which DO UPDATE requires). A new key with a purchase
that is not inserted (already reported) must not stay claimed: `undo_first_submission()`
(migration 0009) then raises, which rolls the whole statement back. A transaction did the same at
the cost of BEGIN and COMMIT, two more round trips. The keys are claimed in one order, so two
statements waiting on each other's keys wait in line rather than deadlock."""


STATUS_READ = "SELECT * FROM purchases WHERE id = $1 AND user_id = $2"
"""A status poll's only statement: the owner's purchase, so a foreign id reads as unknown."""


@dataclass(frozen=True)
class FirstSubmission:
    """A new purchase, the key to claim with its answer, and the product types its route sells:
    what `FIRST_SUBMISSIONS` writes of it."""

    purchase: Purchase
    claim: KeyClaim
    types: Collection[str]


class PurchaseStatements:
    """The hottest single statements on purchases, each committing on its own, run on asyncpg
    directly (`core.db.driver_connection`: seven times less CPU per statement than an ORM
    session): the worker's steps, paid several times per purchase, and the api's two most
    frequent requests, the status poll and the usual submission. Rows come back as objects in
    no session."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def start_attempt(self, purchase_id: uuid.UUID, at: dt.datetime) -> Purchase | None:
        """Count an attempt, leave `pending` and record the attempt on the purchase's timeline,
        in one statement; None for a final or unknown purchase."""
        row = await self.connection.fetchrow(
            START_ATTEMPT,
            purchase_id,
            list(OPEN_STATES),
            PurchaseState.PENDING.value,
            PurchaseState.VERIFYING.value,
            at,
            PurchaseEventKind.ATTEMPT.value,
        )
        return _unattached(row)

    async def transition(
        self, purchase_id: uuid.UUID, allowed_from: Collection[str], **values: object
    ) -> Purchase | None:
        """Move a purchase on only from one of `allowed_from`; None when it was elsewhere."""
        columns = tuple(sorted(values))
        row = await self.connection.fetchrow(
            _transition_sql(columns),
            purchase_id,
            list(allowed_from),
            *(values[name] for name in columns),
        )
        return _unattached(row)

    async def product_and_intent(
        self, product_id: str, payload: str | None
    ) -> tuple[Product | None, PurchaseIntent | None]:
        """The catalogue's product and the intent a developer payload names, read together.
        For an unknown product both are None: nothing is verified against an intent then."""
        row = await self.connection.fetchrow(PRODUCT_AND_INTENT, product_id, payload or None)
        if row is None:
            return None, None
        intent = row["intent"]
        return Product(**row["product"]), None if intent is None else PurchaseIntent(**intent)

    async def find_own(self, owner_id: uuid.UUID, purchase_id: uuid.UUID) -> Purchase | None:
        row = await self.connection.fetchrow(STATUS_READ, purchase_id, owner_id)
        return _unattached(row)

    async def submit_first(self, submissions: Sequence[FirstSubmission]) -> set[uuid.UUID] | None:
        """The ids of the purchases inserted and committed, each with its key; None, with nothing
        written, when a purchase with a new key was already reported or two statements deadlocked
        over one: the caller then tells the cases apart by submitting each alone. KeyBusy when a
        key is held by a request still running past the lock timeout."""
        columns: list[list[object]] = [[] for _ in range(16)]
        for first in submissions:
            key, purchase = first.claim.key, first.purchase
            row = (
                key.user_id, key.key, key.fingerprint, first.claim.response.status,
                first.claim.response.body, first.claim.claimed_at, first.claim.expires_at,
                purchase.id, purchase.product_id, purchase.invoice_id,
                purchase.rustore_purchase_id, purchase.order_id, purchase.sandbox, purchase.state,
                purchase.request_id, ",".join(first.types),
            )  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        with lock_waits_as_busy():
            try:
                inserted = await self.connection.fetchval(FIRST_SUBMISSIONS, *columns)
            except (asyncpg.RaiseError, asyncpg.DeadlockDetectedError):  # rolled back
                return None
        return set(inserted)

    async def add_events(self, events: list[NewEvent]) -> None:
        """Insert the timeline records in one statement (one round trip, however many)."""
        await self.connection.execute(
            ADD_EVENTS, *([event[field] for event in events] for field in _EVENT_FIELDS)
        )


@asynccontextmanager
async def purchase_statements(engine: AsyncEngine) -> AsyncIterator[PurchaseStatements]:
    async with driver_connection(engine) as connection:
        yield PurchaseStatements(connection)
