"""Dead-lettered jobs in Dramatiq's Redis broker: list them, requeue them, discard them.

    class DeadLetter(msgspec.Struct): message_id, queue, actor, args, kwargs, error, traceback,
                                      failed_at, request_id, attempts
    async def list_dead_letters(redis, *, actor: str | None = None, limit: int = 100)
        -> list[DeadLetter]                          # newest first
    async def dead_letter_counts(redis) -> dict[str, int]          # per actor
    async def requeue(redis, message_ids: Sequence[str]) -> int
    async def discard(redis, message_ids: Sequence[str]) -> int
    async def requeue_actor(redis, actor: str) -> int
    async def discard_actor(redis, actor: str) -> int

`redis` is a `redis.asyncio.Redis` on the broker's database. The audit entry for an action is
the caller's to write (core/audit).

The layout is Dramatiq's own (dramatiq/brokers/redis/dispatch.lua), under the namespace
`dramatiq`: a dead-lettered message of queue Q has its Redis message id in the sorted set
`dramatiq:Q.XQ`, scored by when it was dead-lettered (milliseconds), and its encoded message in
the hash `dramatiq:Q.XQ.msgs`. A ready message is an id pushed on the list `dramatiq:Q` with its
data in the hash `dramatiq:Q.msgs`; the broker keeps dead letters for 7 days.

The traceback comes from Dramatiq's Retries middleware, which writes it into the message's
options on every failure, including the one after which it gives up. The broker would dead-letter
the message as it was last *enqueued*, without that traceback; `core.queue.DeadLetterNotes`
writes the failed message back first, so the dead letter carries the traceback of the failure
that killed it. The error is the traceback's last line.

Only the known queues (`core.queue.ALL_JOBS`) are read, never the keyspace (no KEYS, no SCAN of
the database), so a listing costs the same however many other keys the database holds. The
newest are a bounded ZREVRANGE of each dead set; everything that needs every dead letter (one
actor's, the counts) walks the message hashes with HSCAN, a batch at a time.

Requeue moves one message in one Lua script, which Redis runs atomically: it pushes a copy back on
its queue (with a fresh Redis id and a fresh retry count) and only then removes the dead letter.
An interrupted requeue therefore either did nothing or did both, and two admins requeueing the
same message at once requeue it once: the second finds the dead letter gone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import dramatiq
import msgspec
import redis.asyncio
from dramatiq.errors import DecodeError

from core.queue import ALL_JOBS, REQUEST_ID_OPTION

NAMESPACE = "dramatiq"
BatchAction = Callable[[redis.asyncio.Redis, Sequence[str]], Awaitable[int]]
SCAN_COUNT = 500
BATCH = 500
# Options that describe the failed run, not the job: a requeued message starts afresh.
RUN_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id")

REQUEUE_SCRIPT = """
-- KEYS: dead set, dead messages, queue, queue messages; ARGV: dead id, new id, new data
if redis.call('hexists', KEYS[2], ARGV[1]) == 0 then
    return 0
