"""The scheduler process sends its job on time, and a worker process carries it out."""

from __future__ import annotations

import asyncio
import signal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.diagnostics.models import DiagnosticPing
from core.queue import create_broker
from core.settings import Settings
from tests.fixtures.processes import ProcessRunner
from workers.scheduler import Jobs, build_scheduler


async def test_scheduler_declares_its_jobs(settings: Settings) -> None:
    broker = create_broker(settings.redis_url, socket_timeout=2)
    jobs = Jobs(settings, broker)
    try:
        scheduled = {job.id for job in build_scheduler(jobs).get_jobs()}
    finally:
        await jobs.close()
        broker.close()
    assert scheduled == {
        "diagnostics.ping",
        "purchases.sweep",
        "purchases.held_watch",
        "purchases.reconcile",
        "notifications.sweep",
        "subscriptions.due",
        "idempotency.prune",
    }


async def test_scheduled_ping_is_processed_by_a_worker(
    processes: ProcessRunner, db_session: AsyncSession
) -> None:
    processes.worker(threads=2)
    scheduler = processes.start(
        "scheduler", "python", "-m", "workers.scheduler", env={"DIAGNOSTICS_PING_INTERVAL": "1"}
    )
    scheduler.wait_for_log(lambda event: event.get("event") == "scheduler.started")

    processed: list[DiagnosticPing] = []
    for _ in range(100):
        result = await db_session.execute(
            select(DiagnosticPing).where(
                DiagnosticPing.source == "scheduler", DiagnosticPing.processed_at.is_not(None)
            )
        )
        processed = list(result.scalars())
        if len(processed) >= 2:
            break
        await asyncio.sleep(0.2)
    assert len(processed) >= 2, "expected the interval job to have run at least twice"

    assert scheduler.stop(signal.SIGTERM) == 0
    scheduler.wait_for_log(lambda event: event.get("event") == "scheduler.stopped", timeout=1)
