"""The stack a benchmark runs against: the Procfile's processes, each its own OS process, on
the servers `make run` would use (embedded unless DATABASE_URL/REDIS_URL are given), but with a
database and a Redis database of their own, emptied every run so bench data never meets dev or
test data.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from honcho.environ import parse_procfile

from devstack import PROJECT_ROOT, STATE_DIR
from devstack.__main__ import migrate, process_env
from devstack.ports import free_port
from devstack.stack import Stack, database_name, ensure_database, with_database
from sandbox.keys import encode_registered_keys, generate_key_pair, generate_webhook_key

RUN_DIR = STATE_DIR / "bench"
DATABASE_SUFFIX = "_bench"
REDIS_DB = 2  # dev uses 0, tests 1
APP_ID = 7700001
PACKAGE_NAME = "ru.kopilka.app"
READY_TIMEOUT = 60.0
HEARTBEATS = "dramatiq:__heartbeats__"
BENCH_ENV = {
    "LOG_LEVEL": "INFO",  # as deployed: the api's per-request cost includes its logging
    # All load comes from 127.0.0.1; the limits would turn a benchmark into a 429 test.
    "RATE_LIMIT_PER_MINUTE": "100000000",
    "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
    "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000000",
    "ACCESS_TOKEN_TTL_SECONDS": "86400",  # a soak outlives the default 15 minutes
    "SANDBOX_NOTIFY_ENABLED": "false",  # webhook load is its own scenario, not background noise
    "SANDBOX_LOG_LEVEL": "WARNING",
    # Scenarios leave thousands of fake pending purchases behind; the sweeper must not re-send
    # them into the next scenario's worker.
    "PURCHASE_STALE_SECONDS": "86400",
}


@dataclass
class Proc:
    """One started process (and the children it forks: uvicorn and Dramatiq workers)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def pids(self) -> list[int]:
        found, queue = [], [self.popen.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    queue += [int(child) for child in task.read_text().split()]
                except OSError:
                    continue
        return found

    def rss_mb(self) -> float:
        """Resident memory of the largest process in the tree: budgets are per process."""
        return max((_rss_kb(pid) for pid in self.pids()), default=0) / 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the tree so far (children that already exited aside)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)


def cpu_seconds(procs: dict[str, Proc]) -> dict[str, float]:
    """CPU time so far of each process tree, by name."""
    return {name: proc.cpu_seconds() for name, proc in procs.items()}


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Peak RSS per named process while a load runs, sampled every quarter second."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            for name, proc in list(self.procs.items()):
                self.peaks[name] = round(max(self.peaks.get(name, 0.0), proc.rss_mb()), 1)
            if self._stop.wait(0.25):
                return


@dataclass
class BenchStack:
    environ: dict[str, str]
    services: Stack = field(init=False)
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    run_dir: Path = RUN_DIR
    """Where the process logs go (the chaos harness keeps its own)."""
    overrides: dict[str, str] = field(default_factory=dict)
    """Settings laid over BENCH_ENV for every process (the chaos harness's short sweeps)."""

    def __post_init__(self) -> None:
        self.services = Stack(self.environ)
        procfile = parse_procfile((PROJECT_ROOT / "Procfile").read_text())
        self.commands = {
            name: [sys.executable if word == "python" else word for word in shlex.split(line)]
            for name, line in procfile.processes.items()
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def sandbox_url(self) -> str:
        return self.env["RUSTORE_API_URL"]

    def up(self) -> dict[str, str]:
        """Servers, a fresh bench database and Redis database, then sandbox, api, scheduler."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = self.services.up(test=False)
        database_url = with_database(
            env["DATABASE_URL"], database_name(env["DATABASE_URL"]) + DATABASE_SUFFIX
        )
        asyncio.run(ensure_database(database_url, recreate=True))
        redis_url = self.environ.get("REDIS_URL") or self.services.redis.url(REDIS_DB)
        self.env = process_env({**env, **BENCH_ENV, **_keys(), **self.overrides})
        self.env |= {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        self.flush_redis()
        migrate(self.env)
        self.start("sandbox")
        self.start("web")
        self.start("scheduler")
        self.wait_http(f"{self.sandbox_url}/control/health")
        self.wait_http(f"{self.api_url}/health/ready")
        return self.env

    def start(self, name: str, argv: list[str] | None = None, **env: str) -> Proc:
        log_path = self.run_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                argv or self.commands[name],
                cwd=PROJECT_ROOT,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = Proc(name, popen, log_path)
        return self.procs[name]

    def stop(self, name: str) -> None:
        if (proc := self.procs.pop(name, None)) is not None:
            proc.stop()

    def exited(self) -> list[Proc]:
        return [proc for proc in self.procs.values() if proc.popen.poll() is not None]

    def require_running(self) -> None:
        """Fail the scenario when a server exited: a load against it measured only errors."""
        if exited := self.exited():
            names = ", ".join(f"{proc.name} (log: {proc.log_path})" for proc in exited)
            raise RuntimeError(f"exited during the load: {names}")

    def start_worker(self) -> None:
        """The Procfile's worker, ready once Dramatiq's consumer has sent its first heartbeat."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        client.delete(HEARTBEATS)
        proc = self.start("worker")
        self._wait(lambda: bool(client.zcard(HEARTBEATS)), proc, "worker")
        client.close()

    def flush_redis(self) -> None:
        """Empty the bench Redis database: queues left by one scenario must not load the next."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        client.flushdb()
        client.close()

    def sandbox(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A call to the sandbox's control API (faults, purchases), answered as decoded JSON."""
        response = httpx.request(method, f"{self.sandbox_url}/control{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_http(self, url: str) -> None:
        def answers() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(answers, None, url)

    def _wait(self, ready: Any, proc: Proc | None, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            dead = self.exited()
            if dead or time.monotonic() > deadline:
                culprit = dead[0] if dead else proc
                log = f" (log: {culprit.log_path})" if culprit else ""
                raise RuntimeError(f"bench: {what} did not become ready{log}")
            time.sleep(0.1)

    def down(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)
        self.services.down()


def _keys() -> dict[str, str]:
    """A fresh RuStore key pair and webhook keys, wired into both Kopilka and the sandbox."""
    pair = generate_key_pair()
    webhook_key, sandbox_webhook_key = generate_webhook_key(), generate_webhook_key()
    sandbox_port = str(free_port())
    return {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "PORT": str(free_port()),
        "SANDBOX_PORT": sandbox_port,
        "SANDBOX_KEYS": encode_registered_keys({pair.key_id: pair.public_key}),
        "SANDBOX_APP_ID": str(APP_ID),
        "SANDBOX_PACKAGE_NAME": PACKAGE_NAME,
        "SANDBOX_WEBHOOK_KEY": webhook_key,
        "SANDBOX_TEST_WEBHOOK_KEY": sandbox_webhook_key,
        "RUSTORE_API_URL": f"http://127.0.0.1:{sandbox_port}",
        "RUSTORE_KEY_ID": pair.key_id,
        "RUSTORE_PRIVATE_KEY": pair.private_key,
        "RUSTORE_APP_ID": str(APP_ID),
        "RUSTORE_PACKAGE_NAME": PACKAGE_NAME,
        "RUSTORE_WEBHOOK_KEY": webhook_key,
        "RUSTORE_SANDBOX_WEBHOOK_KEY": sandbox_webhook_key,
    }
