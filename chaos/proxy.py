"""A TCP fault proxy between a Kopilka process and a server it calls (the RuStore sandbox; the
database in a test), switched at run time.

The sandbox's own fault modes answer at the HTTP layer; a network fault needs something between
the two processes. Workers are started with `RUSTORE_API_URL` pointing here; every connection is
relayed to the sandbox unless the mode says otherwise:

- `pass`: relay both ways;
- `delay`: hold each chunk `delay_ms` before relaying it (a slow link);
- `drop`: accept, read and never answer (a black hole: the client's read timeout fires);
- `reset`: accept and abort with a TCP RST at once (the client sees a connection reset).

Switching the mode also cuts the connections already open, so a keep-alive pool cannot hide it.
It runs its own event loop in a daemon thread of the harness process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from typing import Literal

from devstack.ports import free_port

Mode = Literal["pass", "delay", "drop", "reset"]
CHUNK = 65536


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode: Mode = "pass"
        self.delay_ms = 0
        self.connections: Counter[str] = Counter()
        """Connections accepted, by the mode they met: evidence that the fault was hit."""
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def set_mode(self, mode: Mode, delay_ms: int = 0) -> None:
        """Switch the mode for new connections and cut the open ones; returns once applied, so
        the caller's next request meets the new mode."""
        applied = threading.Event()

        def switch() -> None:
            self.mode, self.delay_ms = mode, delay_ms
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            applied.set()

        self._loop.call_soon_threadsafe(switch)
        applied.wait(5)

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            # A connection that closed as the loop stopped leaves its task one step from done;
            # finish every task here rather than leave them to be destroyed pending.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        self.connections[mode] += 1
        if mode == "reset":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if mode == "drop":
            with contextlib.suppress(OSError, ConnectionError):
                while await reader.read(CHUNK):
                    pass
            writer.transport.abort()
            self._writers.discard(writer)
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(target_writer)
        await asyncio.gather(
            self._pipe(reader, target_writer),
            self._pipe(target_reader, writer),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                if self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()
