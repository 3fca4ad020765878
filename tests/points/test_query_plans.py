"""The hot purchase paths stay on indexes on a table of 100,000+ purchases, in few statements.

Each test drives the real code (over HTTP where there is a route), records every SQL statement it
sends with its parameters, and asks PostgreSQL with `EXPLAIN (FORMAT JSON)` how it would run each
of them. Recording what the code sends, rather than restating its queries here, means a changed
query is checked as it is, not as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.seed import BULK_PURCHASES
from core.accounts.repository import UserRepository
from core.accounts.tokens import issue_access_token
from core.db import create_sessionmaker, driver_connection, utcnow
from core.purchases import repository, sweeps
from core.settings import Settings
from tests.fixtures.accounts import unique_email

PURCHASES = 100_000
USERS = 4
INVOICE_BASE = 7_000_000_000_000  # far above anything the sandbox hands out
INDEXED_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}

BULK_KEYS = text(
    """
    INSERT INTO idempotency_keys (user_id, key, request_hash, response_status, response_body,
                                  created_at, expires_at)
    SELECT (CAST(:users AS uuid[]))[1 + g % :user_count], 'bulk-' || g, repeat('0', 64), 202,
           '\\x7b7d'::bytea, now() - interval '2 days',
           now() + CASE WHEN g % 2 = 0 THEN interval '-1 hour' ELSE interval '1 day' END
      FROM generate_series(1, :count) AS g
    """
)


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]

    @property
    def verb(self) -> str:
        return self.sql.lstrip().split(None, 1)[0].upper()


@dataclass(frozen=True)
class Bulk:
    """Users owning 100,000 purchases and as many idempotency keys (half of them expired and
    waiting for the prune job), with access tokens."""

    user_ids: list[uuid.UUID]
    tokens: list[str]

    def headers(self, user: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture(scope="module")
async def bulk(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Bulk]:
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        users = [
            await UserRepository(session).insert(unique_email(), "not-a-hash", ["user"])
            for _ in range(USERS)
        ]
        user_ids = [user.id for user in users if user is not None]
        params = {"users": user_ids, "user_count": USERS, "count": PURCHASES}
        await session.execute(
            BULK_PURCHASES, {**params, "invoice_base": INVOICE_BASE, "first": 1, "last": PURCHASES}
        )
        await session.execute(BULK_KEYS, params)
        await session.commit()
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE purchases"))
        await connection.execute(text("ANALYZE idempotency_keys"))
        await connection.commit()
    tokens = [issue_access_token(settings, uid, ["user"], utcnow()) for uid in user_ids]
    yield Bulk(user_ids, tokens)
    async with sessions() as session:  # the users' rows go with them (ON DELETE CASCADE)
        await session.execute(text("DELETE FROM users WHERE id = ANY(:ids)"), {"ids": user_ids})
        await session.commit()


@contextmanager
def recorded_sql() -> Iterator[list[Statement]]:
    """Every statement any engine in this process sends (the api under test runs in-process):
    through SQLAlchemy, and on asyncpg directly (`core.db.driver_connection`, which the hottest
    statements use, past SQLAlchemy's events)."""
    statements: list[Statement] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        statements.append(Statement(sql, tuple(parameters or ())))

    @asynccontextmanager
    async def recording_driver(engine: AsyncEngine) -> AsyncIterator[_Recording]:
        async with driver_connection(engine) as connection:
            yield _Recording(connection, statements)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(repository, "driver_connection", recording_driver)
            yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class _Recording:
    """A driver connection that records each statement before sending it on."""

    connection: Any
    statements: list[Statement]

    async def fetchrow(self, sql: str, *parameters: Any) -> Any:
        return await self._send("fetchrow", sql, parameters)

    async def fetchval(self, sql: str, *parameters: Any) -> Any:
        return await self._send("fetchval", sql, parameters)

    async def execute(self, sql: str, *parameters: Any) -> Any:
        return await self._send("execute", sql, parameters)

    async def _send(self, method: str, sql: str, parameters: tuple[Any, ...]) -> Any:
        self.statements.append(Statement(sql, parameters))
        return await getattr(self.connection, method)(sql, *parameters)


async def explain(
    engine: AsyncEngine, statement: Statement, *, analyze: bool = False
) -> dict[str, Any]:
    """PostgreSQL's plan for `statement` with its recorded parameters; run only with `analyze`
    (then in a transaction that is rolled back)."""
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        result = await raw.driver_connection.fetchval(  # type: ignore[union-attr]
            f"EXPLAIN ({options}) {statement.sql}", *statement.parameters
        )
        await connection.rollback()
    document = json.loads(result) if isinstance(result, str) else result
    plan: dict[str, Any] = document[0]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    node = plan.get("Plan", plan)
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def assert_indexed(plan: dict[str, Any], table: str, index: str | None = None) -> None:
    """`table` is read through an index (`index`, when given), never scanned sequentially."""
    all_nodes = list(nodes(plan))
    summary = json.dumps(plan, indent=1)
    # Only `table` counts: the planner rightly scans a small table (users in a test database)
    # joined to it.
    scans = [n for n in all_nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] == table]
    assert not scans, summary
    used = {n.get("Index Name") for n in all_nodes if n["Node Type"] in INDEXED_SCANS}
    tables = {n.get("Relation Name") for n in all_nodes if n["Node Type"] != "Bitmap Index Scan"}
    assert table in tables, summary
    assert used, summary
    if index is not None:
        assert index in used, summary


