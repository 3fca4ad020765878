"""`GET /metrics`: Prometheus text for the whole api role, plus gauges read at scrape time.

The process series (requests, RuStore calls made by the api) come from every uvicorn process
through prometheus-client's multiprocess files; queue depths, workers alive and the counts by
state are read from Redis and PostgreSQL now, so they are exact and never summed across
processes. The route needs no token and is not rate limited, because Prometheus scrapes it: it is
meant for the ops network, and a proxy facing the internet must not route it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog
from litestar import Controller, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from api.accounts.authentication import PUBLIC
from core import metrics
from core.ops.overview import read_broker
from core.ops.repository import OpsRepository, active_subscriptions

log = structlog.get_logger(__name__)

SOURCE_TIMEOUT_SECONDS = 2.0


class MetricsController(Controller):
    path = "/metrics"
    include_in_schema = False
    opt = PUBLIC

    @get(summary="Prometheus metrics of the api role")
    async def scrape(self, state: State) -> Response[bytes]:
        families: list[Metric] = []
        redis_up = await _gather(families, "redis", _broker_families(state))
        postgres_up = await _gather(families, "postgres", _database_families(state))
        families.append(metrics.source_up_family({"redis": redis_up, "postgres": postgres_up}))
        body = metrics.exposition(metrics.Families(families))
        return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _broker_families(state: State) -> list[Metric]:
    queues, workers = await read_broker(state.redis)
    return metrics.broker_families(queues, len(workers))


async def _database_families(state: State) -> list[Metric]:
    async with state.sessionmaker() as session:
        repository = OpsRepository(session)
        purchases = await repository.purchases_by_state()
        subscriptions = await repository.subscriptions_by_state()
    return metrics.database_families(purchases, subscriptions, active_subscriptions(subscriptions))


async def _gather(
    families: list[Metric], source: str, reading: Coroutine[Any, Any, list[Metric]]
) -> bool:
    """Add what `reading` yields to `families`; False when its source failed or was slow.

    Any failure counts: a scrape must still answer with the process series (and say which
    source is down) whatever Redis or PostgreSQL does.
    """
    try:
        async with asyncio.timeout(SOURCE_TIMEOUT_SECONDS):
            families.extend(await reading)
    except Exception as exc:
        log.warning("metrics.source_failed", source=source, error=f"{type(exc).__name__}: {exc}")
        return False
    return True
