"""A lean HTTP/1.1 load generator, run as its own process: `python -m bench.load SPEC.json`.

Why our own and not wrk: every scenario needs bodies that differ per request (idempotency keys,
invoice ids) and the webhook scenario needs AES-GCM payloads, which wrk could only produce through
Lua, and then not encrypted. Here requests are rendered before the clock starts: a template may
carry `MARKER`, replaced per request by a fixed-width counter (one `bytes.replace`, Content-Length
unchanged), and pre-encrypted bodies are simply a list. What remains per request is a socket write
and a header parse on uvloop, a few tens of microseconds; the generator reports its own CPU time so
its share of the two cores is visible next to every figure.

Two modes: closed loop (`concurrency` connections, each sends its next request when the last one
is answered) and open loop (`rate` requests per second on a schedule; latency is measured from
the scheduled time, so a stalled server is not hidden by the generator waiting for it).
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec

MARKER = b"@@@@@@@@@@@@"
"""Twelve bytes in a template that become a twelve-digit request counter."""
CONNECT_TIMEOUT = 5.0


class LoadSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to send. `templates` are whole HTTP/1.1 requests (latin-1 text), used round-robin."""

    host: str = "127.0.0.1"
    port: int
    templates: list[str]
    concurrency: int
    duration: float | None = None
    total: int | None = None
    """Stop after this many requests (at most one pass over the templates without a marker)."""
    rate: float | None = None
    warmup: float = 0.0
    counter_start: int = 0
    timeout: float = 30.0


class LoadResult(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    """Answers in the measured window (after the warm-up): what throughput and latency count."""
    answered: int
    """Every answer, the warm-up's included: what a server's CPU time over the run is per."""
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    errors: int
    """Transport failures and answers of 500 or above (4xx are counted in `statuses`)."""
    generator_cpu_seconds: float


def render(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> str:
    """One keep-alive HTTP/1.1 request as a template string."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode("latin-1")


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


class Run:
    """State shared by the connections of one run."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.templates = [t.encode("latin-1") for t in spec.templates]
        self.counter = itertools.count()
        self.started = time.perf_counter()
        self.deadline = self.started + spec.duration if spec.duration else float("inf")
        self.record_from = self.started + spec.warmup
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors = 0
        self.answered = 0
        self.last_done = self.started

    def next_request(self) -> tuple[bytes, float] | None:
        """The next request and when it is due; None when the run is over."""
        index = next(self.counter)
        if self.spec.total is not None and index >= self.spec.total:
            return None
        due = self.started + index / self.spec.rate if self.spec.rate else time.perf_counter()
        if due >= self.deadline:
            return None
        template = self.templates[index % len(self.templates)]
        number = str(self.spec.counter_start + index).zfill(len(MARKER)).encode()
        return template.replace(MARKER, number), due

    def record(self, due: float, status: str) -> None:
        done = time.perf_counter()
        self.last_done = max(self.last_done, done)
        self.answered += 1
        if done >= self.record_from:
            self.latencies.append(done - due)
            self.statuses[status] += 1
            if status == "error" or status >= "500":
                self.errors += 1


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[str, bool]:
    """Send one request, read its answer; (status, server keeps the connection)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head[9:12].decode()
    length, keep = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def _connection(run: Run) -> None:
    spec = run.spec
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (item := run.next_request()) is not None:
        request, due = item
        if spec.rate:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            if streams is None:
                streams = await asyncio.wait_for(
                    asyncio.open_connection(spec.host, spec.port), CONNECT_TIMEOUT
                )
            status, keep = await asyncio.wait_for(_exchange(*streams, request), spec.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            status, keep = "error", False
        run.record(due, status)
        if not keep and streams is not None:
            streams[1].close()
            streams = None
    if streams is not None:
        streams[1].close()


async def generate(spec: LoadSpec) -> LoadResult:
    run = Run(spec)
    await asyncio.gather(*(_connection(run) for _ in range(spec.concurrency)))
    latencies = sorted(run.latencies)
    seconds = max(run.last_done - max(run.record_from, run.started), 1e-9)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return LoadResult(
        requests=len(latencies),
        answered=run.answered,
        seconds=round(seconds, 3),
        throughput=round(len(latencies) / seconds, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p95_ms=round(percentile(latencies, 0.95) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 2),
        statuses=dict(run.statuses),
        errors=run.errors,
        generator_cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
    )


def run_separately(spec: LoadSpec, workdir: Path) -> LoadResult:
    """Run `spec` in a new process (it must not share the event loop or GIL of the harness)."""
    spec_file = workdir / "load-spec.json"
    spec_file.write_bytes(msgspec.json.encode(spec))
    completed = subprocess.run(
        [sys.executable, "-m", "bench.load", str(spec_file)],
        capture_output=True,
        check=True,
        timeout=(spec.duration or 600) + 120,
    )
    return msgspec.json.decode(completed.stdout, type=LoadResult)


def main() -> None:
    spec = msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=LoadSpec)
    try:
        import uvloop  # uvicorn[standard] brings it; the stdlib loop is the fallback
    except ImportError:
        result = asyncio.run(generate(spec))
    else:
        result = uvloop.run(generate(spec))
    sys.stdout.buffer.write(msgspec.json.encode(result))


if __name__ == "__main__":
    main()
