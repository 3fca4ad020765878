"""Running the calls a process makes at about the same time as one batch.

A statement costs PostgreSQL a fixed part (the transaction, its locks on every table and index it
touches, the commit) besides the rows it writes; for the api's usual submission the fixed part is
most of it. Under load many requests make the same call within a millisecond, so sending them
together pays the fixed part once: the same rule as PostgreSQL's own group commit, applied one
level up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

RunBatch = Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]]
"""Runs the items of one batch; one result per item, in order, or the exception that item
raises. An exception the whole call raises is raised to every item's caller."""


class Batcher(Generic[Item, Result]):
    """Calls made while `max_in_flight` batches are running wait, and go together as the next
    batch when one of them ends. Below that, a call starts a batch at the next turn of the event
    loop, taking every call made in the same turn: a lone call waits for nothing, and under load
    the batches grow by themselves, up to `max_size`."""

    def __init__(
        self, run: RunBatch[Item, Result], *, max_size: int = 64, max_in_flight: int = 2
    ) -> None:
        self._run = run
        self.max_size = max_size
        self.max_in_flight = max_in_flight
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._start_scheduled = False

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._schedule_start()
        return await future

    def _schedule_start(self) -> None:
        if self._waiting and not self._start_scheduled and len(self._running) < self.max_in_flight:
            self._start_scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._start_scheduled = False
        batch, self._waiting = self._waiting[: self.max_size], self._waiting[self.max_size :]
        task = asyncio.get_running_loop().create_task(self._complete(batch))
        self._running.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._finished)
        self._schedule_start()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._schedule_start()

    async def _complete(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        except BaseException:  # cancelled with the loop: so are the calls waiting on it
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
