"""`Prefer: wait` holds the answer, not a database connection: clients waiting for a final state
never starve other requests of the pool."""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec

from api.app import create_app
from api.request_context import RequestContext
from core.settings import Settings
from tests.fixtures.accounts import Account
from tests.fixtures.platform import serve
from tests.fixtures.purchases import Records, Shop

POOL = 2  # two connections for six waiting pollers and one other request
WAITERS = 6
WAIT_SECONDS = 3


async def test_waiting_pollers_leave_the_pool_to_others(
    shop: Shop, user_account: Account, records: Records, settings: Settings
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100", paid=False)
    pending = await records.submit_without_sending(user_account, created)  # stays pending
    small = msgspec.structs.replace(settings, database_pool_size=POOL, database_pool_timeout=1.0)
    async with (
        serve(RequestContext(create_app(small))) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT_SECONDS + 5) as client,
    ):
        polls = [
            asyncio.create_task(
                client.get(
                    f"/api/payments/{pending.id}",
                    headers={**user_account.headers, "Prefer": f"wait={WAIT_SECONDS}"},
                )
            )
            for _ in range(WAITERS)
        ]
        await asyncio.sleep(0.5)  # every poller is now waiting
        started = time.monotonic()
        other = await client.get("/api/points/balance", headers=user_account.headers)
        elapsed = time.monotonic() - started
        answers = await asyncio.gather(*polls)

    assert other.status_code == 200
    assert elapsed < 1.0, f"another request waited {elapsed:.1f}s for a connection"
    assert {answer.status_code for answer in answers} == {200}
    assert {answer.json()["status"] for answer in answers} == {"pending"}
