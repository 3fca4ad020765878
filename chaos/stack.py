"""The stack the harness breaks: bench's `BenchStack` (the Procfile's processes, each its own OS
process) on embedded PostgreSQL and Redis that belong to the harness alone, plus the fault
controls: signals to api, worker and scheduler, Redis stopped, killed or frozen, PostgreSQL
restarted in immediate mode, and the fault proxy in front of the sandbox.

DATABASE_URL and REDIS_URL are ignored on purpose: the harness restarts and kills its servers,
which it may only do to servers it started itself, never to a shared one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from bench.stack import BenchStack, Proc
from chaos.proxy import FaultProxy
from core.queue import ALL_JOBS
from devstack import STATE_DIR
from devstack.postgres import EmbeddedPostgres
from devstack.redis import EmbeddedRedis
from devstack.stack import Stack

CHAOS_DIR = STATE_DIR / "chaos"
SHARED_SERVER_VARIABLES = ("DATABASE_URL", "REDIS_URL")
CHAOS_ENV = {
    # Safety nets on a short fuse, so a scenario sees them work within seconds, not minutes.
    "PURCHASE_SWEEP_INTERVAL": "2",
    "NOTIFICATION_SWEEP_INTERVAL": "2",
    "PURCHASE_STALE_SECONDS": "8",
    "RUSTORE_TIMEOUT": "3",
    "SANDBOX_HANG_SECONDS": "20",
    "DATABASE_POOL_TIMEOUT": "3",
    "REDIS_TIMEOUT": "1",
}
READY_TIMEOUT = 60.0
READY_LINE = b"ready for action"


class ChaosStack:
    """Owns its servers (under `data_dir`) and every process; knows how to break each of them."""

    def __init__(self, environ: dict[str, str], data_dir: Path = CHAOS_DIR) -> None:
        self.ignored = [name for name in SHARED_SERVER_VARIABLES if environ.get(name)]
        own = {k: v for k, v in environ.items() if k not in SHARED_SERVER_VARIABLES}
        self.data_dir = data_dir
        self.postgres = EmbeddedPostgres(data_dir / "postgres")
        self.redis = EmbeddedRedis(data_dir / "redis")
        self.bench = BenchStack(own, run_dir=data_dir / "logs", overrides=dict(CHAOS_ENV))
        self.bench.services = Stack(own, postgres=self.postgres, redis=self.redis)
        self.proxy: FaultProxy | None = None
        self.current: dict[str, str] = {}
        """Role (web, scheduler, sandbox) → the name of its live process."""
        self.workers: list[str] = []
        self._generation = 0
        self._redis_port: int | None = None

    # --- life cycle -----------------------------------------------------------------------------

    def up(self, workers: int = 1) -> None:
        log_dir = self.bench.run_dir
        if log_dir.exists():
            for old in log_dir.glob("*.log"):
                old.unlink()
        self.bench.up()
        self._redis_port = self.redis.port
        self.current = {"sandbox": "sandbox", "web": "web", "scheduler": "scheduler"}
        self.proxy = FaultProxy(int(self.env["SANDBOX_PORT"]))
        self.proxy.start()
        for _ in range(workers):
            self.start_worker()

    def down(self) -> None:
        for proc in list(self.bench.procs.values()):
            _resume(proc)
        self.bench.down()
        if self.proxy is not None:
            self.proxy.stop()
        # Ours, whether this run started them or a crashed run left them behind.
        self.redis.stop()
        self.postgres.stop()

    @property
    def env(self) -> dict[str, str]:
        return self.bench.env

    @property
    def api_url(self) -> str:
        return self.bench.api_url

    @property
    def log_dir(self) -> Path:
        return self.bench.run_dir

    def proc(self, role: str) -> Proc:
        return self.bench.procs[self.current[role]]

    # --- processes ------------------------------------------------------------------------------

    def start_worker(self, failpoints: str | None = None, **env: str) -> Proc:
        """A Procfile worker whose RuStore calls go through the fault proxy, once it is ready."""
        assert self.proxy is not None
        extra = {"RUSTORE_API_URL": self.proxy.url, **env}
        if failpoints:
            extra["KOPILKA_FAILPOINTS"] = failpoints
        proc = self._launch("worker", **extra)
        self.workers.append(proc.name)
        _wait_for(lambda: READY_LINE in proc.log_path.read_bytes(), proc, "worker")
        return proc

    def stop_workers(self) -> None:
        for name in self.workers:
            self.bench.stop(name)
        self.workers.clear()

    def kill_worker(self, sig: int = signal.SIGKILL) -> Proc | None:
        """SIGKILL the oldest live worker's whole process group (no cleanup, no ack)."""
        if not self.workers:
            return None
        name = self.workers.pop(0)
        proc = self.bench.procs.pop(name)
        signal_group(proc, sig)
        proc.popen.wait(20)
        return proc

    def freeze_workers(self, frozen: bool) -> None:
        """SIGSTOP (or SIGCONT) every worker: messages stay taken but unprocessed."""
        for name in self.workers:
            signal_group(self.bench.procs[name], signal.SIGSTOP if frozen else signal.SIGCONT)

    def reap(self, proc: Proc, timeout: float = 30) -> int | None:
        """Wait for a worker to die by itself (at a failpoint); its exit status, None if alive."""
        try:
            code = proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.bench.procs.pop(proc.name, None)
        if proc.name in self.workers:
            self.workers.remove(proc.name)
        return code

    def requeue_unacked(self, dead_for: float = 5.0) -> int:
        """Run Dramatiq's own maintenance, treating workers silent for `dead_for` seconds as dead
        (live ones beat every second): their taken-but-unacked messages go back on the queues.
        Dramatiq does the same by itself, by chance, once a heartbeat is a minute old; this saves
        the scenario that minute. Waits `dead_for` first, so a worker that died just now counts.
        Returns how many messages are queued afterwards."""
        time.sleep(dead_for)
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            client=self.redis_client(),
            heartbeat_timeout=int(dead_for * 1000),
            maintenance_chance=MAINTENANCE_SCALE,
        )
        try:
            queues = {name for job in ALL_JOBS for name in (job.queue, f"{job.queue}.DQ")}
            return sum(int(broker.do_qsize(queue)) for queue in sorted(queues))
        finally:
            broker.close()

    def restart(self, role: str, sig: int = signal.SIGKILL, **env: str) -> Proc:
        """Kill the api or the scheduler with `sig` and start a new one in its place."""
        old = self.bench.procs.pop(self.current[role])
        signal_group(old, sig)
        old.popen.wait(20)
        return self.start(role, **env)

    def start(self, role: str, **env: str) -> Proc:
        proc = self._launch(role, **env)
        self.current[role] = proc.name
        if role == "web":
            self.bench.wait_http(f"{self.api_url}/health/live")
        return proc

    def start_extra(self, role: str, **env: str) -> Proc:
        """One more process of `role` beside the current one (a second scheduler, say)."""
        return self._launch(role, **env)

    def pause(self, role: str) -> None:
        signal_group(self.proc(role), signal.SIGSTOP)

    def resume(self, role: str) -> None:
        signal_group(self.proc(role), signal.SIGCONT)

    def _launch(self, role: str, **env: str) -> Proc:
        self._generation += 1
        return self.bench.start(f"{role}-{self._generation}", self.bench.commands[role], **env)

    # --- servers --------------------------------------------------------------------------------

    def redis_stop(self) -> None:
        self.redis.stop()

    def redis_kill(self) -> None:
        self.redis.kill()

    def redis_start(self) -> None:
        self.redis.start(port=self._redis_port)

    def redis_freeze(self, frozen: bool) -> None:
        """SIGSTOP/SIGCONT the server: connections open, nothing answered."""
        pid = self.redis.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"], socket_timeout=5)

    def postgres_restart(self) -> None:
        self.postgres.restart("immediate")

    # --- the sandbox and the logs ---------------------------------------------------------------

    def sandbox(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.bench.sandbox(method, path, body)

    def events(self, prefix: str) -> Iterator[dict[str, Any]]:
        """JSON log lines of every process whose name starts with `prefix`, old ones included."""
        for path in sorted(self.log_dir.glob(f"{prefix}*.log")):
            for line in path.read_bytes().splitlines():
                if line.startswith(b"{"):
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue


def signal_group(proc: Proc, sig: int) -> None:
    """Signal the process and the children it forked (uvicorn's and Dramatiq's)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, sig)


def _resume(proc: Proc) -> None:
    if proc.popen.poll() is None:
        signal_group(proc, signal.SIGCONT)


def _wait_for(ready: Callable[[], bool], proc: Proc, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            tail = proc.log_path.read_text(errors="replace").splitlines()[-10:]
            print("\n".join(tail), file=sys.stderr)
            raise RuntimeError(f"chaos: {what} did not become ready (log: {proc.log_path})")
        time.sleep(0.1)
