"""core.queue.AsyncEnqueuer: the api's sends, made together, reach Redis as Dramatiq's own would.

The messages go to a queue of this test's own, which no worker consumes, and are read back from
the keys Dramatiq's dispatch script writes (`<namespace>:<queue>` lists the ids, `.msgs` holds
the messages).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import dramatiq
import pytest
from redis.asyncio import Redis

from core.queue import AsyncEnqueuer, Job, create_broker
from core.settings import Settings


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def job(redis: Redis) -> AsyncIterator[Job]:
    job = Job("test.nothing", f"test-enqueue-{uuid.uuid4().hex}")
    yield job
    await redis.delete(f"dramatiq:{job.queue}", f"dramatiq:{job.queue}.msgs")


async def test_sends_made_together_are_each_enqueued(
    settings: Settings, redis: Redis, job: Job
) -> None:
    enqueuer = AsyncEnqueuer(create_broker(settings.redis_url, socket_timeout=5), redis)

    sent = await asyncio.gather(*(enqueuer.send(job, f"id-{n}") for n in range(5)))

    queued = await _queued(redis, job)
    assert queued == {m.options["redis_message_id"]: tuple(m.args) for m in sent}
    assert len(queued) == 5


async def test_sends_go_on_after_redis_forgets_the_dispatch_script(
    settings: Settings, redis: Redis, job: Job
) -> None:
    """A restarted Redis has no scripts: the sends it answers NOSCRIPT for load it and go again."""
    enqueuer = AsyncEnqueuer(create_broker(settings.redis_url, socket_timeout=5), redis)
    await enqueuer.send(job, "before")
    await redis.script_flush()

    await asyncio.gather(enqueuer.send(job, "after-1"), enqueuer.send(job, "after-2"))

    assert sorted((await _queued(redis, job)).values()) == [("after-1",), ("after-2",), ("before",)]


async def _queued(redis: Redis, job: Job) -> dict[str, tuple[object, ...]]:
    """The queue's messages by Redis message id, in queue order, as their actors' arguments."""
    ids = [raw.decode() for raw in await redis.lrange(f"dramatiq:{job.queue}", 0, -1)]
    stored = await redis.hgetall(f"dramatiq:{job.queue}.msgs")
    messages = {key.decode(): dramatiq.Message.decode(value) for key, value in stored.items()}
    assert sorted(ids) == sorted(messages)
    return {message_id: tuple(messages[message_id].args) for message_id in ids}
