"""The worker's event loop: Dramatiq's loop thread runs on uvloop, as the api's does."""

from __future__ import annotations

import asyncio

import uvloop
from dramatiq.asyncio import get_event_loop_thread

from core.queue import AsyncIOOnUvloop, middleware_list


def test_the_worker_runs_its_actors_on_uvloop() -> None:
    (middleware,) = [m for m in middleware_list() if isinstance(m, AsyncIOOnUvloop)]
    middleware.before_worker_boot(None, None)  # type: ignore[arg-type]
    try:
        loop = get_event_loop_thread().loop  # type: ignore[union-attr]
        assert isinstance(loop, uvloop.Loop)
        ran_on = asyncio.run_coroutine_threadsafe(_running_loop(), loop).result(timeout=5)
        assert ran_on is loop
    finally:
        middleware.after_worker_shutdown(None, None)  # type: ignore[arg-type]
        asyncio.set_event_loop_policy(None)


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
