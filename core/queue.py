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
from redis.exceptions import NoScriptError

from core.batching import Batcher
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
    script, over an asyncio Redis client; the sends made at about the same time go to Redis in
    one pipeline (core/batching.py), one round trip for all of them.

    Dramatiq's broker is synchronous, so the api would otherwise hand every send to a thread:
    a hop, a blocked socket read and a GIL hand-over per accepted request. The script's
    arguments follow `RedisBroker._dispatch` (Dramatiq is pinned below 3; the api and worker
    tests consume what this sends, so a change there fails them).
    """

    def __init__(self, broker: RedisBroker, client: redis.asyncio.Redis) -> None:
        self.broker = broker
        self.client = client
        self._dispatch = client.register_script(broker.scripts["dispatch"].script)
        self._batcher: Batcher[dramatiq.Message[Any], None] = Batcher(self._dispatch_all)

    async def send(self, job: Job, *args: Any) -> dramatiq.Message[Any]:
        """Enqueue `job` now; raises redis errors to the caller, like `send`."""
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue,
            actor_name=job.actor,
            args=args,
            kwargs={},
            options={"redis_message_id": str(uuid.uuid4())},
        )
        self.broker.emit_before("enqueue", message, None)
        await self._batcher(message)
        self.broker.emit_after("enqueue", message, None)
        return message

    async def _dispatch_all(self, messages: list[dramatiq.Message[Any]]) -> list[Exception | None]:
        """Run the dispatch script once per message in one pipeline. EVALSHA is sent directly:
        a pipeline given the script object asks Redis whether it has the script first, a round
        trip of its own every time; a message Redis answers NOSCRIPT for (restarted, flushed) is
        sent again through the script object, which loads it."""
        async with self.client.pipeline(transaction=False) as pipeline:
            for message in messages:
                pipeline.evalsha(self._dispatch.sha, 1, *self._dispatch_arguments(message))
            replies = await pipeline.execute(raise_on_error=False)
        outcomes: list[Exception | None] = []
        for message, reply in zip(messages, replies, strict=True):
            if isinstance(reply, NoScriptError):
                outcomes.append(await self._dispatch_again(message))
            else:
                outcomes.append(reply if isinstance(reply, Exception) else None)
        return outcomes

    async def _dispatch_again(self, message: dramatiq.Message[Any]) -> Exception | None:
        namespace, *args = self._dispatch_arguments(message)
        try:
            await self._dispatch(keys=[namespace], args=args)
        except redis.RedisError as exc:
            return exc
        return None

    def _dispatch_arguments(self, message: dramatiq.Message[Any]) -> list[Any]:
        """The dispatch script's key (the namespace) and arguments for enqueueing `message`."""
        broker = self.broker
        return [
            broker.namespace,
            "enqueue",
            int(time.time() * 1000),
            message.queue_name,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            broker._should_do_maintenance("enqueue"),
            broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            message.options["redis_message_id"],
            message.encode(),
        ]
