"""The job-enqueue seam shared by the api, the workers and the scheduler.

Jobs are named here (`Job`) so the api can send a message without importing `workers/`, and the
broker is built here so every process speaks the same middleware list. The api only ever enqueues;
`workers/` declares the actors that consume these names.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import dramatiq
import redis
import redis.asyncio
import uvloop
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from core.garbage_collection import settle_after_startup
from core.logging import current_request_id
from core.ops.activity import JobActivity

REQUEST_ID_OPTION = "request_id"
DEFAULT_MAX_RETRIES = 20


class Job(NamedTuple):
    """An actor's name and queue; actors take ids only."""

    actor: str
    queue: str


DIAGNOSTICS_PING = Job("diagnostics.ping", "diagnostics")
PURCHASE_VERIFY = Job("purchase.verify", "purchases")
PURCHASE_SYNC = Job("purchase.sync", "purchases")
NOTIFICATION_PROCESS = Job("notification.process", "notifications")
SUBSCRIPTION_VERIFY = Job("subscription.verify", "subscriptions")
SUBSCRIPTION_CHECK = Job("subscription.check", "subscriptions")


class RequestIdMiddleware(Middleware):
    """Carry the id of the HTTP request that caused a job into the job's message and logs."""

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int
    ) -> None:
        request_id = current_request_id()
        if request_id is not None:
            message.options.setdefault(REQUEST_ID_OPTION, request_id)


class DeadLetterNotes(Middleware):
    """Dead-letter a message as it failed, with the traceback Retries just wrote into it.

    The broker moves the copy stored when the message was last enqueued, which lacks the
    traceback of the failure that killed it; this writes the failed copy over it first (only
    while it is still stored, so a message another worker already settled is not revived).
    """

    SCRIPT = (
        "if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then "
        "redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) end"
    )

    def before_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if isinstance(broker, RedisBroker):
            stored = f"{broker.namespace}:{message.queue_name}.msgs"
            redis_id = message.options["redis_message_id"]
            broker.client.eval(self.SCRIPT, 1, stored, redis_id, message.encode())


class AsyncIOOnUvloop(AsyncIO):
    """Dramatiq's event loop thread, on uvloop like the api's (uvicorn picks it there).

    Dramatiq makes its loop with `asyncio.new_event_loop()`, so the worker process's policy
    decides which loop it is. Every job is a few RuStore calls and database statements on that
    loop; on uvloop a purchase costs the worker about 5 % less CPU (docs/performance.md).
    """

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        super().before_worker_boot(broker, worker)  # type: ignore[no-untyped-call]


class SettleGarbageCollector(Middleware):
    """Settles the worker process's garbage collector once the worker has booted, with every
    actor, thread and the event loop in place (core.garbage_collection says why)."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        settle_after_startup()


def middleware_list() -> list[Middleware]:
    """The explicit middleware list: what each one is for is written next to it."""
    return [
        JobActivity(),  # metrics and the ops overview's counts; first, so it sees Retries' verdict
        AgeLimit(),  # drop messages older than their max_age, if an actor sets one
        TimeLimit(time_limit=120_000),  # a job that runs 2 minutes is stuck, not slow
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=DEFAULT_MAX_RETRIES, min_backoff=1_000, max_backoff=300_000),
        CurrentMessage(),  # lets actors read their message's options (the request id)
        AsyncIOOnUvloop(),  # actors are coroutines sharing one event loop per worker process
        RequestIdMiddleware(),
        DeadLetterNotes(),  # the dead letter keeps the traceback of its last failure
        SettleGarbageCollector(),  # once booted: startup's objects out of later collections
    ]


def create_broker(
    redis_url: str, *, socket_timeout: float, middleware: Sequence[Middleware] | None = None
) -> RedisBroker:
    """A Redis broker whose client fails fast, so a Redis outage never stalls an HTTP request."""
    client = redis.Redis.from_url(
        redis_url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client, middleware=list(middleware or middleware_list())
    )
    for job in ALL_JOBS:
        broker.declare_queue(job.queue)
    return broker


def send(
    broker: dramatiq.Broker, job: Job, *args: Any, delay_ms: int | None = None, **options: Any
) -> dramatiq.Message[Any]:
    """Enqueue `job` with positional id arguments and Dramatiq message `options` (e.g.
    `max_retries`); raises redis errors to the caller."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=job.queue, actor_name=job.actor, args=args, kwargs={}, options=options
    )
    return broker.enqueue(message, delay=delay_ms)


ALL_JOBS: tuple[Job, ...] = (
    DIAGNOSTICS_PING,
    PURCHASE_VERIFY,
    PURCHASE_SYNC,
    NOTIFICATION_PROCESS,
    SUBSCRIPTION_VERIFY,
    SUBSCRIPTION_CHECK,
)


class AsyncEnqueuer:
    """`RedisBroker.enqueue` for asyncio code: the same message, middleware hooks and Lua
    script, over an asyncio Redis client.

    Dramatiq's broker is synchronous, so the api would otherwise hand every send to a thread:
    a hop, a blocked socket read and a GIL hand-over per accepted request. The script's
    arguments follow `RedisBroker._dispatch` (Dramatiq is pinned below 3; the api and worker
    tests consume what this sends, so a change there fails them).
    """

    def __init__(self, broker: RedisBroker, client: redis.asyncio.Redis) -> None:
        self.broker = broker
        self._dispatch = client.register_script(broker.scripts["dispatch"].script)

    async def send(self, job: Job, *args: Any) -> dramatiq.Message[Any]:
        """Enqueue `job` now; raises redis errors to the caller, like `send`."""
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue,
            actor_name=job.actor,
            args=args,
            kwargs={},
            options={"redis_message_id": str(uuid.uuid4())},
        )
        broker = self.broker
        broker.emit_before("enqueue", message, None)
        await self._dispatch(
            keys=[broker.namespace],
            args=[
                "enqueue",
                int(time.time() * 1000),
                job.queue,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                broker._should_do_maintenance("enqueue"),
                broker._max_unpack_size(),  # type: ignore[no-untyped-call]
                message.options["redis_message_id"],
                message.encode(),
            ],
        )
        broker.emit_after("enqueue", message, None)
        return message
