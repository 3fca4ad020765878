"""`job_actor`: declare a coroutine actor for a `core.queue.Job`.

Dramatiq runs coroutine actors on its own event-loop thread, where the context variables of the
worker thread (the current message) are not visible. The wrapper reads the message on the worker
thread and, around the coroutine, binds its request id, message id and actor name for the logs
and publishes the attempt number, so every log line a job writes names the request that caused
it and a job can tell its last attempt from the others. A message's own `max_retries` option wins
over the actor's, as it does in Dramatiq's Retries middleware; otherwise a job would never see the
attempt Dramatiq treats as its last.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import async_to_sync
from dramatiq.middleware import CurrentMessage

from core.queue import DEFAULT_MAX_RETRIES, REQUEST_ID_OPTION, Job
from workers.broker import broker

AsyncJob = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Attempt:
    retries: int
    max_retries: int

    @property
    def is_last(self) -> bool:
        return self.retries >= self.max_retries


_attempt: contextvars.ContextVar[Attempt] = contextvars.ContextVar("attempt")


def current_attempt() -> Attempt:
    return _attempt.get(Attempt(0, DEFAULT_MAX_RETRIES))


def job_actor(job: Job, **options: Any) -> Callable[[AsyncJob], dramatiq.Actor[..., None]]:
    actor_max_retries = int(options.get("max_retries", DEFAULT_MAX_RETRIES))

    def decorate(fn: AsyncJob) -> dramatiq.Actor[..., None]:
        def run(*args: Any) -> None:
            message = CurrentMessage.get_current_message()
            context: dict[str, Any] = {"actor": job.actor}
            retries = 0
            max_retries = actor_max_retries
            if message is not None:
                retries = int(message.options.get("retries", 0))
                max_retries = int(message.options.get("max_retries", actor_max_retries))
                context["message_id"] = message.message_id
                context["request_id"] = message.options.get(REQUEST_ID_OPTION)
                context["retries"] = retries

            async def in_context() -> None:
                _attempt.set(Attempt(retries, max_retries))
                with structlog.contextvars.bound_contextvars(**context):
                    await fn(*args)

            async_to_sync(in_context)()

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        declare = dramatiq.actor(
            actor_name=job.actor, queue_name=job.queue, broker=broker, **options
        )
        return declare(run)

    return decorate
