"""The request id: accepted or generated, echoed back, and carried into the jobs it causes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fixtures.accounts import Account
from tests.fixtures.processes import ProcessRunner


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/health/live")
    second = await client.get("/health/live")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_caller_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "app-7.trace:42"})
    assert response.headers["x-request-id"] == "app-7.trace:42"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "ünï"])
async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": bad.encode()})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_request_id_reaches_the_logs_of_the_job_it_enqueued(
    client: httpx.AsyncClient, processes: ProcessRunner, admin_account: Account
) -> None:
    worker = processes.worker(threads=2)
    request_id = "trace-to-worker-1"

    response = await client.post(
        "/api/diagnostics/pings",
        json={"note": "request id"},
        headers={**admin_account.headers, "X-Request-ID": request_id},
    )
    assert response.status_code == 202
    ping = response.json()
    assert ping["requestId"] == request_id

    for _ in range(150):
        ping = (await client.get(ping["statusUrl"], headers=admin_account.headers)).json()
        if ping["status"] == "processed":
            break
        await asyncio.sleep(0.1)
    assert ping["status"] == "processed"

    line = worker.wait_for_log(
        lambda event: (
            event.get("event") == "diagnostics.ping.processed"
            and event.get("ping_id") == ping["id"]
        )
    )
    assert line["request_id"] == request_id
    assert line["actor"] == "diagnostics.ping"
    assert line["ping_id"] == ping["id"]
    assert line["process"] == "worker"
