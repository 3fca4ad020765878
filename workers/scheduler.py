"""The scheduler process: APScheduler sending actors on an interval or a cron.

It only enqueues; the rows it picks are claimed in the database (`FOR UPDATE SKIP LOCKED` plus a
new `enqueued_at`), so two schedulers running at once never send the same work for the same slot.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import uuid
from collections.abc import Awaitable, Callable, Sequence

import redis
import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from dramatiq.brokers.redis import RedisBroker

from core import metrics
from core.db import create_engine, create_sessionmaker, utcnow
from core.diagnostics import service as diagnostics
from core.idempotency import service as idempotency
from core.integrations import rustore_client
from core.logging import configure_logging
from core.notifications import service as notifications
from core.ops.schedule import schedule_recorder
from core.ports import port_in_use_message
from core.purchases import sweeps
from core.purchases.reconciliation import previous_day, reconcile_day
from core.queue import (
    DIAGNOSTICS_PING,
    NOTIFICATION_PROCESS,
    PURCHASE_VERIFY,
    SUBSCRIPTION_CHECK,
    SUBSCRIPTION_VERIFY,
    Job,
    create_broker,
    send,
)
from core.scheduling import service as scheduling
from core.settings import Settings, load_settings_or_exit
from core.subscriptions import service as subscriptions

log = structlog.get_logger(__name__)

ScheduledJob = Callable[[], Awaitable[None]]
RECONCILE_JOB = "purchases.reconcile"
RECONCILE_LEASE = dt.timedelta(hours=1)


class Jobs:
    """What the scheduler runs; each method is one scheduled job."""

    def __init__(self, settings: Settings, broker: RedisBroker) -> None:
        self.settings = settings
        self.broker = broker
        self.engine = create_engine(settings)
        self.sessions = create_sessionmaker(self.engine)
        self.rustore = rustore_client(settings)

    async def close(self) -> None:
        """Release what the jobs opened: the database pool and RuStore's connections."""
        await self.rustore.aclose()
        await self.engine.dispose()

    async def diagnostics_ping(self) -> None:
        async with self.sessions() as session:
            ping = await diagnostics.create_ping(session, source="scheduler")
            await session.commit()
        send(self.broker, DIAGNOSTICS_PING, str(ping.id))

    async def purchases_sweep(self) -> None:
        """Re-send purchases whose job never reached the queue or went quiet."""
        if not self._queue_reachable("purchases.sweep"):
            return
        stale_after = dt.timedelta(seconds=self.settings.purchase_stale_seconds)
        async with self.sessions() as session:
            ids = await sweeps.claim_stale(session, stale_after)
            await session.commit()
        self._send_all(PURCHASE_VERIFY, ids, "purchases.sweep")

    async def held_payments_watch(self) -> None:
        """Re-drive two-stage payments RuStore still holds, well before its 6 h reversal."""
        if not self._queue_reachable("purchases.held_watch"):
            return
        held_for = dt.timedelta(seconds=self.settings.held_payment_check_seconds)
        async with self.sessions() as session:
            ids = await sweeps.claim_held(session, held_for)
            await session.commit()
        self._send_all(PURCHASE_VERIFY, ids, "purchases.held_watch")

    async def notifications_sweep(self) -> None:
        """Send stored RuStore notifications whose job never reached the queue or went quiet."""
        if not self._queue_reachable("notifications.sweep"):
            return
        async with self.sessions() as session:
            ids = await notifications.claim_unsent(session)
            await session.commit()
        self._send_all(NOTIFICATION_PROCESS, ids, "notifications.sweep")

    async def subscriptions_due(self) -> None:
        """Send the subscription checks that fell due (renewal, expiry, dunning), and any
        verification whose message was lost; each row is leased, so it is sent once per slot."""
        if not self._queue_reachable("subscriptions.due"):
            return
        async with self.sessions() as session:
            to_verify, to_check = await subscriptions.claim_due(session)
            await session.commit()
        self._send_all(SUBSCRIPTION_VERIFY, to_verify, "subscriptions.due")
        self._send_all(SUBSCRIPTION_CHECK, to_check, "subscriptions.due")

    async def purchases_reconcile(self) -> None:
        """Walk RuStore's invoice list for yesterday (Moscow) once per day, whichever scheduler
        gets there first; a run that died is taken over after its lease."""
        day = previous_day(utcnow())
        async with self.sessions() as session:
            claimed = await scheduling.claim_slot(
                session, RECONCILE_JOB, day.isoformat(), RECONCILE_LEASE
            )
            await session.commit()
        if not claimed:
            return
        report = await reconcile_day(self.sessions, self.rustore, self._send, day)
        async with self.sessions() as session:
            await scheduling.finish_slot(session, RECONCILE_JOB, day.isoformat(), str(report))
            await session.commit()

    async def idempotency_prune(self) -> None:
        async with self.sessions() as session:
            pruned = await idempotency.prune_expired(session)
            await session.commit()
        log.info("idempotency.pruned", count=pruned)

    def _queue_reachable(self, source: str) -> bool:
        """A sweep claims its rows (a new `enqueued_at`) before it sends them: with Redis down
        the sends fail and the claimed rows would wait out their whole stale period after Redis
        is back. So a sweep claims nothing until the queue answers (reliability scenarios 6, 19)."""
        try:
            self.broker.client.ping()
        except redis.RedisError as exc:
            log.warning("scheduler.queue_unreachable", source=source, error=str(exc))
            return False
        return True

    def _send(self, job: Job, object_id: str) -> None:
        send(self.broker, job, object_id)

    def _send_all(self, job: Job, ids: Sequence[uuid.UUID], source: str) -> None:
        for object_id in ids:
            self._send(job, str(object_id))
        if ids:
            log.info("scheduler.resent", source=source, job=job.actor, count=len(ids))


