"""The scheduler process: APScheduler sending actors on an interval or a cron.

It only enqueues; work is claimed in the database by the actors, so two schedulers running at once
double the messages, never the work.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.db import get_sessionmaker, utcnow
from core.diagnostics import service as diagnostics
from core.logging import configure_logging
from core.queue import DIAGNOSTICS_PING, create_broker, send
from core.settings import Settings, load_settings_or_exit

log = structlog.get_logger(__name__)


def build_scheduler(settings: Settings) -> AsyncIOScheduler:
    broker = create_broker(settings.redis_url, socket_timeout=settings.redis_timeout)

    async def send_diagnostic_ping() -> None:
        async with get_sessionmaker()() as session:
            ping = await diagnostics.create_ping(session, source="scheduler")
            await session.commit()
        send(broker, DIAGNOSTICS_PING, str(ping.id))

    scheduler = AsyncIOScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
    )
    scheduler.add_job(
        send_diagnostic_ping,
        "interval",
        seconds=settings.diagnostics_ping_interval,
        id="diagnostics.ping",
        next_run_time=utcnow(),  # one ping at start shows the pipeline moves
    )
    scheduler.add_listener(_log_job_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return scheduler


def _log_job_event(event: JobExecutionEvent) -> None:
    if event.exception is not None:
        log.error("scheduler.job.failed", job=event.job_id, error=repr(event.exception))
    else:
        log.info("scheduler.job.ran", job=event.job_id)


async def run(settings: Settings) -> None:
    scheduler = build_scheduler(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    log.info("scheduler.started", jobs=[job.id for job in scheduler.get_jobs()])
    await stop.wait()
    scheduler.shutdown(wait=False)
    log.info("scheduler.stopped")


def main() -> None:
    settings = load_settings_or_exit()
    configure_logging("scheduler", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
