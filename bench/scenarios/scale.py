"""Scenario 7: with 1,000,000 purchases and 100,000 users in the database, the status read, the
list page and the sweepers' claim queries stay fast and on their indexes.

HTTP load measures the two reads; the claims run in-process, each timed in a transaction that is
rolled back (so every repetition claims the same rows) and then EXPLAINed with the exact SQL and
parameters the code sent. The /ops dashboard's pages are then read one after another by a logged-in
admin, as a browser would, each timed over HTTP (budget: 300 ms).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import seed
from bench.context import Context, Row
from bench.load import render
from bench.scenarios import dashboard
from bench.scenarios.requests import bearer
from core.notifications import service as notifications
from core.purchases import service as purchases
from core.purchases import sweeps
from core.purchases.repository import STATUS_READ, PurchaseStatements

CONCURRENCY = 32
READ_SAMPLE = 2000
REPEATS = 5
CLAIM_LIMIT = 500
INDEXED = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}
Query = Callable[[AsyncSession], Awaitable[Any]]
Sent = list[tuple[str, tuple[Any, ...]]]


def run(ctx: Context) -> None:
    users, count = (2_000, 20_000) if ctx.quick else (100_000, 1_000_000)
    started = time.monotonic()
    user_ids = ctx.db(lambda sessions: seed.users(sessions, users))
    ctx.db(lambda sessions: seed.bulk_purchases(sessions, user_ids, count))
    seeded = {"users": users, "purchases": count, "seed_seconds": round(time.monotonic() - started)}
    print(f"  scale: seeded {seeded}", flush=True)
    pairs = ctx.db(lambda sessions: seed.sample_purchases(sessions, READ_SAMPLE))
    readers = [user for user, _ in pairs]
    tokens = dict(zip(readers, seed.tokens(ctx.settings, readers), strict=True))
    reads = [render("GET", f"/api/payments/{p}", bearer(tokens[u])) for u, p in pairs]
    pages = [render("GET", "/api/payments?limit=20", bearer(tokens[u])) for u, _ in pairs]
    ctx.measure("scale", "status read (no ETag)", ctx.spec(reads, CONCURRENCY), **seeded)
    ctx.measure("scale", "list page, limit 20", ctx.spec(pages, CONCURRENCY), **seeded)
    user, purchase = pairs[0]
    for name, (query, direct) in _queries(user, purchase).items():
        timed = ctx.db(functools.partial(_profile, query=query, direct=direct))
        ctx.add(Row(scenario="scale", case=name, extra=timed))
    for case, timed in dashboard.time_pages(ctx, user, purchase).items():
        ctx.add(Row(scenario="scale", case=case, extra=timed))
    ctx.db(seed.close_bulk_purchases)


def _queries(user: uuid.UUID, purchase: uuid.UUID) -> dict[str, tuple[Query, Sent]]:
    """Each query, and the statements it sends to asyncpg directly, past SQLAlchemy's events."""
    stale = dt.timedelta(minutes=5)
    return {
        "query: status read": (
            lambda s: _status_read(s, user, purchase),
            [(STATUS_READ, (purchase, user))],
        ),
        "query: list page": (lambda s: purchases.list_own(s, user, None, 20), []),
        "query: purchases.sweep claim": (lambda s: sweeps.claim_stale(s, stale, CLAIM_LIMIT), []),
        "query: held_watch claim": (lambda s: sweeps.claim_held(s, stale, CLAIM_LIMIT), []),
        "query: notifications.sweep claim": (
            lambda s: notifications.claim_unsent(s, CLAIM_LIMIT),
            [],
        ),
    }


async def _status_read(session: AsyncSession, user: uuid.UUID, purchase: uuid.UUID) -> Any:
    """The statement a status poll runs (`purchases.poll`), on the session's connection."""
    pooled = await (await session.connection()).get_raw_connection()
    return await PurchaseStatements(pooled.driver_connection).find_own(user, purchase)


async def _profile(
    sessions: async_sessionmaker[AsyncSession], *, query: Query, direct: Sent
) -> dict[str, Any]:
    """Median time of `query` over a few rolled-back runs, and how PostgreSQL runs its SQL:
    what it sent through SQLAlchemy (recorded) and to asyncpg directly (`direct`)."""
    timings = []
    for _ in range(REPEATS):
        async with sessions() as session:
            with _recorded() as statements:
                began = time.perf_counter()
                await query(session)
                timings.append(time.perf_counter() - began)
            await session.rollback()
    plans = [await _plan(sessions, sql, parameters) for sql, parameters in statements + direct]
    return {
        "median_ms": round(statistics.median(timings) * 1000, 2),
        "indexes": sorted({index for plan in plans for index in plan["indexes"]}),
        "seq_scans": sorted({table for plan in plans for table in plan["seq_scans"]}),
    }


@contextmanager
def _recorded() -> Iterator[Sent]:
    """Every statement sent meanwhile, with its parameters: the plan is of the code's own SQL."""
    statements: Sent = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if not sql.lstrip().upper().startswith(("SET", "SELECT 1", "BEGIN")):
            statements.append((sql, tuple(parameters or ())))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def _plan(
    sessions: async_sessionmaker[AsyncSession], sql: str, parameters: tuple[Any, ...]
) -> dict[str, list[str]]:
    async with sessions() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        document = await raw.driver_connection.fetchval(  # type: ignore[union-attr]
            f"EXPLAIN (FORMAT JSON) {sql}", *parameters
        )
        await session.rollback()
    plan = json.loads(document) if isinstance(document, str) else document
    nodes = list(_nodes(plan[0]["Plan"]))
    return {
        "indexes": [n["Index Name"] for n in nodes if n["Node Type"] in INDEXED],
        "seq_scans": [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"],
    }


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