end
redis.call('hset', KEYS[4], ARGV[2], ARGV[3])
redis.call('rpush', KEYS[3], ARGV[2])
redis.call('zrem', KEYS[1], ARGV[1])
redis.call('hdel', KEYS[2], ARGV[1])
return 1
"""


class DeadLetter(msgspec.Struct, frozen=True):
    message_id: str
    """The Redis message id: what `requeue` and `discard` take."""
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    error: str | None
    traceback: str | None
    failed_at: dt.datetime | None
    request_id: str | None
    attempts: int
    """Runs that failed, the last one included (Dramatiq's `retries` option)."""


def queues() -> list[str]:
    return sorted({job.queue for job in ALL_JOBS})


def _dead_set(queue: str) -> str:
    return f"{NAMESPACE}:{queue}.XQ"


def _dead_messages(queue: str) -> str:
    return f"{NAMESPACE}:{queue}.XQ.msgs"


async def list_dead_letters(
    client: redis.asyncio.Redis, *, actor: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """The newest `limit` dead letters, of one actor or all."""
    found: list[DeadLetter] = []
    for queue in queues():
        if actor is None:
            # The newest of each queue are enough for the newest overall.
            newest = cast(list[bytes], await client.zrevrange(_dead_set(queue), 0, limit - 1))
            pairs = await _fetch(client, queue, [_text(member) for member in newest])
        else:
            pairs = [pair async for pair in _scan(client, queue) if _actor_of(pair[1]) == actor]
        found.extend(await _dead_letters(client, queue, pairs))
    found.sort(key=lambda letter: letter.failed_at or dt.datetime.min.replace(tzinfo=dt.UTC))
    return found[::-1][:limit]


async def dead_letter_counts(client: redis.asyncio.Redis) -> dict[str, int]:
    """How many dead letters each actor has."""
    counts: dict[str, int] = {}
    for queue in queues():
        async for _, data in _scan(client, queue):
            name = _actor_of(data) or "?"
            counts[name] = counts.get(name, 0) + 1
    return counts


async def requeue(client: redis.asyncio.Redis, message_ids: Sequence[str]) -> int:
    """Put dead letters back on their queues; returns how many were requeued."""
    script = client.register_script(REQUEUE_SCRIPT)
    moved = 0
    for queue, pairs in await _locate(client, message_ids):
        for dead_id, data in pairs:
            new_id = str(uuid.uuid4())
            keys = [_dead_set(queue), _dead_messages(queue), f"{NAMESPACE}:{queue}",
                    f"{NAMESPACE}:{queue}.msgs"]  # fmt: skip
            moved += int(await script(keys=keys, args=[dead_id, new_id, _fresh(data, new_id)]))
    return moved


async def discard(client: redis.asyncio.Redis, message_ids: Sequence[str]) -> int:
    """Delete dead letters for good; returns how many were deleted."""
    removed = 0
    ids = list(message_ids)
    if not ids:
        return 0
    for queue in queues():
        async with client.pipeline(transaction=True) as pipe:
            pipe.zrem(_dead_set(queue), *ids)
            pipe.hdel(_dead_messages(queue), *ids)
            removed_from_set, _ = await pipe.execute()
        removed += int(removed_from_set)
    return removed


async def requeue_actor(client: redis.asyncio.Redis, actor: str) -> int:
    return await _each_batch_of(client, actor, requeue)


async def discard_actor(client: redis.asyncio.Redis, actor: str) -> int:
    return await _each_batch_of(client, actor, discard)


async def _each_batch_of(client: redis.asyncio.Redis, actor: str, action: BatchAction) -> int:
    """Apply `action` to every dead letter of `actor`, a batch at a time.

    The ids are collected first: changing a hash while HSCAN walks it may make the scan return
    an element twice, which would be harmless here, but collecting keeps each batch one call.
    """
    done = 0
    for queue in queues():
        ids = [dead_id async for dead_id, data in _scan(client, queue) if _actor_of(data) == actor]
        for start in range(0, len(ids), BATCH):
            done += await action(client, ids[start : start + BATCH])
    return done


async def _scan(client: redis.asyncio.Redis, queue: str) -> AsyncIterator[tuple[str, bytes]]:
    async for dead_id, data in client.hscan_iter(_dead_messages(queue), count=SCAN_COUNT):
        yield _text(dead_id), data


async def _locate(
    client: redis.asyncio.Redis, message_ids: Sequence[str]
) -> list[tuple[str, list[tuple[str, bytes]]]]:
    """The dead letters among `message_ids`, grouped by queue, with their data."""
    ids = list(dict.fromkeys(message_ids))
    located = []
    for queue in queues():
        if not ids:
            break
        pairs = await _fetch(client, queue, ids)
        if pairs:
            located.append((queue, pairs))
            found = {i for i, _ in pairs}
            ids = [i for i in ids if i not in found]
    return located


async def _fetch(
    client: redis.asyncio.Redis, queue: str, ids: list[str]
) -> list[tuple[str, bytes]]:
    """(id, data) of those of `ids` that are dead letters of `queue`."""
    if not ids:
        return []
    datas = cast(list[bytes | None], await client.hmget(_dead_messages(queue), ids))
    return [(i, data) for i, data in zip(ids, datas, strict=True) if data is not None]


async def _dead_letters(
    client: redis.asyncio.Redis, queue: str, pairs: list[tuple[str, bytes]]
) -> list[DeadLetter]:
    if not pairs:
        return []
    scores = await client.zmscore(_dead_set(queue), [dead_id for dead_id, _ in pairs])
    letters = []
    for (dead_id, data), score in zip(pairs, scores, strict=True):
        message = _decode(data)
        if message is not None:
            letters.append(_dead_letter(dead_id, queue, message, score))
    return letters


def _dead_letter(
    dead_id: str, queue: str, message: dramatiq.Message[Any], score: float | None
) -> DeadLetter:
    options = message.options
    traceback = options.get("traceback")
    return DeadLetter(
        message_id=dead_id,
        queue=queue,
        actor=message.actor_name,
        args=list(message.args),
        kwargs=dict(message.kwargs),
        error=_last_line(traceback),
        traceback=traceback,
        failed_at=dt.datetime.fromtimestamp(score / 1000, dt.UTC) if score is not None else None,
        request_id=options.get(REQUEST_ID_OPTION),
        attempts=int(options.get("retries", 0)),
    )


def _fresh(data: bytes, new_id: str) -> bytes:
    """The message to enqueue again: its job as it was, without what its failed run added."""
    message = dramatiq.Message.decode(data)
    options = {k: v for k, v in message.options.items() if k not in RUN_OPTIONS}
    options["redis_message_id"] = new_id
    return dataclasses.replace(message, options=options).encode()


def _decode(data: bytes) -> dramatiq.Message[Any] | None:
    try:
        return dramatiq.Message.decode(data)
    except DecodeError:
        return None


def _actor_of(data: bytes) -> str | None:
    message = _decode(data)
    return message.actor_name if message is not None else None


def _last_line(traceback: str | None) -> str | None:
    if not traceback:
        return None
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
