"""`load_overview` against reality: messages put in Dramatiq's own Redis layout and moved by its
own consumer, a running worker's heartbeat and jobs, RuStore calls through the real client, rows
in PostgreSQL, and a scheduler's recorded runs (a real scheduler process, and one whose job
fails)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import dramatiq
import pytest
import redis
import redis.asyncio
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import create_sessionmaker
from core.ops.activity import ActivityRecorder, RedisWriter
from core.ops.overview import Overview, QueueStats, load_overview
from core.ops.schedule import ScheduleRecorder
from core.purchases.models import Purchase, PurchaseState
from core.queue import DIAGNOSTICS_PING, create_broker
from core.subscriptions.models import Subscription
from tests.fixtures.accounts import Account
from tests.fixtures.processes import ProcessRunner
from tests.fixtures.purchases import Records, Shop, start_worker

QUEUE = DIAGNOSTICS_PING.queue
WITHIN = 30.0


@pytest.fixture
async def ops_redis() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


@pytest.fixture
def broker() -> Iterator[RedisBroker]:
    """The test's own broker; the diagnostics queue is emptied before and after, so its counts
    are exactly what the test put there (no worker runs in these tests unless started)."""
    broker = create_broker(os.environ["REDIS_URL"], socket_timeout=2)
    broker.flush(QUEUE)
    yield broker
    broker.flush(QUEUE)
    broker.close()


async def overview_until(
    session: AsyncSession,
    client: redis.asyncio.Redis,
    condition: Callable[[Overview], bool],
    **options: Any,
) -> Overview:
    """Load the overview until `condition` holds (other processes write their records)."""
    deadline = time.monotonic() + WITHIN
    while True:
        overview = await load_overview(session, client, **options)
        if condition(overview):
            return overview
        assert time.monotonic() < deadline, f"overview never matched: {overview}"
        await session.rollback()  # a new snapshot for the next read
        await asyncio.sleep(0.2)


def queue_of(overview: Overview, name: str = QUEUE) -> QueueStats:
    return next(queue for queue in overview.queues if queue.name == name)


def enqueue(broker: RedisBroker, sent_seconds_ago: float, *, delay_ms: int | None = None) -> None:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=QUEUE,
        actor_name=DIAGNOSTICS_PING.actor,
        args=(str(uuid.uuid4()),),
        kwargs={},
        options={},
        message_timestamp=int((time.time() - sent_seconds_ago) * 1000),
    )
    broker.enqueue(message, delay=delay_ms)


async def test_queue_counts_and_the_oldest_message_age(
    db_session: AsyncSession, ops_redis: redis.asyncio.Redis, broker: RedisBroker
) -> None:
    for seconds_ago in (300, 200, 100, 10):
        enqueue(broker, seconds_ago)
    enqueue(broker, 1000, delay_ms=600_000)  # a retry waiting for its backoff
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    dead = next(consumer)  # the oldest, taken as a worker would, and dead-lettered
    assert dead is not None
    consumer.nack(dead)
    taken = next(consumer)  # the next one, taken and not finished yet
    assert taken is not None

    queue = queue_of(await load_overview(db_session, ops_redis))

    assert (queue.ready, queue.in_progress, queue.delayed, queue.dead) == (2, 1, 1, 1)
    assert queue.oldest_age_seconds is not None
    assert 100 <= queue.oldest_age_seconds < 110  # the 200 s one is in progress, not waiting
    consumer.ack(taken)
    consumer.close()


async def test_an_empty_queue_has_no_oldest_message(
    db_session: AsyncSession, ops_redis: redis.asyncio.Redis, broker: RedisBroker
) -> None:
    queue = queue_of(await load_overview(db_session, ops_redis))

    assert (queue.ready, queue.in_progress, queue.delayed, queue.dead) == (0, 0, 0, 0)
    assert queue.oldest_age_seconds is None


async def test_a_running_worker_beats_and_its_jobs_and_rustore_calls_are_counted(
    db_session: AsyncSession,
    ops_redis: redis.asyncio.Redis,
    processes: ProcessRunner,
    shop: Shop,
    user_account: Account,
    records: Records,
) -> None:
    before = await load_overview(db_session, ops_redis)
    start_worker(processes)

    bought = await shop.buy(user_account, "coins_100")
    assert (await records.wait_final(bought.payment_id)).state == "credited"

    def verified(overview: Overview) -> int:
        return sum(job.processed for job in overview.jobs if job.actor == "purchase.verify")

    overview = await overview_until(
        db_session, ops_redis, lambda overview: verified(overview) > verified(before)
    )
    started = [beat for beat in overview.workers if beat not in before.workers]
    new = {beat.worker_id for beat in overview.workers} - {b.worker_id for b in before.workers}
    assert len(new) == 1  # the worker started here, by its heartbeat
    assert all(beat.worker_id.startswith("worker-") for beat in overview.workers)
    assert min(beat.seconds_since_beat for beat in started) < 10
    get_purchase = next(m for m in overview.rustore.by_method if m.method == "get_purchase")
    assert get_purchase.calls >= 1
    assert get_purchase.p50_ms is not None
    assert get_purchase.p95_ms is not None
    assert 0 < get_purchase.p50_ms <= get_purchase.p95_ms
    assert overview.rustore.calls >= get_purchase.calls
    assert overview.rustore.calls_per_minute > 0
    assert overview.purchases_by_state["credited"] >= before.purchases_by_state["credited"] + 1


async def test_rustore_activity_sums_calls_errors_and_latency_over_the_window(
    db_session: AsyncSession, ops_redis: redis.asyncio.Redis
) -> None:
    method = f"test_method_{uuid.uuid4().hex[:8]}"
    recorder = ActivityRecorder(RedisWriter(redis.Redis.from_url(os.environ["REDIS_URL"])))
    for _ in range(18):
        recorder.rustore_call(method, "ok", 0.040)  # 25-50 ms bucket
    recorder.rustore_call(method, "transient", 3.0)  # 2.5-5 s bucket
    recorder.rustore_call(method, "ok", 0.400)  # 250-500 ms bucket

    def ours(overview: Overview) -> Any:
        return next((m for m in overview.rustore.by_method if m.method == method), None)

    overview = await overview_until(
        db_session, ops_redis, lambda overview: getattr(ours(overview), "calls", 0) == 20
    )

    activity = ours(overview)
    assert activity.errors == 1
    assert activity.p50_ms is not None
    assert 25 <= activity.p50_ms <= 50
    assert activity.p95_ms is not None
    assert 250 <= activity.p95_ms <= 500


async def test_a_job_that_fails_for_good_is_counted_failed(
    db_session: AsyncSession,
    ops_redis: redis.asyncio.Redis,
    processes: ProcessRunner,
    broker: RedisBroker,
) -> None:
    before = await load_overview(db_session, ops_redis, window_minutes=5)
    start_worker(processes)
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=QUEUE,
        actor_name=DIAGNOSTICS_PING.actor,
        args=("not-a-ping-id",),
        kwargs={},
        options={"max_retries": 0},
    )
    broker.enqueue(message)

    def failed(overview: Overview) -> int:
        return sum(job.failed for job in overview.jobs if job.actor == DIAGNOSTICS_PING.actor)

    overview = await overview_until(
        db_session,
        ops_redis,
        lambda overview: failed(overview) > failed(before),
        window_minutes=5,
    )
    assert overview.window_minutes == 5
    assert queue_of(overview).dead == queue_of(before).dead + 1


async def test_counts_by_state_and_the_oldest_open_purchase_match_the_database(
    db_session: AsyncSession,
    ops_redis: redis.asyncio.Redis,
    engine: AsyncEngine,
    records: Records,
    shop: Shop,
    user_account: Account,
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    purchase = await records.submit_without_sending(user_account, created)  # pending, no job
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session:
            await session.execute(
                update(Purchase)
                .where(Purchase.id == purchase.id)
                .values(created_at=func.now() - dt.timedelta(days=30))
            )
            await session.commit()

        overview = await load_overview(db_session, ops_redis)

        assert overview.oldest_open_purchase is not None
        assert overview.oldest_open_purchase.purchase_id == purchase.id
        assert overview.oldest_open_purchase.state == "pending"
        assert 30 * 86400 <= overview.oldest_open_purchase.age_seconds < 30 * 86400 + 60
        assert set(overview.purchases_by_state) == {state.value for state in PurchaseState}
        assert _nonzero(overview.purchases_by_state) == await _counts(engine, Purchase.state)
        state = func.coalesce(Subscription.status, Subscription.verification)
        assert _nonzero(overview.subscriptions_by_state) == await _counts(engine, state)
    finally:
        async with sessions() as session:  # final, so no sweep of a later test sends it
            await session.execute(
                update(Purchase)
                .where(Purchase.id == purchase.id)
                .values(state=PurchaseState.FAILED, failure_reason="test row")
            )
            await session.commit()


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: count for state, count in counts.items() if count}


async def _counts(engine: AsyncEngine, column: Any) -> dict[str, int]:
    """Counts by `column`, straight from PostgreSQL (only the states that have rows)."""
    async with create_sessionmaker(engine)() as session:
        rows = await session.execute(select(column, func.count()).group_by(column))
    return {state: count for state, count in rows}


async def test_the_scheduler_records_its_runs(
    db_session: AsyncSession, ops_redis: redis.asyncio.Redis, processes: ProcessRunner
) -> None:
    scheduler = processes.start("scheduler", sys.executable, "-m", "workers.scheduler")
    scheduler.wait_for_log(lambda event: event.get("event") == "scheduler.job.ran")

    def ran(overview: Overview) -> bool:
        return any(
            job.name == "diagnostics.ping" and job.last_outcome == "success"
            for job in overview.scheduler
        )

    overview = await overview_until(db_session, ops_redis, ran)

    now = dt.datetime.now(dt.UTC)
    ping = next(job for job in overview.scheduler if job.name == "diagnostics.ping")
    assert ping.last_run_at is not None
    assert now - ping.last_run_at < dt.timedelta(seconds=WITHIN)
    assert ping.last_finished_at is not None
    assert ping.last_finished_at >= ping.last_run_at
    assert ping.next_run_at is not None
    assert ping.next_run_at > ping.last_run_at
    assert ping.last_duration_seconds is not None
    names = {job.name for job in overview.scheduler}
    assert {"purchases.sweep", "subscriptions.due", "idempotency.prune"} <= names


async def test_a_failing_scheduled_job_keeps_its_error(
    db_session: AsyncSession, ops_redis: redis.asyncio.Redis
) -> None:
    name = f"test.failing.{uuid.uuid4().hex[:8]}"

    async def failing() -> None:
        raise RuntimeError("RuStore said no")

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        failing, "interval", seconds=3600, id=name, next_run_time=dt.datetime.now(dt.UTC)
    )
    ScheduleRecorder(RedisWriter(redis.Redis.from_url(os.environ["REDIS_URL"]))).attach(scheduler)
    scheduler.start()
    try:
        overview = await overview_until(
            db_session,
            ops_redis,
            lambda overview: any(
                job.name == name and job.last_outcome == "error" for job in overview.scheduler
            ),
        )
    finally:
        scheduler.shutdown(wait=False)

    job = next(job for job in overview.scheduler if job.name == name)
    assert job.last_error == "RuntimeError: RuStore said no"
    assert job.last_error_at is not None
    assert job.next_run_at is not None
    assert job.next_run_at > dt.datetime.now(dt.UTC)
