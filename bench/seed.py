"""Bench data written straight into the bench database, never through HTTP.

Users are bulk-inserted with a placeholder password hash (they never log in: their access tokens
are issued here, as `login` would), so 100,000 of them take seconds rather than 100,000 argon2
hashes. Intents and points go through the core services, as the api would write them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.accounts.tokens import issue_access_token
from core.catalogue.repository import ProductRepository
from core.db import create_engine, create_sessionmaker, session_driver, utcnow
from core.points import service as points
from core.points.models import EntryKind, EntrySource
from core.purchases import service as purchases
from core.settings import Settings

T = TypeVar("T")
PRODUCT = "coins_100"
PRICE_KOPECKS = 9_900
BULK_INVOICE_BASE = 8_000_000_000_000  # above anything the sandbox or the accept load hands out

BULK_USERS = text(
    """
    INSERT INTO users (id, email, password_hash, roles)
    SELECT gen_random_uuid(), :prefix || g || '@bench.kopilka.example', 'not-a-hash',
           ARRAY['user']::varchar[]
      FROM generate_series(1, :count) AS g
    RETURNING id
    """
)
# A realistic mix for the sweepers: 1 in 200 purchases still open, 1 in 400 never enqueued.
BULK_PURCHASES = text(
    """
    INSERT INTO purchases (id, user_id, product_id, invoice_id, rustore_purchase_id, sandbox,
                           state, points_credited, attempts, enqueued_at, completed_at,
                           created_at, updated_at)
    SELECT gen_random_uuid(), (CAST(:users AS uuid[]))[1 + g % :user_count], 'coins_100',
           CAST(:invoice_base AS bigint) + g, 'bulk-' || (CAST(:invoice_base AS bigint) + g), false,
           CASE WHEN g % 200 = 0 THEN 'pending' ELSE 'credited' END,
           CASE WHEN g % 200 = 0 THEN 0 ELSE 100 END, 1,
           CASE WHEN g % 400 = 0 THEN NULL ELSE now() - g * interval '1 second' END,
           CASE WHEN g % 200 = 0 THEN NULL ELSE now() - g * interval '1 second' END,
           now() - g * interval '1 second', now() - g * interval '1 second'
      FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
    """
)


class Database:
    """Runs one async job against the bench database on a fresh engine (the harness is
    synchronous between load runs, and an engine must not outlive its event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, job: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
        engine = create_engine(self.settings)
        try:
            return await job(create_sessionmaker(engine))
        finally:
            await engine.dispose()


async def catalogue(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await ProductRepository(session).insert_new(
            {
                "id": uuid.uuid4(),
                "product_id": PRODUCT,
                "type": "consumable",
                "title": "100 coins",
                "points": 100,
                "price_kopecks": PRICE_KOPECKS,
            }
        )
        await session.commit()


async def users(sessions: async_sessionmaker[AsyncSession], count: int) -> list[uuid.UUID]:
    async with sessions() as session:
        prefix = uuid.uuid4().hex[:8]
        result = await session.execute(BULK_USERS, {"prefix": prefix, "count": count})
        await session.commit()
    return list(result.scalars())


def tokens(settings: Settings, user_ids: list[uuid.UUID]) -> list[str]:
    now = utcnow()
    return [issue_access_token(settings, user_id, ["user"], now) for user_id in user_ids]


async def intents(
    sessions: async_sessionmaker[AsyncSession], user_ids: list[uuid.UUID], count: int
) -> list[tuple[uuid.UUID, str]]:
    """`count` intents spread over the users: (order id, developer payload) each."""
    async with sessions() as session:
        issued = [
            await purchases.create_intent(
                session, user_ids[n % len(user_ids)], PRODUCT, purchases.ONE_TIME_TYPES
            )
            for n in range(count)
        ]
        await session.commit()
    return [(intent.order_id, intent.developer_payload) for intent in issued]


async def grants(
    sessions: async_sessionmaker[AsyncSession], user_ids: list[uuid.UUID], amount: int
) -> None:
    async with sessions() as session:
        ledger = await session_driver(session)
        for user_id in user_ids:
            await points.credit(
                ledger, user_id, amount, source=EntrySource.ADMIN, source_id=uuid.uuid4().hex,
                kind=EntryKind.GRANT, reason="bench",
            )  # fmt: skip
        await session.commit()


async def bulk_purchases(
    sessions: async_sessionmaker[AsyncSession],
    user_ids: list[uuid.UUID],
    count: int,
    invoice_base: int = BULK_INVOICE_BASE,
    chunk: int = 200_000,
) -> None:
    """`count` purchases spread over the users (one a second into the past), then ANALYZE."""
    for first in range(1, count + 1, chunk):
        async with sessions() as session:
            await session.execute(
                BULK_PURCHASES,
                {
                    "users": user_ids,
                    "user_count": len(user_ids),
                    "invoice_base": invoice_base,
                    "first": first,
                    "last": min(count, first + chunk - 1),
                },
            )
            await session.commit()
    async with sessions() as session:
        await session.execute(text("ANALYZE purchases"))
        await session.execute(text("ANALYZE users"))
        await session.commit()


CLOSE_BULK_PURCHASES = text(
    """
    UPDATE purchases SET state = 'failed', failure_reason = 'bench: seeded, never sent',
                         completed_at = now(), updated_at = now()
     WHERE invoice_id >= :invoice_base AND state = 'pending'
    """
)


async def close_bulk_purchases(
    sessions: async_sessionmaker[AsyncSession], invoice_base: int = BULK_INVOICE_BASE
) -> None:
    """Fail the seeded pending purchases once the scale scenario is done with them: days stale,
    the scheduler's sweeper would send them, 500 a run, into a later scenario's worker (the
    profile's), where RuStore knows none of them. In session 11's full run that was 500 of them
    in the worker's profile: 1,000 extra RuStore calls (404), 500 retries, and the tracebacks
    Dramatiq formats for those alone 6 % of the worker's samples."""
    async with sessions() as session:
        await session.execute(CLOSE_BULK_PURCHASES, {"invoice_base": invoice_base})
        await session.commit()


async def sample_purchases(
    sessions: async_sessionmaker[AsyncSession], count: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """`count` random (user id, purchase id) pairs: reads spread over the whole table."""
    async with sessions() as session:
        result = await session.execute(
            text("SELECT user_id, id FROM purchases ORDER BY random() LIMIT :count"),
            {"count": count},
        )
    return [(row[0], row[1]) for row in result]
