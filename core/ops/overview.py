"""What the ops overview shows, gathered in one call from the broker's keys in Redis, the
activity buckets (`core.ops.activity`), the scheduler's run records (`core.ops.schedule`) and
PostgreSQL (`core.ops.repository`). The /ops pages render it; the api's /metrics reuses the broker
and database parts. Field names are agreed with the dashboard: add fields, never rename.

The broker's layout (dramatiq/brokers/redis/dispatch.lua), under the namespace `dramatiq`:
`{queue}` a list of ready message ids, `{queue}.msgs` a hash of id -> message for every message
not yet acknowledged (so its length minus the list's is what workers hold), `{queue}.DQ` and
`{queue}.DQ.msgs` the same for messages delayed for a retry, `{queue}.XQ` a sorted set of
dead-lettered ids, and `__heartbeats__` a sorted set of broker ids by their last dispatch (ms).
Everything is read by key, two pipelined round trips in all; never KEYS or a full HSCAN.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid

import msgspec
import redis.asyncio
from dramatiq.brokers.redis import DEFAULT_HEARTBEAT_TIMEOUT
from sqlalchemy.ext.asyncio import AsyncSession

from core.ops.activity import (
    MAX_WINDOW_MINUTES,
    WORKER_ID_PREFIX,
    latency_histograms,
    latency_quantile,
    merged,
    read_buckets,
    split_field,
    text,
)
from core.ops.repository import OpsRepository
from core.ops.schedule import read_schedule
from core.queue import ALL_JOBS

BROKER_NAMESPACE = "dramatiq"
HEARTBEATS_KEY = f"{BROKER_NAMESPACE}:__heartbeats__"
OLDEST_SAMPLE = 100
"""How many ids from the head of a ready list are read for the oldest message's age: the head is
the longest waiting, but a retried message rejoins at the tail with its first timestamp."""
QUEUE_NAMES = tuple(sorted({job.queue for job in ALL_JOBS}))


class QueueStats(msgspec.Struct):
    name: str
    ready: int
    """Waiting in Redis for a worker."""
    delayed: int
    """Waiting for a retry's backoff (held by a worker or still in Redis)."""
    dead: int
    """Dead-lettered: retries ran out; kept by Dramatiq for 7 days."""
    oldest_age_seconds: float | None
    """Age of the oldest ready message, from its first send (retries keep it); None when none."""
    in_progress: int = 0
    """Taken by a worker (prefetched or running) and not acknowledged yet."""


class WorkerBeat(msgspec.Struct):
    worker_id: str
    """`worker-{host}-{pid}-{random}`."""
    seconds_since_beat: float


class ActorActivity(msgspec.Struct):
    """Job executions of one actor within the window."""

    actor: str
    processed: int
    """Every execution that finished, whatever its outcome (so it includes the two below)."""
    retried: int
    """Executions that failed and were sent again for a later attempt."""
    failed: int
    """Executions that failed for good (dead-lettered)."""


class RustoreMethodActivity(msgspec.Struct):
    method: str
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None


class RustoreActivity(msgspec.Struct):
    """Logical RuStore calls within the window (a call's own retries are part of it); an error
    is any outcome but ok. Latencies are estimated from histogram buckets."""

    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    by_method: list[RustoreMethodActivity]
    calls_per_minute: float = 0.0


class ScheduledJobStatus(msgspec.Struct):
    name: str
    last_run_at: dt.datetime | None
    """When the latest run started."""
    next_run_at: dt.datetime | None
    last_error: str | None
    """The latest error, kept after later successes; see `last_error_at` and `last_outcome`."""
    last_outcome: str | None = None
    """running, success, error or missed."""
    last_finished_at: dt.datetime | None = None
    last_duration_seconds: float | None = None
    last_error_at: dt.datetime | None = None


class OldestOpenPurchase(msgspec.Struct):
    purchase_id: uuid.UUID
    state: str
    age_seconds: float


class Overview(msgspec.Struct):
    generated_at: dt.datetime
    window_minutes: int
    queues: list[QueueStats]
    workers: list[WorkerBeat]
    jobs: list[ActorActivity]
    purchases_by_state: dict[str, int]
    subscriptions_by_state: dict[str, int]
    oldest_open_purchase: OldestOpenPurchase | None
    rustore: RustoreActivity
    scheduler: list[ScheduledJobStatus]


async def load_overview(
    session: AsyncSession, redis: redis.asyncio.Redis, *, window_minutes: int = 15
) -> Overview:
    """Everything the overview page shows; `window_minutes` is clamped to 1..120."""
    window = max(1, min(window_minutes, MAX_WINDOW_MINUTES))
    now = time.time()
    queues, workers = await read_broker(redis, now)
    repository = OpsRepository(session)
    oldest = await repository.oldest_open_purchase()
    generated_at = dt.datetime.fromtimestamp(now, dt.UTC)
    return Overview(
        generated_at=generated_at,
        window_minutes=window,
        queues=queues,
        workers=workers,
        jobs=await read_jobs(redis, window, now),
        purchases_by_state=await repository.purchases_by_state(),
        subscriptions_by_state=await repository.subscriptions_by_state(),
        oldest_open_purchase=None
        if oldest is None
        else OldestOpenPurchase(
            oldest.id, oldest.state, (generated_at - oldest.created_at).total_seconds()
        ),
        rustore=await read_rustore(redis, window, now),
        scheduler=await read_scheduler(redis),
    )


