"""/metrics of the api, the worker and the scheduler, read with prometheus-client's own parser:
every named series is there, and each moves when the work it counts happens (a purchase through
the api and a real worker, a job retried, a job failing for good, a scheduler run)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import msgspec
import pytest

from api.app import create_app
from api.request_context import RequestContext
from core.queue import DIAGNOSTICS_PING, create_broker
from core.settings import Settings
from devstack.ports import free_port
from tests.fixtures.accounts import Account
from tests.fixtures.metrics import Scrape
from tests.fixtures.platform import serve
from tests.fixtures.processes import ProcessRunner
from tests.fixtures.purchases import Records, Shop, invoice_glob, start_worker

API_FAMILIES = {
    "kopilka_http_requests",
    "kopilka_http_request_duration_seconds",
    "kopilka_queue_messages",
    "kopilka_queue_oldest_message_age_seconds",
    "kopilka_workers_alive",
    "kopilka_purchases",
    "kopilka_subscriptions",
    "kopilka_subscriptions_active",
    "kopilka_scrape_source_up",
}
WORKER_FAMILIES = {
    "kopilka_jobs",
    "kopilka_job_retries",
    "kopilka_job_duration_seconds",
    "kopilka_jobs_in_progress",
    "kopilka_payments",
    "kopilka_rustore_calls",
    "kopilka_rustore_call_duration_seconds",
}
MOVES_WITHIN = 40.0


@pytest.fixture(scope="module")
def worker_metrics_url(module_processes: ProcessRunner) -> str:
    """A worker (one Dramatiq process and the fork that serves its role's metrics)."""
    port = free_port()
    start_worker(module_processes, env={"WORKER_METRICS_PORT": str(port)})
    return f"http://127.0.0.1:{port}/metrics"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def scrape_until(
    http: httpx.AsyncClient, url: str, condition: Callable[[Scrape], bool]
) -> Scrape:
    """Scrape until `condition` holds (the worker writes its figures after the job returns)."""
    deadline = time.monotonic() + MOVES_WITHIN
    while True:
        try:
            scrape = await Scrape.of(http, url)
        except httpx.TransportError:
            scrape = None  # the fork that serves it starts after the workers are ready
        if scrape is not None and condition(scrape):
            return scrape
        assert time.monotonic() < deadline, f"{url}: condition not met in {MOVES_WITHIN}s"
        await asyncio.sleep(0.2)


def send_ping(ping_id: str, **options: Any) -> None:
    broker = create_broker(os.environ["REDIS_URL"], socket_timeout=2)
    try:
        broker.enqueue(
            dramatiq.Message(
                queue_name=DIAGNOSTICS_PING.queue,
                actor_name=DIAGNOSTICS_PING.actor,
                args=(ping_id,),
                kwargs={},
                options=options,
            )
        )
    finally:
        broker.close()


async def test_api_metrics_name_every_series_by_route_template(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    unknown = uuid.uuid4()
    assert (await client.get(f"/api/payments/{unknown}", headers=user_account.headers)).is_error
    assert (await client.get(f"/api/payments/{unknown}")).status_code == 401
    assert (await client.get(f"/no-such-route/{unknown}")).status_code == 404

    scrape = await Scrape.of(client, "/metrics")  # no token: it is for the ops network

    assert scrape.families >= API_FAMILIES | WORKER_FAMILIES
    routes = scrape.label_values("kopilka_http_requests_total", "route")
    assert {"/api/payments/{payment_id}", "(unmatched)"} <= routes
    assert not any(str(unknown) in route for route in routes)
    assert scrape.value("kopilka_http_requests_total", method="GET", status="401") >= 1
    assert scrape.value("kopilka_scrape_source_up", source="redis") == 1
    assert scrape.value("kopilka_scrape_source_up", source="postgres") == 1
    assert scrape.label_values("kopilka_queue_messages", "queue") >= {"purchases", "diagnostics"}
    assert scrape.label_values("kopilka_queue_messages", "state") == {
        "ready",
        "in_progress",
        "delayed",
        "dead",
    }
    assert scrape.label_values("kopilka_purchases", "state") >= {"pending", "credited", "failed"}


async def test_metrics_is_never_rate_limited(settings: Settings) -> None:
    limited = msgspec.structs.replace(
        settings, rate_limit_per_minute=2, trusted_proxies="127.0.0.1"
    )
    address = str(ipaddress.IPv4Address(0x0A000000 | random.getrandbits(24)))
    async with (
        serve(RequestContext(create_app(limited))) as url,
        httpx.AsyncClient(base_url=url, headers={"X-Forwarded-For": address}) as client,
    ):
        scrapes = [(await client.get("/metrics")).status_code for _ in range(5)]
        others = [(await client.get("/api/products")).status_code for _ in range(3)]

    assert scrapes == [200] * 5
    assert others[-1] == 429  # the same client is limited everywhere else


async def test_series_move_when_a_purchase_is_processed(
    client: httpx.AsyncClient,
    http: httpx.AsyncClient,
    shop: Shop,
    user_account: Account,
    records: Records,
    worker_metrics_url: str,
) -> None:
    worker_before = await scrape_until(http, worker_metrics_url, lambda _: True)
    api_before = await Scrape.of(client, "/metrics")

    bought = await shop.buy(user_account, "coins_100")
    assert bought.response.status_code == 202
    assert (await records.wait_final(bought.payment_id)).state == "credited"

    worker = await scrape_until(
        http,
        worker_metrics_url,
        lambda scrape: (
            scrape.since(worker_before, "kopilka_jobs_total", actor="purchase.verify") > 0
        ),
    )
    api = await Scrape.of(client, "/metrics")

    verify_job = {"actor": "purchase.verify"}
    assert worker.since(worker_before, "kopilka_jobs_total", **verify_job, outcome="success") >= 1
    assert worker.since(worker_before, "kopilka_job_duration_seconds_count", **verify_job) >= 1
    read = {"method": "get_purchase"}
    assert worker.since(worker_before, "kopilka_rustore_calls_total", **read, outcome="ok") >= 1
    assert worker.since(worker_before, "kopilka_rustore_call_duration_seconds_count", **read) >= 1
    credited = {"outcome": "succeeded", "state": "credited"}
    assert worker.since(worker_before, "kopilka_payments_total", **credited) >= 1
    assert worker.value("kopilka_jobs_in_progress", actor="purchase.verify") == 0
    verify = {"method": "POST", "route": "/api/payments/verify", "status": "202"}
    assert api.since(api_before, "kopilka_http_requests_total", **verify) == 1
    assert api.since(api_before, "kopilka_http_request_duration_seconds_count", **verify) == 1
    assert api.since(api_before, "kopilka_purchases", state="credited") >= 1
    assert api.value("kopilka_workers_alive") >= 1


async def test_a_retried_job_and_a_failed_one_are_counted(
    client: httpx.AsyncClient,
    http: httpx.AsyncClient,
    shop: Shop,
    user_account: Account,
    records: Records,
    worker_metrics_url: str,
) -> None:
    worker_before = await scrape_until(http, worker_metrics_url, lambda _: True)
    api_before = await Scrape.of(client, "/metrics")
    created = await shop.pay_in_rustore(user_account, "coins_100")
    # More 503s than the RuStore client's own attempts, so the job itself retries once.
    shop.sandbox.control.set_fault(invoice_glob(created["invoiceId"]), error_rate=1, times=5)
    response = await shop.report_created(user_account, created)
    send_ping("not-a-ping-id", max_retries=0)  # fails at once, for good

    assert (await records.wait_final(response.json()["id"], within=MOVES_WITHIN)).state == (
        "credited"
    )

    def counted(scrape: Scrape, actor: str, outcome: str) -> float:
        return scrape.since(worker_before, "kopilka_jobs_total", actor=actor, outcome=outcome)

    worker = await scrape_until(
        http,
        worker_metrics_url,
        lambda scrape: (
            counted(scrape, "diagnostics.ping", "failed") >= 1
            and counted(scrape, "purchase.verify", "success") >= 1
        ),
    )
    assert counted(worker, "purchase.verify", "retry") >= 1
    assert worker.since(worker_before, "kopilka_job_retries_total", actor="purchase.verify") >= 1
    transient = {"method": "get_purchase", "outcome": "transient"}
    assert worker.since(worker_before, "kopilka_rustore_calls_total", **transient) >= 1
    api = await Scrape.of(client, "/metrics")
    dead = {"queue": "diagnostics", "state": "dead"}
    assert api.since(api_before, "kopilka_queue_messages", **dead) >= 1


async def test_the_scheduler_serves_its_runs(
    processes: ProcessRunner, http: httpx.AsyncClient
) -> None:
    port = free_port()
    scheduler = processes.start(
        "scheduler",
        sys.executable,
        "-m",
        "workers.scheduler",
        env={"SCHEDULER_METRICS_PORT": str(port)},
    )
    scheduler.wait_for_log(lambda event: event.get("event") == "scheduler.job.ran")

    scrape = await scrape_until(
        http,
        f"http://127.0.0.1:{port}/metrics",
        lambda scrape: scrape.value("kopilka_scheduled_runs_total", outcome="success") >= 1,
    )

    assert {"kopilka_scheduled_runs", "kopilka_scheduled_run_duration_seconds"} <= scrape.families
    assert scrape.value("kopilka_scheduled_run_duration_seconds_count") >= 1


async def test_one_scrape_sums_every_api_process(
    processes: ProcessRunner, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Two uvicorn processes write the role's files in one directory, emptied at start; a scrape
    answered by either one counts the requests both served."""
    metrics_dir = tmp_path / "api-metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")
    port = free_port()
    api = processes.start(
        "api",
        sys.executable,
        "-m",
        "api",
        env={
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        },
    )
    url = f"http://127.0.0.1:{port}"
    await scrape_until(http, f"{url}/metrics", lambda _: True)
    assert not (metrics_dir / "counter_1.db").exists()

    requests = 60
    async with asyncio.TaskGroup() as group:
        for _ in range(requests):  # a connection each, so both processes take some
            group.create_task(_get_once(f"{url}/health/live"))

    pids = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, f"one process served every request: {pids}"
    for _ in range(6):
        scrape = await Scrape.of(http, f"{url}/metrics")
        served = {"route": "/health/live", "status": "200"}
        assert scrape.value("kopilka_http_requests_total", **served) == requests
    api.stop()


async def _get_once(url: str) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 200