def build_scheduler(jobs: Jobs) -> AsyncIOScheduler:
    settings = jobs.settings
    scheduler = AsyncIOScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
    )
    intervals: dict[str, tuple[ScheduledJob, int]] = {
        "diagnostics.ping": (jobs.diagnostics_ping, settings.diagnostics_ping_interval),
        "purchases.sweep": (jobs.purchases_sweep, settings.purchase_sweep_interval),
        "purchases.held_watch": (jobs.held_payments_watch, 300),
        "notifications.sweep": (jobs.notifications_sweep, settings.notification_sweep_interval),
        "subscriptions.due": (jobs.subscriptions_due, 60),
        # Hourly, but the slot claim makes it run once per day, at the first chance after midnight.
        RECONCILE_JOB: (jobs.purchases_reconcile, 3600),
        "idempotency.prune": (jobs.idempotency_prune, 3600),
    }
    for job_id, (function, seconds) in intervals.items():
        # First run at start: a restarted scheduler catches up at once.
        scheduler.add_job(function, "interval", seconds=seconds, id=job_id, next_run_time=utcnow())
    scheduler.add_listener(_log_job_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return scheduler


def _log_job_event(event: JobExecutionEvent) -> None:
    if event.exception is not None:
        log.error("scheduler.job.failed", job=event.job_id, error=repr(event.exception))
    else:
        log.info("scheduler.job.ran", job=event.job_id)


async def run(settings: Settings) -> None:
    broker = create_broker(settings.redis_url, socket_timeout=settings.redis_timeout)
    jobs = Jobs(settings, broker)
    scheduler = build_scheduler(jobs)
    schedule_recorder(settings).attach(scheduler)  # last/next run and errors for the overview
    if settings.scheduler_metrics_port:
        serve_metrics(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    log.info("scheduler.started", jobs=[job.id for job in scheduler.get_jobs()])
    await stop.wait()
    scheduler.shutdown(wait=False)
    await jobs.close()
    broker.close()
    log.info("scheduler.stopped")


def serve_metrics(settings: Settings) -> None:
    """The scheduler's series on SCHEDULER_METRICS_PORT; without it the jobs still run."""
    host, port = settings.host, settings.scheduler_metrics_port
    if message := port_in_use_message(host, port, "SCHEDULER_METRICS_PORT"):
        log.error("scheduler.metrics_unavailable", error=message)
        return
    metrics.serve(host, port)


def main() -> None:
    settings = load_settings_or_exit()
    configure_logging("scheduler", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
