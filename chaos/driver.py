"""The load side of a scenario, run as its own process: `python -m chaos.driver SPEC OUT`.

It behaves like a well-written app: every request carries its own Idempotency-Key, and a request
that got no answer, a 503, a 429 or a 409 "in progress" is sent again with the same key and body
until it gets a final answer or the deadline passes. What it writes down per request (the first
definite answer, every status seen on the way, how many tries) is the "accepted" side of the
audit's diff. Unlike bench/load.py it keeps each answer's body: the audit needs the purchase ids.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

RETRY_STATUSES = frozenset({409, 429, 502, 503, 504})
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0)


class Request(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    body: dict[str, Any]
    token: str
    key: str
    method: str = "POST"


class DriverSpec(msgspec.Struct, frozen=True, kw_only=True):
    api_url: str
    requests: list[Request]
    concurrency: int = 16
    rate: float | None = None
    """Start requests at this many per second (spreads the load over a fault window)."""
    deadline_seconds: float = 120.0
    timeout_seconds: float = 10.0


class Answer(msgspec.Struct, kw_only=True):
    key: str
    status: int | None = None
    """The final status; None when every try failed until the deadline."""
    body: Any = None
    tries: int = 0
    seen: list[str] = msgspec.field(default_factory=list)
    """Every outcome on the way: a status code or the transport error's name."""
    seconds: float = 0.0


async def _send(client: httpx.AsyncClient, request: Request, deadline: float) -> Answer:
    answer = Answer(key=request.key)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {request.token}", "Idempotency-Key": request.key}
    while time.monotonic() < deadline:
        answer.tries += 1
        try:
            response = await client.request(
                request.method, request.path, json=request.body, headers=headers
            )
        except httpx.HTTPError as exc:
            answer.seen.append(type(exc).__name__)
        else:
            answer.seen.append(str(response.status_code))
            if response.status_code not in RETRY_STATUSES:
                answer.status = response.status_code
                try:
                    answer.body = response.json()
                except ValueError:
                    answer.body = response.text[:200]
                break
        await asyncio.sleep(BACKOFF_SECONDS[min(answer.tries, len(BACKOFF_SECONDS)) - 1])
    answer.seconds = round(time.monotonic() - started, 3)
    return answer


async def drive(spec: DriverSpec) -> list[Answer]:
    gate = asyncio.Semaphore(spec.concurrency)
    start = time.monotonic()
    deadline = start + spec.deadline_seconds
    limits = httpx.Limits(max_connections=spec.concurrency)
    async with httpx.AsyncClient(
        base_url=spec.api_url, timeout=spec.timeout_seconds, limits=limits
    ) as client:

        async def one(index: int, request: Request) -> Answer:
            if spec.rate:
                await asyncio.sleep(max(0.0, start + index / spec.rate - time.monotonic()))
            async with gate:
                return await _send(client, request, deadline)

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(spec.requests))))


def main() -> None:
    spec = msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=DriverSpec)
    answers = asyncio.run(drive(spec))
    Path(sys.argv[2]).write_bytes(msgspec.json.encode(answers))


if __name__ == "__main__":
    main()
