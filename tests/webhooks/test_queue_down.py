"""Scenario 19: with Redis down, webhooks still get a fast 200, and the sweep sends them later.

The api under test is its own process, given a Redis address nothing listens on (Redis
"stopped" for it alone, so the shared test Redis keeps serving the worker and the other tests).
After the burst, a real scheduler process, which reaches Redis, runs its sweep at start, as it
does after a restart.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from core.notifications.models import NotificationStatus
from core.purchases.models import PurchaseState
from devstack.ports import free_port
from tests.fixtures.accounts import Account
from tests.fixtures.processes import Process, ProcessRunner
from tests.fixtures.purchases import POINTS, Shop
from tests.fixtures.webhooks import Webhooks

pytestmark = pytest.mark.usefixtures("pipeline_worker")

DELIVERIES = 200
CONCURRENCY = 10
P99_LIMIT_SECONDS = 1.0


@pytest.fixture
async def api_without_redis(processes: ProcessRunner) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    api = processes.start(
        "api", sys.executable, "-m", "api", env={"PORT": str(port), "REDIS_URL": dead_redis}
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        await _until_live(client, api)
        yield client


async def _until_live(client: httpx.AsyncClient, api: Process) -> None:
    async with asyncio.timeout(20):
        while api.popen.poll() is None:
            try:
                if (await client.get("/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("api did not start:\n" + "\n".join(api.log_lines()[-15:]))


async def _timed_posts(
    webhooks: Webhooks, client: httpx.AsyncClient, bodies: list[bytes]
) -> list[tuple[int, float]]:
    """Post every body, CONCURRENCY at a time; (status, seconds) per delivery."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(body: bytes) -> tuple[int, float]:
        async with gate:
            started = time.perf_counter()
            response = await webhooks.post(body, client=client)
            return response.status_code, time.perf_counter() - started

    return await asyncio.gather(*(one(body) for body in bodies))


async def test_webhooks_are_accepted_fast_while_redis_is_down_and_processed_after(
    webhooks: Webhooks,
    shop: Shop,
    user_account: Account,
    api_without_redis: httpx.AsyncClient,
    processes: ProcessRunner,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    bodies = [webhooks.invoice_body(created, "CONFIRMED")]
    bodies += [webhooks.body("TEST_EVENT", {"test": "TEST"}) for _ in range(DELIVERIES - 1)]
    ids = [webhooks.id_of(body) for body in bodies]

    results = await _timed_posts(webhooks, api_without_redis, bodies)

    assert [status for status, _ in results] == [200] * DELIVERIES
    latencies = sorted(seconds for _, seconds in results)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(  # the measured figures, for the report (-s shows them)
        f"webhooks with Redis down: n={DELIVERIES} concurrency={CONCURRENCY} "
        f"p50={statistics.median(latencies) * 1000:.1f}ms p99={p99 * 1000:.1f}ms "
        f"max={latencies[-1] * 1000:.1f}ms"
    )
    assert p99 < P99_LIMIT_SECONDS
    stored = {row.notification_id: row for row in await webhooks.rows(status="received")}
    assert all(stored[i].enqueued_at is None for i in ids), "every send failed, so none is marked"

    scheduler = processes.start("scheduler", sys.executable, "-m", "workers.scheduler")
    scheduler.wait_for_log(lambda event: event.get("source") == "notifications.sweep")

    done = [await webhooks.wait_done(notification_id) for notification_id in ids]
    assert {row.status for row in done} == {NotificationStatus.PROCESSED}
    await webhooks.wait_purchase(created["invoiceId"], PurchaseState.CREDITED)
    assert await shop.balance(user_account) == POINTS["coins_100"]
