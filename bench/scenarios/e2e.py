"""Scenario 3: purchases paid in the sandbox, all submitted at once; the time until every one is
`completed` (credited, ledger entry written), with the sandbox answering at once and after
200 ms per call.

Purchases are two-stage, as RuStore sells consumables: the worker reads the invoice (PAID),
confirms it, reads it again and credits. The sandbox's own notifications are off, so the pipeline
is driven by the submits alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import seed
from bench.context import Context, Row
from bench.scenarios import requests
from bench.stack import RssSampler, cpu_seconds

LATENCIES_MS = (0, 200)
CONCURRENCY = 32
USERS = 50
SANDBOX_CALLS_IN_FLIGHT = 16
"""Setup pays the purchases concurrently (the sandbox applies due transitions on its event loop,
so concurrent control calls are safe)."""
POLL_SECONDS = 0.2
CPU_REPORTED = ("web", "worker", "sandbox")
"""Processes whose CPU time per purchase the row reports (PostgreSQL and Redis are not ours)."""
OUTCOME = text(
    """
    SELECT count(*) FILTER (WHERE state = 'credited'),
           count(*) FILTER (WHERE state IN ('rejected', 'failed', 'refunded'))
      FROM purchases WHERE invoice_id = ANY(:invoice_ids)
    """
)


def run(ctx: Context) -> None:
    count = 100 if ctx.quick else 1000
    for latency in LATENCIES_MS:
        _one(ctx, count, latency)


def _one(ctx: Context, count: int, latency: int) -> None:
    stack = ctx.stack
    templates, invoice_ids = paid_purchases(ctx, count)
    stack.flush_redis()
    stack.sandbox("DELETE", "/faults")
    if latency:
        stack.sandbox("POST", "/faults", {"endpoint": "*", "latencyMs": latency})
    stack.start_worker()
    limit = 60.0 if ctx.quick else 180.0
    try:
        cpu_before = cpu_seconds(stack.procs)
        with RssSampler(stack.procs) as rss:
            started = time.monotonic()
            submitted = ctx.measure_load(
                ctx.spec(templates, CONCURRENCY, duration=None, warmup=0.0, total=count)
            )
            credited, finals = ctx.db(lambda s: wait_final(s, invoice_ids, started + limit))
            seconds = time.monotonic() - started
        cpu_used = {
            name: used - cpu_before.get(name, 0.0)
            for name, used in cpu_seconds(stack.procs).items()
        }
    finally:
        stack.sandbox("DELETE", "/faults")
        stack.stop("worker")
    extra = {
        "purchases": count,
        "completed": credited,
        "not_credited": finals - credited,
        "seconds_to_all_final": round(seconds, 2),
        "completed_per_second": round(credited / seconds, 1),
        **{
            f"{name}_cpu_ms_per_purchase": round(1000 * cpu_used[name] / count, 2)
            for name in CPU_REPORTED
            if name in cpu_used
        },
    }
    case = f"{count} purchases, rustore +{latency} ms"
    ctx.add(Row(scenario="e2e", case=case, load=submitted, rss_mb=rss.peaks, extra=extra))


def paid_purchases(ctx: Context, count: int) -> tuple[list[str], list[int]]:
    """Intents issued to users, the purchases created and paid in the sandbox, and the submit
    each app would send; returns the templates and the invoice ids."""
    user_ids = ctx.db(lambda sessions: seed.users(sessions, USERS))
    tokens = seed.tokens(ctx.settings, user_ids)
    intents = ctx.db(lambda sessions: seed.intents(sessions, user_ids, count))
    paid = asyncio.run(_pay(ctx.stack.sandbox_url, intents))
    templates = [
        requests.verify_paid(tokens[n % USERS], body["invoiceId"], body["purchaseId"], str(order))
        for n, ((order, _), body) in enumerate(zip(intents, paid, strict=True))
    ]
    return templates, [body["invoiceId"] for body in paid]


async def _pay(sandbox_url: str, intents: list[tuple[uuid.UUID, str]]) -> list[dict[str, Any]]:
    """What the SDK and the paying user do for each intent: create the purchase, pay it."""
    limit = asyncio.Semaphore(SANDBOX_CALLS_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=f"{sandbox_url}/control", timeout=30) as client:

        async def pay(order_id: uuid.UUID, payload: str) -> dict[str, Any]:
            async with limit:
                created = await client.post(
                    "/purchases",
                    json={
                        "productCode": seed.PRODUCT,
                        "amount": seed.PRICE_KOPECKS,
                        "twoStage": True,
                        "developerPayload": payload,
                        "orderId": str(order_id),
                    },
                )
                body: dict[str, Any] = created.raise_for_status().json()
                (await client.post(f"/purchases/{body['invoiceId']}/pay")).raise_for_status()
                return body

        return list(await asyncio.gather(*(pay(*intent) for intent in intents)))


async def wait_final(
    sessions: async_sessionmaker[AsyncSession], invoice_ids: list[int], deadline: float
) -> tuple[int, int]:
    """Poll until every purchase is final or the deadline passes; (credited, final)."""
    while True:
        async with sessions() as session:
            row = (await session.execute(OUTCOME, {"invoice_ids": invoice_ids})).one()
        credited, failed = int(row[0]), int(row[1])
        if credited + failed >= len(invoice_ids) or time.monotonic() > deadline:
            return credited, credited + failed
        await asyncio.sleep(POLL_SECONDS)
