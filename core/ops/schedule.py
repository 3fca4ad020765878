"""The scheduler's record of each job's runs, kept in Redis for the ops overview.

APScheduler's own events drive it: a submitted run sets `started_at` and the next run time, an
executed or failed run sets `finished_at`, its outcome and duration (and the error), a missed one
is recorded as such. Each job's record is one JSON field of the hash `SCHEDULE_KEY`, written by
`RedisWriter` so the scheduler's event loop never waits for Redis. With two schedulers running,
the last writer wins, which is what the overview wants: the most recent run, whoever ran it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping

import msgspec
import redis
import redis.asyncio
import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    EVENT_SCHEDULER_STARTED,
    JobEvent,
    JobExecutionEvent,
    SchedulerEvent,
)
from apscheduler.schedulers.base import BaseScheduler

from core import metrics
from core.ops.activity import RedisWriter, redis_writer, text
from core.settings import Settings

log = structlog.get_logger(__name__)

SCHEDULE_KEY = "kopilka:ops:scheduler"
ERROR_MAX_LENGTH = 500
RECORDED_EVENTS = (
    EVENT_SCHEDULER_STARTED
    | EVENT_JOB_SUBMITTED
    | EVENT_JOB_EXECUTED
    | EVENT_JOB_ERROR
    | EVENT_JOB_MISSED
)


class JobRecord(msgspec.Struct, kw_only=True):
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    next_run_at: dt.datetime | None = None
    outcome: str | None = None
    """running, success, error or missed: how the latest run stands."""
    duration_seconds: float | None = None
    last_error: str | None = None
    """The latest error, kept after later successes; `last_error_at` dates it."""
    last_error_at: dt.datetime | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(JobRecord).decode


class ScheduleRecorder:
    """Listens to a scheduler's events and writes each job's record."""

    def __init__(self, writer: RedisWriter) -> None:
        self.writer = writer
        self.records: dict[str, JobRecord] = {}
        self._started: dict[str, float] = {}

    def attach(self, scheduler: BaseScheduler) -> None:
        """Start from what earlier runs recorded, then follow `scheduler`'s events."""
        self.records = self._load()

        def listener(event: SchedulerEvent) -> None:
            self._on_event(scheduler, event)

        scheduler.add_listener(listener, RECORDED_EVENTS)

    def _load(self) -> dict[str, JobRecord]:
        try:
            stored = self.writer.client.hgetall(SCHEDULE_KEY)
        except redis.RedisError as exc:
            log.warning("schedule.records_unavailable", error=str(exc))
            return {}
        return _decode_all(stored)

    def _on_event(self, scheduler: BaseScheduler, event: SchedulerEvent) -> None:
        if event.code == EVENT_SCHEDULER_STARTED:
            self._started_scheduler(scheduler)
            return
        assert isinstance(event, JobEvent)
        record = self.records.setdefault(event.job_id, JobRecord())
        now = dt.datetime.now(dt.UTC)
        if event.code == EVENT_JOB_SUBMITTED:
            self._started[event.job_id] = time.perf_counter()
            record.started_at = now
            record.outcome = "running"
        elif isinstance(event, JobExecutionEvent):
            self._finished(event, record, now)
        job = scheduler.get_job(event.job_id)
        record.next_run_at = job.next_run_time if job is not None else None
        self._write({event.job_id: record})

    def _started_scheduler(self, scheduler: BaseScheduler) -> None:
        """Record each job's first run time and forget jobs that no longer exist."""
        jobs = {job.id: job for job in scheduler.get_jobs()}
        gone = [name for name in self.records if name not in jobs]
        for name in gone:
            del self.records[name]
        for name, job in jobs.items():
            self.records.setdefault(name, JobRecord()).next_run_at = job.next_run_time
        self._write(self.records, forget=gone)

    def _finished(self, event: JobExecutionEvent, record: JobRecord, now: dt.datetime) -> None:
        started = self._started.pop(event.job_id, None)
        if event.code == EVENT_JOB_MISSED:
            record.outcome = "missed"
            record.last_error = f"missed the run due at {event.scheduled_run_time.isoformat()}"
            record.last_error_at = now
        else:
            record.finished_at = now
            record.outcome = "error" if event.code == EVENT_JOB_ERROR else "success"
            if started is not None:
                record.duration_seconds = round(time.perf_counter() - started, 3)
                metrics.SCHEDULED_RUN_DURATION.labels(event.job_id).observe(record.duration_seconds)
            if event.exception is not None:
                error = f"{type(event.exception).__name__}: {event.exception}"
                record.last_error = error[:ERROR_MAX_LENGTH]
                record.last_error_at = now
        metrics.SCHEDULED_RUNS.labels(event.job_id, record.outcome).inc()

    def _write(self, records: dict[str, JobRecord], forget: list[str] | None = None) -> None:
        fields = {name: _encode(record) for name, record in records.items()}
        stale = list(forget or [])

        def write(pipe: redis.client.Pipeline) -> None:
            if stale:
                pipe.hdel(SCHEDULE_KEY, *stale)
            if fields:
                pipe.hset(SCHEDULE_KEY, mapping=fields)  # type: ignore[arg-type]

        self.writer.submit(write)


def schedule_recorder(settings: Settings) -> ScheduleRecorder:
    return ScheduleRecorder(redis_writer(settings))


async def read_schedule(client: redis.asyncio.Redis) -> dict[str, JobRecord]:
    """Every job's record, by job name."""
    return _decode_all(await client.hgetall(SCHEDULE_KEY))


def _decode_all(stored: Mapping[bytes | str, bytes | str]) -> dict[str, JobRecord]:
    records = {}
    for field, value in stored.items():
        name = text(field)
        try:
            records[name] = _decode(value)
        except msgspec.DecodeError:
            log.warning("schedule.record_unreadable", job=name)
    return records
