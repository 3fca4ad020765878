"""Recent activity of every process, in per-minute Redis buckets the ops overview sums.

Prometheus counters answer "how many since the process started", per process; the overview asks
"how many in the last N minutes, across all workers", so each finished job and each RuStore call
also adds one to a hash named for the current minute (`kopilka:activity:{kind}:{minute}`), which
expires after `BUCKET_TTL_SECONDS`. The counts are tallied in memory and written by a background
thread at most every `LINGER_SECONDS`, one pipelined round trip for everything counted meanwhile;
when Redis is slow or down they are dropped and logged, so a job or a RuStore call never waits
for its own bookkeeping, and a busy worker pays one round trip per interval, not several per job.

Fields: jobs `{actor}|{outcome}` (success, retry, failed); RuStore `{method}|calls`,
`{method}|errors` and `{method}|le={ms}`, a latency histogram with `LATENCY_BUCKETS_MS` bounds.
"""

from __future__ import annotations

import math
import os
import queue
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal

import dramatiq
import redis
import redis.asyncio
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from core import metrics
from core.settings import Settings

log = structlog.get_logger(__name__)

Kind = Literal["jobs", "rustore"]
JobOutcome = Literal["success", "retry", "failed"]

KEY_PREFIX = "kopilka:activity"
BUCKET_TTL_SECONDS = 2 * 3600 + 120
MAX_WINDOW_MINUTES = 120
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
WORKER_ID_PREFIX = "worker-"
_PENDING_LIMIT = 10_000
_BATCH_LIMIT = 500
LINGER_SECONDS = 0.25
"""How long the writer thread lets writes gather after the first before it sends them. The
overview reads per-minute buckets, so a quarter of a second of delay is invisible there, and at
hundreds of jobs a second it turns hundreds of increments into one write."""


def bucket_key(kind: Kind, minute: int) -> str:
    return f"{KEY_PREFIX}:{kind}:{minute}"


def current_minute(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)


Operation = Callable[[redis.client.Pipeline], object]
"""Queues commands on a pipeline; `RedisWriter` runs a batch of them in one round trip."""


class RedisWriter:
    """Runs Redis writes on a daemon thread of this process, batched into pipelined round
    trips; the caller never waits, and when Redis is down the writes are dropped and logged once
    (a full backlog drops new ones). Increments of one hash field are summed before they are
    sent (`increment`)."""

    def __init__(self, client: redis.Redis, *, linger: float = LINGER_SECONDS) -> None:
        self.client = client
        self.linger = linger
        self._pending: queue.Queue[Operation] = queue.Queue(_PENDING_LIMIT)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._ttls: dict[str, int] = {}
        self._counts_queued = False
        self._owner_pid: int | None = None
        self._lock = threading.Lock()
        self._failing = False

    def submit(self, operation: Operation) -> bool:
        """Queue `operation`; False when the backlog is full (Redis has been unreachable for a
        while) and it was dropped: the overview shows a gap."""
        self._ensure_thread()
        try:
            self._pending.put_nowait(operation)
        except queue.Full:
            return False
        return True

    def increment(self, key: str, field: str, ttl: int) -> None:
        """HINCRBY `key` `field` 1 and EXPIRE `key` `ttl`, summed with the other increments made
        before the writer thread next runs, so a burst costs one write per field, not per call."""
        self._ensure_thread()
        with self._lock:
            self._counts[key, field] += 1
            self._ttls[key] = ttl
            queued, self._counts_queued = self._counts_queued, True
        # One queued write carries every count made until it runs.
        if not queued and not self.submit(self._write_counts):
            with self._lock:
                self._counts_queued = False

    def _write_counts(self, pipe: redis.client.Pipeline) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            ttls, self._ttls = self._ttls, {}
            self._counts_queued = False
        for (key, field), amount in counts.items():
            pipe.hincrby(key, field, amount)
        for key, ttl in ttls.items():
            pipe.expire(key, ttl)

    def _ensure_thread(self) -> None:
        """Start the writer thread in this process; a forked child starts its own, with none of
        its parent's unsent writes."""
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid != os.getpid():
                self._pending = queue.Queue(_PENDING_LIMIT)
                self._counts, self._ttls, self._counts_queued = Counter(), {}, False
                threading.Thread(target=self._run, name="kopilka-ops-writer", daemon=True).start()
                self._owner_pid = os.getpid()

    def _run(self) -> None:
        while True:
            batch = [self._pending.get()]
            time.sleep(self.linger)
            while len(batch) < _BATCH_LIMIT:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[Operation]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for operation in batch:
            operation(pipe)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("ops_writer.unavailable", error=str(exc))
            self._failing = True
            return
        if self._failing:
            log.info("ops_writer.recovered")
        self._failing = False