def touching(statements: list[Statement], table: str) -> list[Statement]:
    return [s for s in statements if f" {table}" in s.sql and s.verb != "SET"]


async def test_status_read_is_one_indexed_query(
    client: httpx.AsyncClient, engine: AsyncEngine, bulk: Bulk
) -> None:
    listed = await client.get("/api/payments?limit=1", headers=bulk.headers())
    payment_id = listed.json()["items"][0]["id"]

    with recorded_sql() as statements:
        response = await client.get(f"/api/payments/{payment_id}", headers=bulk.headers())

    assert response.status_code == 200, response.text
    assert [s.verb for s in statements] == ["SELECT"]  # auth reads a JWT, not the database
    assert_indexed(await explain(engine, statements[0]), "purchases", "pk_purchases")


async def test_a_foreign_status_read_is_the_same_indexed_404(
    client: httpx.AsyncClient, engine: AsyncEngine, bulk: Bulk
) -> None:
    listed = await client.get("/api/payments?limit=1", headers=bulk.headers(0))
    payment_id = listed.json()["items"][0]["id"]

    with recorded_sql() as statements:
        response = await client.get(f"/api/payments/{payment_id}", headers=bulk.headers(1))

    assert response.status_code == 404
    assert len(statements) == 1
    assert_indexed(await explain(engine, statements[0]), "purchases", "pk_purchases")


async def test_list_pages_stay_on_the_user_index_at_any_depth(
    client: httpx.AsyncClient, engine: AsyncEngine, bulk: Bulk
) -> None:
    deep = await client.get("/api/payments?limit=100", headers=bulk.headers())
    cursor = deep.json()["nextCursor"]

    with recorded_sql() as statements:
        first = await client.get("/api/payments?limit=20", headers=bulk.headers())
        later = await client.get(f"/api/payments?limit=20&cursor={cursor}", headers=bulk.headers())

    assert (first.status_code, later.status_code) == (200, 200)
    assert [s.verb for s in statements] == ["SELECT", "SELECT"]
    for statement in statements:
        plan = await explain(engine, statement)
        assert_indexed(plan, "purchases", "ix_purchases_user_id_created_at")
        assert "Sort" not in {n["Node Type"] for n in nodes(plan)}, "the index gives the order"


