"""The database locked, saturated or gone (reliability scenario 15): the api answers 503
`service_unavailable` fast instead of queueing requests, writes nothing partial, and serves again
by itself once the database is back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.request_context import RequestContext
from chaos.proxy import FaultProxy
from core.db import create_sessionmaker, driver_transaction, session_driver, utcnow
from core.points import service as points
from core.points.models import EntrySource
from core.points.repository import LedgerStatements
from core.settings import Settings
from tests.fixtures.accounts import Account
from tests.fixtures.platform import serve
from tests.fixtures.purchases import Records

FAST_SECONDS = 3.5
"""Lock waits end at the 2 s lock_timeout; pool and connect waits at the pool timeout below."""
POOL_TIMEOUT = 0.5
GRANT = 50


def _assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert elapsed < FAST_SECONDS


async def _timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


@asynccontextmanager
async def _api_behind_a_proxy(
    settings: Settings,
) -> AsyncIterator[tuple[FaultProxy, httpx.AsyncClient]]:
    """An api whose database connections all pass through a fault proxy, and a client for it."""
    database = urlsplit(settings.database_url)
    proxy = FaultProxy(database.port or 5432)
    proxy.start()
    proxied = database._replace(netloc=f"{database.username}@127.0.0.1:{proxy.port}").geturl()
    try:
        async with (
            _own_api(settings, database_url=proxied, database_pool_timeout=POOL_TIMEOUT) as (
                _,
                url,
            ),
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield proxy, client
    finally:
        proxy.stop()


@asynccontextmanager
async def _own_api(settings: Settings, **overrides: object) -> AsyncIterator[tuple[Litestar, str]]:
    """An api instance with its own database settings, served over HTTP."""
    app = create_app(msgspec.structs.replace(settings, **overrides))
    async with serve(RequestContext(app)) as url:
        yield app, url


async def _grant(engine: AsyncEngine, account: Account) -> str:
    """Fund the account with GRANT points, committed; the entry's source id (fresh: source ids
    are unique across users, like a purchase's id)."""
    source_id = uuid.uuid4().hex
    async with driver_transaction(engine) as connection:
        await points.credit(
            connection, uuid.UUID(account.user_id), GRANT, source=EntrySource.ADMIN,
            source_id=source_id,
        )  # fmt: skip
    return source_id


@asynccontextmanager
async def _wallet_locked(engine: AsyncEngine, account: Account) -> AsyncIterator[None]:
    """Another transaction holds the account's row lock until the block ends (closing the
    session rolls it back)."""
    async with create_sessionmaker(engine)() as holder:
        ledger = LedgerStatements(await session_driver(holder))
        await ledger.lock_account(uuid.UUID(account.user_id), utcnow())
        yield


async def _spend(client: httpx.AsyncClient, account: Account, amount: int) -> httpx.Response:
    headers = {**account.headers, "Idempotency-Key": uuid.uuid4().hex}
    return await client.post(
        "/api/points/spend", json={"amount": amount, "reason": "a hat"}, headers=headers
    )


async def test_spend_on_a_locked_points_row_is_503_fast_and_then_succeeds(
    client: httpx.AsyncClient, user_account: Account, engine: AsyncEngine, records: Records
) -> None:
    seed = await _grant(engine, user_account)

    async with _wallet_locked(engine, user_account):
        response, elapsed = await _timed(_spend(client, user_account, 10))

    _assert_unavailable(response, elapsed)
    entries = await records.ledger_of_user(user_account.user_id)
    assert [entry.source_id for entry in entries] == [seed]  # nothing partial
    recovered = await _spend(client, user_account, 10)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["balance"] == GRANT - 10


async def test_exhausted_pool_is_503_fast_and_recovers(
    settings: Settings, user_account: Account
) -> None:
    async with (
        _own_api(settings, database_pool_size=1, database_pool_timeout=POOL_TIMEOUT) as (app, url),
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        engine: AsyncEngine = app.state.engine
        held = [await engine.connect()]  # the whole pool
        response, elapsed = await _timed(client.get("/api/payments", headers=user_account.headers))
        for connection in held:
            await connection.close()

        _assert_unavailable(response, elapsed)
        recovered = await client.get("/api/payments", headers=user_account.headers)
        assert recovered.status_code == 200, recovered.text


async def _list(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.get("/api/payments", headers=account.headers)


async def _poll(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.get(f"/api/payments/{uuid.uuid4()}", headers=account.headers)


async def _submit(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    invoice_id = 8_000_000_000 + uuid.uuid4().int % 1_000_000_000
    body = {"invoiceId": invoice_id, "purchaseId": f"outage-{invoice_id}", "productId": "coins_100"}
    headers = {**account.headers, "Idempotency-Key": uuid.uuid4().hex}
    return await client.post("/api/payments/verify", json=body, headers=headers)


@pytest.mark.parametrize(
    ("request_once", "answer"),
    [
        pytest.param(_list, 200, id="list, through an ORM session"),
        pytest.param(_poll, 404, id="status poll, asyncpg directly"),
        pytest.param(_submit, 202, id="submission, asyncpg directly"),
    ],
)
async def test_unreachable_database_is_503_fast_and_recovers(
    settings: Settings,
    user_account: Account,
    catalogue: None,
    request_once: Callable[[httpx.AsyncClient, Account], Awaitable[httpx.Response]],
    answer: int,
) -> None:
    async with _api_behind_a_proxy(settings) as (proxy, client):
        before = await request_once(client, user_account)
        proxy.set_mode("reset")  # the database's host goes away: every connection is cut
        response, elapsed = await _timed(request_once(client, user_account))
        proxy.set_mode("pass")
        recovered = await request_once(client, user_account)

    assert before.status_code == answer, before.text
    _assert_unavailable(response, elapsed)
    assert recovered.status_code == answer, recovered.text


WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def test_a_connection_cut_in_the_middle_of_a_spend_is_503_and_spends_nothing(
    settings: Settings, user_account: Account, engine: AsyncEngine, records: Records
) -> None:
    """The ledger's statements run on asyncpg directly; a connection lost while one of them
    runs (here: waiting for the account's lock) is an outage like any other, not a 500."""
    seed = await _grant(engine, user_account)

    async with _api_behind_a_proxy(settings) as (proxy, client):
        warm = await client.get("/api/points/balance", headers=user_account.headers)
        assert warm.status_code == 200, warm.text  # the pool's connections are open
        async with _wallet_locked(engine, user_account):
            spend = asyncio.ensure_future(_timed(_spend(client, user_account, 10)))
            await _until_waiting_on_a_lock(engine)
            proxy.set_mode("reset")
            response, elapsed = await spend
        entries = await records.ledger_of_user(user_account.user_id)
        proxy.set_mode("pass")
        recovered = await _spend(client, user_account, 10)

    _assert_unavailable(response, elapsed)
    assert [entry.source_id for entry in entries] == [seed]  # nothing partial
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["balance"] == GRANT - 10


async def _until_waiting_on_a_lock(engine: AsyncEngine) -> None:
    """Return once a backend waits for a row lock (its lock_timeout is 2 s)."""
    deadline = time.monotonic() + 5
    async with engine.connect() as connection:
        while not (await connection.execute(WAITING_ON_A_LOCK)).scalar_one():
            assert time.monotonic() < deadline, "the spend never waited for the account's lock"
            await asyncio.sleep(0.02)