class _Stamp(msgspec.Struct):
    message_timestamp: int
    """Milliseconds since the epoch at the first send; Dramatiq keeps it on every retry."""


_read_stamp = msgspec.json.Decoder(_Stamp).decode


async def read_broker(
    client: redis.asyncio.Redis, now: float | None = None
) -> tuple[list[QueueStats], list[WorkerBeat]]:
    """Each queue's counts and oldest ready message, and the workers whose heartbeat is
    younger than Dramatiq's own timeout (older ones Dramatiq itself treats as dead)."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    for name in QUEUE_NAMES:
        key = f"{BROKER_NAMESPACE}:{name}"
        pipe.llen(key)
        pipe.hlen(f"{key}.msgs")
        pipe.hlen(f"{key}.DQ.msgs")
        pipe.zcard(f"{key}.XQ")
        pipe.lrange(key, 0, OLDEST_SAMPLE - 1)
    pipe.zrange(HEARTBEATS_KEY, 0, -1, withscores=True)
    *per_queue, beats = await pipe.execute()
    counts = [per_queue[index : index + 5] for index in range(0, len(per_queue), 5)]
    oldest = await _oldest_stamps(client, [ids for *_, ids in counts])
    queues = [
        QueueStats(
            name=name,
            ready=ready,
            delayed=delayed,
            dead=dead,
            oldest_age_seconds=None if stamp is None else max(now - stamp / 1000, 0.0),
            in_progress=max(unacked - ready, 0),
        )
        for name, (ready, unacked, delayed, dead, _), stamp in zip(
            QUEUE_NAMES, counts, oldest, strict=True
        )
    ]
    return queues, _alive_workers(beats, now)


async def _oldest_stamps(
    client: redis.asyncio.Redis, ready_ids: list[list[bytes]]
) -> list[int | None]:
    """Per queue, the earliest `message_timestamp` among the sampled ready messages."""
    waiting = [(name, ids) for name, ids in zip(QUEUE_NAMES, ready_ids, strict=True) if ids]
    bodies: dict[str, list[bytes | None]] = {}
    if waiting:
        pipe = client.pipeline(transaction=False)
        for name, ids in waiting:
            pipe.hmget(f"{BROKER_NAMESPACE}:{name}.msgs", ids)
        bodies = dict(zip((name for name, _ in waiting), await pipe.execute(), strict=True))
    return [_earliest(bodies.get(name, [])) for name in QUEUE_NAMES]


def _earliest(bodies: list[bytes | None]) -> int | None:
    stamps = []
    for body in bodies:
        if body is None:
            continue  # acknowledged since its id was read
        with contextlib.suppress(msgspec.DecodeError):  # not a Dramatiq message
            stamps.append(_read_stamp(body).message_timestamp)
    return min(stamps, default=None)


def _alive_workers(beats: list[tuple[bytes | str, float]], now: float) -> list[WorkerBeat]:
    workers = []
    for member, score in beats:
        worker_id = text(member)
        age = max(now - score / 1000, 0.0)
        if worker_id.startswith(WORKER_ID_PREFIX) and age * 1000 < DEFAULT_HEARTBEAT_TIMEOUT:
            workers.append(WorkerBeat(worker_id, round(age, 3)))
    return sorted(workers, key=lambda beat: beat.worker_id)


async def read_jobs(client: redis.asyncio.Redis, window: int, now: float) -> list[ActorActivity]:
    by_actor: dict[str, dict[str, int]] = {}
    for field, count in (await read_buckets(client, "jobs", window, now)).items():
        actor, outcome = split_field(field)
        by_actor.setdefault(actor, {})[outcome] = count
    return [
        ActorActivity(
            actor=actor,
            processed=sum(outcomes.values()),
            retried=outcomes.get("retry", 0),
            failed=outcomes.get("failed", 0),
        )
        for actor, outcomes in sorted(by_actor.items())
    ]


async def read_rustore(client: redis.asyncio.Redis, window: int, now: float) -> RustoreActivity:
    totals = await read_buckets(client, "rustore", window, now)
    histograms = latency_histograms(totals)
    methods = sorted({split_field(field)[0] for field in totals})
    by_method = [
        RustoreMethodActivity(
            method=method,
            calls=totals[f"{method}|calls"],
            errors=totals[f"{method}|errors"],
            p50_ms=_rounded(latency_quantile(histograms.get(method, {}), 0.5)),
            p95_ms=_rounded(latency_quantile(histograms.get(method, {}), 0.95)),
        )
        for method in methods
    ]
    calls = sum(method.calls for method in by_method)
    errors = sum(method.errors for method in by_method)
    everything = merged(histograms.values())
    return RustoreActivity(
        calls=calls,
        errors=errors,
        error_rate=round(errors / calls, 4) if calls else 0.0,
        p50_ms=_rounded(latency_quantile(everything, 0.5)),
        p95_ms=_rounded(latency_quantile(everything, 0.95)),
        by_method=by_method,
        calls_per_minute=round(calls / window, 2),
    )


async def read_scheduler(client: redis.asyncio.Redis) -> list[ScheduledJobStatus]:
    return [
        ScheduledJobStatus(
            name=name,
            last_run_at=record.started_at,
            next_run_at=record.next_run_at,
            last_error=record.last_error,
            last_outcome=record.outcome,
            last_finished_at=record.finished_at,
            last_duration_seconds=record.duration_seconds,
            last_error_at=record.last_error_at,
        )
        for name, record in sorted((await read_schedule(client)).items())
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
