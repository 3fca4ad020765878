"""The activity writer against a real Redis: counts made from many threads at once all arrive,
summed into a few pipelined writes instead of one per count."""

from __future__ import annotations

import os
import threading
import time
import uuid

import redis

from core.ops.activity import Operation, RedisWriter

THREADS = 8
PER_THREAD = 500
FIELDS = ("purchase.verify|success", "get_purchase|calls")
TTL = 120


class CountingWriter(RedisWriter):
    """Counts the round trips the writer thread makes."""

    writes = 0

    def _write(self, batch: list[Operation]) -> None:
        self.writes += 1
        super()._write(batch)


def test_a_burst_of_counts_from_many_threads_is_summed_into_a_few_writes() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    key = f"kopilka:test-activity:{uuid.uuid4().hex}"
    writer = CountingWriter(client)

    def count() -> None:
        for _ in range(PER_THREAD):
            for field in FIELDS:
                writer.increment(key, field, TTL)

    threads = [threading.Thread(target=count) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = {field.encode(): str(THREADS * PER_THREAD).encode() for field in FIELDS}
    deadline = time.monotonic() + 10
    while client.hgetall(key) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert client.hgetall(key) == expected
        assert 0 < client.ttl(key) <= TTL
        # 8,000 increments; one write per linger interval while they were being made.
        assert writer.writes <= 10
    finally:
        client.delete(key)
        client.close()