async def test_a_deep_list_page_reads_only_its_own_rows(
    client: httpx.AsyncClient, engine: AsyncEngine, bulk: Bulk
) -> None:
    deep = await client.get("/api/payments?limit=100", headers=bulk.headers())
    cursor = deep.json()["nextCursor"]

    with recorded_sql() as statements:
        await client.get(f"/api/payments?limit=20&cursor={cursor}", headers=bulk.headers())

    plan = await explain(engine, statements[0], analyze=True)
    assert [n.get("Rows Removed by Filter", 0) for n in nodes(plan)] == [0] * len(list(nodes(plan)))
    assert "Incremental Sort" not in {n["Node Type"] for n in nodes(plan)}


async def test_submit_is_one_insert_on_its_unique_keys(
    client: httpx.AsyncClient, engine: AsyncEngine, bulk: Bulk, catalogue: None
) -> None:
    invoice_id = INVOICE_BASE + PURCHASES + 1 + uuid.uuid4().int % 1_000_000
    body = {"purchaseId": f"plan-{invoice_id}", "invoiceId": invoice_id, "productId": "coins_100"}
    key = {**bulk.headers(2), "Idempotency-Key": uuid.uuid4().hex}

    with recorded_sql() as submit:
        accepted = await client.post("/api/payments/verify", json=body, headers=key)
    with recorded_sql() as replay:
        replayed = await client.post("/api/payments/verify", json=body, headers=key)

    assert (accepted.status_code, replayed.status_code) == (202, 202), accepted.text
    # One statement, committing alone: the key's INSERT with the answer (taking over an expired
    # key), the product check and the purchase INSERT.
    assert [s.verb for s in submit] == ["WITH"]
    # A replay: that statement inserts nothing, then the key claim finds the stored answer.
    assert [s.verb for s in replay] == ["WITH", "INSERT", "SELECT"]
    plan = await explain(engine, submit[0])
    [purchase_insert] = [n for n in nodes(plan) if n.get("Relation Name") == "purchases"]
    [key_insert] = [n for n in nodes(plan) if n.get("Relation Name") == "idempotency_keys"]
    # No scan at all: ON CONFLICT without a target checks every unique index of a purchase
    # (invoice id, RuStore purchase id, primary key) by probing it, O(log n) each; the key's
    # conflict is its primary key.
    assert purchase_insert["Conflict Resolution"] == "NOTHING"
    assert key_insert["Conflict Resolution"] == "UPDATE"
    assert_indexed(plan, "products", "uq_products_product_id")
    assert "Seq Scan" not in {n["Node Type"] for n in nodes(plan)}
    for statement in touching(replay, "idempotency_keys"):
        if statement.verb == "SELECT":
            assert_indexed(
                await explain(engine, statement), "idempotency_keys", "pk_idempotency_keys"
            )


async def test_a_resubmission_finds_the_purchase_by_its_unique_ids(
    client: httpx.AsyncClient, engine: AsyncEngine, bulk: Bulk, catalogue: None
) -> None:
    invoice_id = INVOICE_BASE + 7  # a bulk purchase of user 7 % USERS
    body = {"purchaseId": f"bulk-{invoice_id}", "invoiceId": invoice_id, "productId": "coins_100"}
    owner = bulk.headers(7 % USERS)

    with recorded_sql() as statements:
        response = await client.post(
            "/api/payments/verify", json=body, headers={**owner, "Idempotency-Key": "again"}
        )

    assert response.status_code == 202, response.text
    lookups = [s for s in touching(statements, "purchases") if s.verb == "SELECT"]
    assert len(lookups) == 1
    assert_indexed(await explain(engine, lookups[0]), "purchases", "uq_purchases_invoice_id")


async def test_sweeper_claims_stale_purchases_through_the_open_index(
    engine: AsyncEngine, bulk: Bulk
) -> None:
    async with create_sessionmaker(engine)() as session:
        with recorded_sql() as statements:
            claimed = await sweeps.claim_stale(session, dt.timedelta(minutes=5), limit=100)
        await session.rollback()

    assert len(claimed) == 100
    [claim] = statements
    assert_indexed(await explain(engine, claim), "purchases", "ix_purchases_open_updated_at")