class ActivityRecorder:
    """Adds to the current minute's buckets without making the caller wait."""

    def __init__(self, writer: RedisWriter) -> None:
        self.writer = writer

    def job(self, actor: str, outcome: JobOutcome) -> None:
        self._add("jobs", [f"{actor}|{outcome}"])

    def rustore_call(self, method: str, outcome: str, seconds: float) -> None:
        fields = [f"{method}|calls", f"{method}|le={_latency_bucket(seconds * 1000)}"]
        if outcome != "ok":
            fields.append(f"{method}|errors")
        self._add("rustore", fields)

    def _add(self, kind: Kind, fields: list[str]) -> None:
        key = bucket_key(kind, current_minute())
        for field in fields:
            self.writer.increment(key, field, BUCKET_TTL_SECONDS)


def _latency_bucket(milliseconds: float) -> str:
    for bound in LATENCY_BUCKETS_MS:
        if milliseconds <= bound:
            return str(bound)
    return "inf"


class RustoreCallObserver:
    """The RuStore client's observer: Prometheus series plus the overview's activity buckets."""

    def __init__(self, recorder: ActivityRecorder) -> None:
        self.recorder = recorder

    def __call__(self, method: str, outcome: str, seconds: float) -> None:
        metrics.observe_rustore_call(method, outcome, seconds)
        self.recorder.rustore_call(method, outcome, seconds)


def redis_writer(settings: Settings) -> RedisWriter:
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    return RedisWriter(client)


def rustore_call_observer(settings: Settings) -> RustoreCallObserver:
    return RustoreCallObserver(ActivityRecorder(redis_writer(settings)))


class JobActivity(Middleware):
    """Counts every job execution by actor and outcome, with its duration, in Prometheus and in
    the activity buckets.

    Listed before `Retries`: Dramatiq runs `after_*` hooks in reverse order, so by the time this
    one runs, `Retries` has decided whether a failed message goes back (retry) or is marked
    failed (dead-lettered).
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._recorder: ActivityRecorder | None = None

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        if isinstance(broker, RedisBroker):
            self._recorder = ActivityRecorder(RedisWriter(broker.client))

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Name this process's heartbeat, so the overview can tell a worker from the api or
        the scheduler, whose enqueues write heartbeats too."""
        if isinstance(broker, RedisBroker):
            broker.broker_id = (
                f"{WORKER_ID_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            )

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        metrics.mark_process_dead()

    def before_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.MessageProxy
    ) -> None:
        self._started[message.message_id] = time.perf_counter()
        metrics.JOBS_IN_PROGRESS.labels(message.actor_name).inc()
        if message.options.get("retries", 0):
            metrics.JOB_RETRIES.labels(message.actor_name).inc()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        outcome: JobOutcome = "success"
        if exception is not None:
            outcome = "failed" if message.failed else "retry"
        self._finish(message, outcome)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        """A skipped message (too old for its `max_age`) is dead-lettered: it failed."""
        self._finish(message, "failed")

    def _finish(self, message: dramatiq.MessageProxy, outcome: JobOutcome) -> None:
        actor = message.actor_name
        started = self._started.pop(message.message_id, None)
        if started is not None:
            metrics.JOBS_IN_PROGRESS.labels(actor).dec()
            metrics.JOB_DURATION.labels(actor).observe(time.perf_counter() - started)
        metrics.JOBS.labels(actor, outcome).inc()
        if self._recorder is not None:
            self._recorder.job(actor, outcome)


async def read_buckets(
    client: redis.asyncio.Redis, kind: Kind, window_minutes: int, now: float | None = None
) -> Counter[str]:
    """The fields of the last `window_minutes` buckets (the current one included), summed."""
    last = current_minute(now)
    pipe = client.pipeline(transaction=False)
    for minute in range(last - window_minutes + 1, last + 1):
        pipe.hgetall(bucket_key(kind, minute))
    totals: Counter[str] = Counter()
    for bucket in await pipe.execute():
        for field, value in bucket.items():
            totals[text(field)] += int(value)
    return totals


def text(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def split_field(field: str) -> tuple[str, str]:
    """`purchase.verify|success` → (`purchase.verify`, `success`)."""
    name, _, part = field.rpartition("|")
    return name, part


def latency_quantile(histogram: dict[str, int], quantile: float) -> float | None:
    """Estimate a latency quantile (ms) from `le=` bucket counts, interpolating inside the
    bucket as Prometheus's histogram_quantile does; None without observations."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    lower = 0.0
    for bound in (*LATENCY_BUCKETS_MS, math.inf):
        count = histogram.get("inf" if bound == math.inf else str(bound), 0)
        if count and seen + count >= rank:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        lower = float(bound)
    return lower


def latency_histograms(totals: Counter[str]) -> dict[str, dict[str, int]]:
    """Per method, its `le=` bucket counts out of the summed RuStore fields."""
    histograms: dict[str, dict[str, int]] = {}
    for field, count in totals.items():
        method, part = split_field(field)
        if part.startswith("le="):
            histograms.setdefault(method, {})[part.removeprefix("le=")] = count
    return histograms


def merged(histograms: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for histogram in histograms:
        total.update(histogram)
    return dict(total)
