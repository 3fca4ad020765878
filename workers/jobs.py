"""`job_actor`: declare a coroutine actor for a `core.queue.Job`.

Dramatiq runs coroutine actors on its own event-loop thread, where the context variables of the
worker thread (the current message) are not visible. The wrapper reads the message on the worker
thread and binds its request id, message id and actor name around the coroutine, so every log line
a job writes names the request that caused it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import async_to_sync
from dramatiq.middleware import CurrentMessage

from core.queue import REQUEST_ID_OPTION, Job
from workers.broker import broker

AsyncJob = Callable[..., Awaitable[None]]


def job_actor(job: Job, **options: Any) -> Callable[[AsyncJob], dramatiq.Actor[..., None]]:
    def decorate(fn: AsyncJob) -> dramatiq.Actor[..., None]:
        def run(*args: Any) -> None:
            message = CurrentMessage.get_current_message()
            context: dict[str, Any] = {"actor": job.actor}
            if message is not None:
                context["message_id"] = message.message_id
                context["request_id"] = message.options.get(REQUEST_ID_OPTION)
                context["retries"] = message.options.get("retries", 0)

            async def in_context() -> None:
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
