"""Queue and process faults against real processes (reliability scenarios 6-8, 10, 11).

Tests that kill a worker run on a spare Redis with workers of their own (stopped when the test
ends), so that no other worker can take the message first and a dying worker never takes another
test's message.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from api.app import create_app
from api.request_context import RequestContext
from core.failpoints import KILLED_EXIT_CODE
from core.queue import PURCHASE_VERIFY
from core.settings import Settings
from devstack.redis import EmbeddedRedis
from tests.fixtures.accounts import Account, MakeAccount
from tests.fixtures.platform import send_job, serve
from tests.fixtures.processes import Process, ProcessRunner
from tests.fixtures.purchases import (
    POINTS,
    CallCounter,
    Records,
    Shop,
    confirm_glob,
    deliveries,
    eventually,
    invoice_glob,
    redeliver_unacked,
    start_worker,
    sweep,
)

SUBMITTED_DURING_OUTAGE = 30
OUTAGE_ANSWER_SECONDS = 5.0
STALE_SECONDS = 1
"""PURCHASE_STALE_SECONDS for the sweeps here: the least the setting allows."""


@pytest.fixture(scope="module")
def spare_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("spare-redis") / "data")
    server.start()
    yield server.url()
    server.stop()


async def _wait_quiet(records: Records, payment_id: str) -> None:
    """Let the row age past STALE_SECONDS, so the sweep counts it as gone quiet."""
    purchase = await records.purchase(payment_id)
    age = time.time() - purchase.updated_at.timestamp()
    await asyncio.sleep(max(0.0, STALE_SECONDS + 0.2 - age))


def _wait_killed(worker: Process) -> None:
    worker.popen.wait(timeout=20)
    assert worker.popen.returncode == KILLED_EXIT_CODE, worker.log_lines()[-10:]


async def _wait_deliveries(worker: Process, purchase_id: uuid.UUID, count: int) -> None:
    await eventually(lambda: len(deliveries(worker, purchase_id)) >= count)


async def _assert_credited_once(records: Records, payment_id: str, points: int) -> None:
    final = await records.wait_final(payment_id)
    assert final.state == "credited", final.failure_reason
    ledger = await records.ledger_of_purchase(payment_id)
    assert [entry.amount for entry in ledger] == [points]


async def test_purchases_accepted_while_redis_is_down_are_credited_once_after_it_returns(
    settings: Settings,
    shop: Shop,
    make_account: MakeAccount,
    records: Records,
    processes: ProcessRunner,
    tmp_path: Path,
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        redis_url, port = server.url(), server.port
        start_worker(processes, redis_url=redis_url)
        account = await make_account()
        app = RequestContext(create_app(msgspec.structs.replace(settings, redis_url=redis_url)))
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            isolated = Shop(client, shop.sandbox)
            paid = [
                await isolated.pay_in_rustore(account, "coins_100")
                for _ in range(SUBMITTED_DURING_OUTAGE)
            ]
            server.stop()
            started = time.monotonic()
            answers = await asyncio.gather(*(isolated.report_created(account, c) for c in paid))
            elapsed = time.monotonic() - started

        assert [answer.status_code for answer in answers] == [202] * SUBMITTED_DURING_OUTAGE
        assert elapsed < OUTAGE_ANSWER_SECONDS
        payment_ids = [answer.json()["id"] for answer in answers]
        for payment_id in payment_ids:
            row = await records.purchase(payment_id)
            assert (row.state, row.enqueued_at) == ("pending", None)

        server.start(port=port)
        await sweep(settings, redis_url, stale_seconds=600)
        for payment_id in payment_ids:
            await _assert_credited_once(records, payment_id, POINTS["coins_100"])
        assert await shop.balance(account) == SUBMITTED_DURING_OUTAGE * POINTS["coins_100"]
    finally:
        server.stop()


async def test_purchase_committed_but_never_sent_is_swept_and_credited_once(
    settings: Settings,
    shop: Shop,
    user_account: Account,
    records: Records,
    pipeline_worker: Process,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    purchase = await records.submit_without_sending(user_account, created)
    await _wait_quiet(records, str(purchase.id))

    await sweep(settings, os.environ["REDIS_URL"], stale_seconds=STALE_SECONDS)
    await _assert_credited_once(records, str(purchase.id), POINTS["coins_100"])
    await sweep(settings, os.environ["REDIS_URL"], stale_seconds=STALE_SECONDS)

    assert len(deliveries(pipeline_worker, purchase.id)) == 1  # the final one is not re-sent
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_message_delivered_twice_at_once_credits_once(
    shop: Shop, user_account: Account, records: Records, pipeline_worker: Process
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_500", two_stage=True)
    purchase = await records.submit_without_sending(user_account, created)

    send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, str(purchase.id))
    send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, str(purchase.id))
    await _assert_credited_once(records, str(purchase.id), POINTS["coins_500"])

    await _wait_deliveries(pipeline_worker, purchase.id, 2)
    assert len({event["message_id"] for event in deliveries(pipeline_worker, purchase.id)}) == 2
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "CONFIRMED"
    assert await shop.balance(user_account) == POINTS["coins_500"]


async def test_deliveries_racing_to_the_credit_log_it_once(
    shop: Shop, user_account: Account, records: Records, pipeline_worker: Process
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_500", two_stage=True)
    purchase = await records.submit_without_sending(user_account, created)
    # Slow invoice reads keep both deliveries in flight until each has seen CONFIRMED.
    shop.sandbox.control.set_fault(invoice_glob(created["invoiceId"]), latency_ms=300)

    send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, str(purchase.id))
    send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, str(purchase.id))
    await _assert_credited_once(records, str(purchase.id), POINTS["coins_500"])
    await _wait_deliveries(pipeline_worker, purchase.id, 2)
    await eventually(lambda: len(_credit_outcomes(pipeline_worker, purchase.id)) == 2)

    assert [e.get("attempt") for e in deliveries(pipeline_worker, purchase.id)] == [1, 2]
    assert sorted(_credit_outcomes(pipeline_worker, purchase.id)) == [
        "purchase.credit.already_final",
        "purchase.credited",
    ]


def _credit_outcomes(worker: Process, purchase_id: uuid.UUID) -> list[str]:
    return [
        str(event["event"])
        for event in worker.json_logs()
        if event.get("purchase_id") == str(purchase_id)
        and event.get("event") in ("purchase.credited", "purchase.credit.already_final")
    ]


async def test_worker_killed_after_rustore_confirmed_credits_once_on_recovery(
    settings: Settings,
    shop: Shop,
    user_account: Account,
    records: Records,
    processes: ProcessRunner,
    spare_redis: str,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_500", two_stage=True)
    confirms = CallCounter.on(shop.sandbox.control, confirm_glob(created["purchaseId"]))
    purchase = await records.submit_without_sending(user_account, created)
    doomed = start_worker(processes, redis_url=spare_redis, failpoints="purchase.after_confirm")

    send_job(spare_redis, PURCHASE_VERIFY, str(purchase.id))
    _wait_killed(doomed)
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "CONFIRMED"
    assert (await records.purchase(purchase.id)).state == "confirming"

    worker = start_worker(processes, redis_url=spare_redis)
    await _wait_quiet(records, str(purchase.id))
    await sweep(settings, spare_redis, stale_seconds=STALE_SECONDS)
    await _assert_credited_once(records, str(purchase.id), POINTS["coins_500"])

    assert redeliver_unacked(spare_redis) == 1  # the dead worker's own message comes back too
    await _wait_deliveries(worker, purchase.id, 2)
    assert [e.get("attempt") for e in deliveries(worker, purchase.id)] == [2, None]  # then skipped
    assert confirms.count == 1
    assert await shop.balance(user_account) == POINTS["coins_500"]


async def test_worker_killed_after_our_commit_is_not_repeated_on_redelivery(
    shop: Shop,
    user_account: Account,
    records: Records,
    processes: ProcessRunner,
    spare_redis: str,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_500", two_stage=True)
    purchase = await records.submit_without_sending(user_account, created)
    doomed = start_worker(processes, redis_url=spare_redis, failpoints="purchase.after_commit")
    send_job(spare_redis, PURCHASE_VERIFY, str(purchase.id))
    _wait_killed(doomed)
    credited = await records.purchase(purchase.id)
    assert credited.state == "credited"
    reads = CallCounter.on(shop.sandbox.control, invoice_glob(created["invoiceId"]))
    confirms = CallCounter.on(shop.sandbox.control, confirm_glob(created["purchaseId"]))

    assert redeliver_unacked(spare_redis) == 1
    worker = start_worker(processes, redis_url=spare_redis)
    await _wait_deliveries(worker, purchase.id, 1)

    assert [e["event"] for e in deliveries(worker, purchase.id)] == ["purchase.verify.skipped"]
    assert (reads.count, confirms.count) == (0, 0)
    after = await records.purchase(purchase.id)
    assert (after.attempts, after.updated_at) == (credited.attempts, credited.updated_at)
    assert len(await records.ledger_of_purchase(purchase.id)) == 1
    assert await shop.balance(user_account) == POINTS["coins_500"]
