"""Kopilka's Prometheus series (`kopilka_*`), each defined once and shared by every process.

Counters and histograms are written where the work happens (the api's request wrapper, the
workers' job middleware, the RuStore client's observer, the purchase pipeline). With several
processes per role they live in prometheus-client's multiprocess files (`core.ops.multiprocess`
sets the directory up before this module is imported), and `role_registry` reads all of a role's
files, so one scrape answers for every uvicorn or Dramatiq process.

Figures that describe shared state rather than one process's work (queue depths, purchases by
state, workers alive) are not kept here at all: the api's /metrics reads them from Redis and
PostgreSQL at scrape time and renders them with `state_families`, so they are never stale and
never summed across processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from core.ops.overview import QueueStats

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HTTP_REQUESTS = Counter(
    "kopilka_http_requests",
    "HTTP requests the api answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "kopilka_http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its answer.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
JOBS = Counter(
    "kopilka_jobs",
    "Job executions by actor and outcome: success, retry (failed, sent again later) or failed"
    " (failed for good, dead-lettered).",
    ["actor", "outcome"],
)
JOB_RETRIES = Counter(
    "kopilka_job_retries",
    "Job executions that were a retry of an earlier failed execution.",
    ["actor"],
)
JOB_DURATION = Histogram(
    "kopilka_job_duration_seconds",
    "Time one job execution took, whatever its outcome.",
    ["actor"],
    buckets=JOB_BUCKETS,
)
JOBS_IN_PROGRESS = Gauge(
    "kopilka_jobs_in_progress",
    "Job executions running now.",
    ["actor"],
    multiprocess_mode="livesum",
)
PAYMENTS = Counter(
    "kopilka_payments",
    "Purchases the pipeline brought to a final state: outcome succeeded (state credited) or"
    " failed (state rejected or failed).",
    ["outcome", "state"],
)
RUSTORE_CALLS = Counter(
    "kopilka_rustore_calls",
    "Logical RuStore API calls (retries inside one call included) by method and outcome.",
    ["method", "outcome"],
)
RUSTORE_CALL_DURATION = Histogram(
    "kopilka_rustore_call_duration_seconds",
    "Time one logical RuStore API call took, its retries included.",
    ["method", "outcome"],
    buckets=LATENCY_BUCKETS,
)

SCHEDULED_RUNS = Counter(
    "kopilka_scheduled_runs",
    "Runs of the scheduler's jobs by job and outcome: success, error or missed.",
    ["job", "outcome"],
)
SCHEDULED_RUN_DURATION = Histogram(
    "kopilka_scheduled_run_duration_seconds",
    "Time one run of a scheduler job took.",
    ["job"],
    buckets=JOB_BUCKETS,
)

SUCCEEDED_STATES = frozenset({"credited"})
FAILED_STATES = frozenset({"rejected", "failed"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_REQUEST_DURATION.labels(*labels).observe(seconds)


def observe_rustore_call(method: str, outcome: str, seconds: float) -> None:
    RUSTORE_CALLS.labels(method, outcome).inc()
    RUSTORE_CALL_DURATION.labels(method, outcome).observe(seconds)


def count_payment(state: str) -> None:
    """Count a purchase that just reached `state`, if that state ends a payment."""
    if state in SUCCEEDED_STATES:
        PAYMENTS.labels("succeeded", state).inc()
    elif state in FAILED_STATES:
        PAYMENTS.labels("failed", state).inc()


def is_multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def role_registry() -> CollectorRegistry:
    """Every process of this role in multiprocess mode; this process's own registry otherwise."""
    if not is_multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(*extra: Collector) -> bytes:
    """The text format of the role's series followed by `extra` (families computed now)."""
    output = generate_latest(role_registry())
    if extra:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extra:
            registry.register(collector)
        output += generate_latest(registry)
    return output


def serve(host: str, port: int) -> None:
    """Answer scrapes of the role's series on host:port from a daemon thread."""
    start_http_server(port, addr=host, registry=role_registry())


def mark_process_dead() -> None:
    """Drop this process's live gauges from the role's figures; call it as the process exits."""
    if is_multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class Families(Collector):
    """Already computed families, as a collector for `exposition`."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def broker_families(queues: Sequence[QueueStats], workers_alive: int) -> list[Metric]:
    """Gauges of the broker's state in Redis, read at scrape time."""
    messages = GaugeMetricFamily(
        "kopilka_queue_messages",
        "Messages per queue: ready (waiting in Redis), in_progress (taken by a worker, not yet"
        " acknowledged), delayed (waiting for a retry's backoff) and dead (dead-lettered).",
        labels=["queue", "state"],
    )
    oldest = GaugeMetricFamily(
        "kopilka_queue_oldest_message_age_seconds",
        "Age since its first send of the oldest message waiting in the queue (0 when none).",
        labels=["queue"],
    )
    for queue in queues:
        for state, count in (
            ("ready", queue.ready),
            ("in_progress", queue.in_progress),
            ("delayed", queue.delayed),
            ("dead", queue.dead),
        ):
            messages.add_metric([queue.name, state], count)
        oldest.add_metric([queue.name], queue.oldest_age_seconds or 0.0)
    workers = GaugeMetricFamily(
        "kopilka_workers_alive",
        "Worker processes whose broker heartbeat is younger than Dramatiq's timeout.",
        value=workers_alive,
    )
    return [messages, oldest, workers]


def database_families(
    purchases_by_state: Mapping[str, int],
    subscriptions_by_state: Mapping[str, int],
    active_subscriptions: int,
) -> list[Metric]:
    """Gauges of PostgreSQL's state, read at scrape time."""
    purchases = GaugeMetricFamily("kopilka_purchases", "Purchases by state.", labels=["state"])
    for state, count in sorted(purchases_by_state.items()):
        purchases.add_metric([state], count)
    subscriptions = GaugeMetricFamily(
        "kopilka_subscriptions",
        "Subscriptions by state: RuStore status once verified, else the verification step.",
        labels=["state"],
    )
    for state, count in sorted(subscriptions_by_state.items()):
        subscriptions.add_metric([state], count)
    active = GaugeMetricFamily(
        "kopilka_subscriptions_active",
        "Subscriptions that grant access now (active, grace, or cancelled before the end of the"
        " paid period).",
        value=active_subscriptions,
    )
    return [purchases, subscriptions, active]


def source_up_family(sources: Mapping[str, bool]) -> Metric:
    """Whether each source of the scrape-time gauges answered; its gauges are absent if not."""
    family = GaugeMetricFamily(
        "kopilka_scrape_source_up",
        "1 when the source of scrape-time gauges (redis, postgres) answered this scrape.",
        labels=["source"],
    )
    for source, up in sorted(sources.items()):
        family.add_metric([source], 1.0 if up else 0.0)
    return family
