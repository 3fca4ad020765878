"""Dead letters in Dramatiq's Redis layout, with a real worker: a job that fails for good is
listed with its error and traceback, requeued and processed, or discarded, one at a time or all of
one actor's, found with HSCAN/ZSCAN however many there are."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import dramatiq
import pytest
import redis.asyncio

from core.ops import dead_letters
from core.ops.dead_letters import DeadLetter
from core.queue import DIAGNOSTICS_PING, PURCHASE_SYNC, PURCHASE_VERIFY
from tests.fixtures.accounts import Account
from tests.fixtures.platform import send_job
from tests.fixtures.purchases import Records, Shop, invoice_glob

pytestmark = pytest.mark.usefixtures("pipeline_worker")

DEAD_WITHIN = 30


class RecordingRedis(redis.asyncio.Redis):
    """A real client that remembers the name of every command it sends."""

    commands: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return await super().execute_command(*args, **options)


@pytest.fixture
async def broker_redis() -> AsyncIterator[RecordingRedis]:
    client = RecordingRedis.from_url(os.environ["REDIS_URL"])
    client.commands = []
    yield client
    await client.aclose()


async def wait_dead(
    client: redis.asyncio.Redis, predicate: Callable[[DeadLetter], bool], count: int = 1
) -> list[DeadLetter]:
    deadline = time.monotonic() + DEAD_WITHIN
    while True:
        found = [
            d for d in await dead_letters.list_dead_letters(client, limit=1000) if predicate(d)
        ]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {count} dead letters after a wait"
        await asyncio.sleep(0.2)


def with_args(*args: str) -> Callable[[DeadLetter], bool]:
    return lambda letter: letter.args == list(args)


async def test_a_job_that_failed_for_good_is_listed_requeued_and_processed(
    shop: Shop, user_account: Account, records: Records, broker_redis: RecordingRedis
) -> None:
    bought = await shop.buy(user_account, "coins_100")
    purchase = await records.wait_final(bought.payment_id)
    shop.sandbox.control.refund(bought.invoice_id)
    shop.sandbox.control.set_fault(invoice_glob(bought.invoice_id), error_rate=1)

    send_job(
        os.environ["REDIS_URL"],
        PURCHASE_SYNC,
        str(purchase.id),
        max_retries=0,
        request_id="req-dead-letter",
    )
    (letter,) = await wait_dead(broker_redis, with_args(str(purchase.id)))

    assert (letter.actor, letter.queue, letter.request_id) == (
        "purchase.sync",
        "purchases",
        "req-dead-letter",
    )
    assert "Something went wrong" in str(letter.error)
    assert str(letter.traceback).startswith("Traceback")
    assert "core/purchases/pipeline.py" in str(letter.traceback)
    assert letter.failed_at is not None
    assert (await records.purchase(purchase.id)).state == "credited"

    shop.sandbox.control.clear_faults()
    assert await dead_letters.requeue(broker_redis, [letter.message_id]) == 1

    refunded = await records.wait_for(purchase.id, lambda row: row.state == "refunded")
    assert refunded.points_credited == 100
    remaining = await dead_letters.list_dead_letters(broker_redis, actor="purchase.sync")
    assert letter.message_id not in {d.message_id for d in remaining}


async def test_a_discarded_dead_letter_is_gone(broker_redis: RecordingRedis) -> None:
    bogus = f"not-a-purchase-{uuid.uuid4().hex}"
    send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, bogus, max_retries=0)
    (letter,) = await wait_dead(broker_redis, with_args(bogus))
    assert str(letter.error).startswith("ValueError: badly formed")

    assert await dead_letters.discard(broker_redis, [letter.message_id]) == 1
    assert await dead_letters.discard(broker_redis, [letter.message_id]) == 0
    assert await dead_letters.requeue(broker_redis, [letter.message_id]) == 0
    listed = await dead_letters.list_dead_letters(broker_redis, limit=1000)
    assert letter.message_id not in {d.message_id for d in listed}


async def test_two_requeues_of_one_dead_letter_put_it_back_once(
    broker_redis: RecordingRedis,
) -> None:
    bogus = f"not-a-ping-{uuid.uuid4().hex}"
    send_job(os.environ["REDIS_URL"], DIAGNOSTICS_PING, bogus, max_retries=0)
    (letter,) = await wait_dead(broker_redis, with_args(bogus))

    moved = await asyncio.gather(
        dead_letters.requeue(broker_redis, [letter.message_id]),
        dead_letters.requeue(broker_redis, [letter.message_id]),
    )

    assert sorted(moved) == [0, 1]
    # The worker took it again, it failed again, and it is one dead letter again.
    (again,) = await wait_dead(
        broker_redis, lambda d: with_args(bogus)(d) and d.message_id != letter.message_id
    )
    assert (letter.attempts, again.attempts) == (1, 1), "a requeued message counts afresh"


async def test_actor_wide_requeue_and_discard(broker_redis: RecordingRedis) -> None:
    await dead_letters.discard_actor(broker_redis, PURCHASE_SYNC.actor)
    tag = uuid.uuid4().hex
    for n in range(3):
        send_job(os.environ["REDIS_URL"], PURCHASE_SYNC, f"sync-{tag}-{n}", max_retries=0)
        send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, f"verify-{tag}-{n}", max_retries=0)
    mine: Callable[[DeadLetter], bool] = lambda d: tag in str(d.args)  # noqa: E731
    first = await wait_dead(broker_redis, mine, count=6)
    counts = await dead_letters.dead_letter_counts(broker_redis)
    assert counts[PURCHASE_SYNC.actor] == 3

    assert await dead_letters.requeue_actor(broker_redis, PURCHASE_SYNC.actor) == 3

    old_ids = {d.message_id for d in first}
    requeued = await wait_dead(
        broker_redis,
        lambda d: mine(d) and d.actor == PURCHASE_SYNC.actor and d.message_id not in old_ids,
        count=3,
    )
    assert {d.args[0] for d in requeued} == {f"sync-{tag}-{n}" for n in range(3)}
    verifies = [d for d in first if d.actor == PURCHASE_VERIFY.actor]
    assert await dead_letters.discard_actor(broker_redis, PURCHASE_VERIFY.actor) >= 3
    left = await dead_letters.list_dead_letters(broker_redis, limit=1000)
    assert not {d.message_id for d in verifies} & {d.message_id for d in left}
    assert len(await dead_letters.list_dead_letters(broker_redis, actor="purchase.sync")) == 3


async def test_thousands_of_dead_letters_are_walked_with_scan_never_keys(
    broker_redis: RecordingRedis,
) -> None:
    """More than one HSCAN batch, written as Dramatiq's nack writes them (the tests above prove
    that layout against a real worker)."""
    total = 1_200
    actor = "diagnostics.bulk_test"
    queue = DIAGNOSTICS_PING.queue
    now = int(time.time() * 1000)
    async with broker_redis.pipeline(transaction=False) as pipe:
        for n in range(total):
            dead_id = str(uuid.uuid4())
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=queue, actor_name=actor, args=(str(n),), kwargs={},
                options={"redis_message_id": dead_id, "traceback": "Traceback\nValueError: x"},
            )  # fmt: skip
            pipe.zadd(f"dramatiq:{queue}.XQ", {dead_id: now + n})
            pipe.hset(f"dramatiq:{queue}.XQ.msgs", dead_id, message.encode())
        await pipe.execute()
    broker_redis.commands.clear()

    counted = (await dead_letters.dead_letter_counts(broker_redis))[actor]
    listed = await dead_letters.list_dead_letters(broker_redis, actor=actor, limit=total)
    newest = await dead_letters.list_dead_letters(broker_redis, limit=5)
    discarded = await dead_letters.discard_actor(broker_redis, actor)

    assert (counted, len(listed), discarded) == (total, total, total)
    assert [d.args for d in newest] == [[str(n)] for n in range(total - 1, total - 6, -1)]
    assert listed[0].error == "ValueError: x"
    assert actor not in await dead_letters.dead_letter_counts(broker_redis)
    assert "KEYS" not in broker_redis.commands
    assert broker_redis.commands.count("HSCAN") > 3  # several batches per walk
