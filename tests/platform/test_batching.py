"""core/batching.py: calls made together run as one batch, each caller gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.batching import Batcher


class Recorder:
    """A batch runner that records each batch it is given and answers each item doubled; an
    item of -1 is that item's error, and `hold` keeps every batch running until it is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, items: list[int]) -> Sequence[int | Exception]:
        self.batches.append(items)
        await self.hold.wait()
        return [ValueError(f"item {i}") if i == -1 else 2 * i for i in items]


async def test_calls_made_in_one_turn_run_as_one_batch_and_each_gets_its_answer() -> None:
    run = Recorder()
    batcher: Batcher[int, int] = Batcher(run)

    assert await asyncio.gather(*(batcher(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert run.batches == [[0, 1, 2, 3, 4]]


async def test_a_lone_call_runs_alone() -> None:
    run = Recorder()
    batcher: Batcher[int, int] = Batcher(run)

    assert await batcher(7) == 14
    assert await batcher(8) == 16
    assert run.batches == [[7], [8]]


async def test_calls_made_while_the_batches_in_flight_run_wait_and_go_together() -> None:
    run = Recorder()
    run.hold.clear()
    batcher: Batcher[int, int] = Batcher(run, max_in_flight=1)
    first = asyncio.ensure_future(batcher(1))
    await asyncio.sleep(0.01)  # the first batch is running and held
    later = [asyncio.ensure_future(batcher(i)) for i in (2, 3)]
    await asyncio.sleep(0.01)
    assert run.batches == [[1]]  # the later calls wait for it

    run.hold.set()
    assert await asyncio.gather(first, *later) == [2, 4, 6]
    assert run.batches == [[1], [2, 3]]


async def test_a_batch_holds_at_most_max_size_calls() -> None:
    run = Recorder()
    batcher: Batcher[int, int] = Batcher(run, max_size=2)

    assert await asyncio.gather(*(batcher(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert run.batches == [[0, 1], [2, 3], [4]]


async def test_an_item_s_error_reaches_its_caller_only() -> None:
    run = Recorder()
    batcher: Batcher[int, int] = Batcher(run)

    results = await asyncio.gather(batcher(1), batcher(-1), batcher(3), return_exceptions=True)
    assert results[::2] == [2, 6]
    assert repr(results[1]) == repr(ValueError("item -1"))


async def test_an_error_of_the_whole_batch_reaches_every_caller_and_the_next_batch_runs() -> None:
    async def broken(items: list[int]) -> Sequence[int | Exception]:
        raise ConnectionError("database unreachable")

    batcher: Batcher[int, int] = Batcher(broken)
    results = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    with pytest.raises(ConnectionError):
        await batcher(3)


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    run = Recorder()
    run.hold.clear()
    batcher: Batcher[int, int] = Batcher(run)
    calls = [asyncio.ensure_future(batcher(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    calls[0].cancel()
    run.hold.set()

    assert await calls[1] == 4
    assert calls[0].cancelled()
