"""Abuse limits at the edge: client address behind proxies, rate limits, CORS, nesting.

Rate limits are counted in Redis so they hold across api processes: RATE_LIMIT_PER_MINUTE for every
route per client address, and AUTH_RATE_LIMIT_PER_MINUTE, counted separately, for the routes that
take a password (`STRICT_RATE_LIMIT` in their `opt`). /health is never limited, so probes keep
working during an attack; nor is /api/webhooks, because RuStore sends and retries from a few
addresses and a refused notification is a delayed payment. When Redis is unreachable requests
pass unlimited (logged), matching the rule that the api keeps answering while Redis is down.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request
from litestar.config.cors import CORSConfig
from litestar.exceptions import ClientException, TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import CacheObject, RateLimitConfig
from litestar.middleware.rate_limit import RateLimitMiddleware as LitestarRateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.settings import Settings

log = structlog.get_logger(__name__)

STRICT_RATE_LIMIT_OPT = "strict_rate_limit"
STRICT_RATE_LIMIT = {STRICT_RATE_LIMIT_OPT: True}
UNLIMITED_PATHS = ["^/health/", "^/api/webhooks/"]
RATE_LIMIT_STORE = "rate_limit"
STRICT_RATE_LIMIT_STORE = "strict_rate_limit"


class RateLimitMiddleware(LitestarRateLimitMiddleware):
    """Litestar's limiter, plus a Retry-After on its 429 and fail-open when Redis is down."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            if exc.headers and "RateLimit-Reset" in exc.headers:
                exc.headers.setdefault("Retry-After", exc.headers["RateLimit-Reset"])
            raise

    async def retrieve_cached_history(self, key: str, store: Store) -> CacheObject:
        try:
            return await super().retrieve_cached_history(key, store)
        except RedisError as exc:
            log.warning("rate_limit.unavailable", error=str(exc))
            return CacheObject(history=[], reset=0)

    async def set_cached_history(self, key: str, cache_object: CacheObject, store: Store) -> None:
        try:
            await super().set_cached_history(key, cache_object, store)
        except RedisError as exc:
            log.warning("rate_limit.unavailable", error=str(exc))


class ApiRequest(Request[Any, Any, Any]):
    """msgspec refuses JSON nested deeper than the interpreter's recursion limit with a
    RecursionError; that is the client's malformed body, a 400, not a 500."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("JSON is nested too deeply.") from None


def _is_strict(request: Request[Any, Any, Any]) -> bool:
    return bool(request.route_handler.opt.get(STRICT_RATE_LIMIT_OPT))


def rate_limit_stores(redis: Redis) -> dict[str, Store]:
    return {
        RATE_LIMIT_STORE: RedisStore(redis, namespace="kopilka:rate_limit"),
        STRICT_RATE_LIMIT_STORE: RedisStore(redis, namespace="kopilka:strict_rate_limit"),
    }


def edge_middleware(settings: Settings) -> list[DefineMiddleware]:
    """Client address first (the limits key on it), then the general and the strict limit."""
    general = RateLimitConfig(
        rate_limit=("minute", settings.rate_limit_per_minute),
        exclude=UNLIMITED_PATHS,
        store=RATE_LIMIT_STORE,
        middleware_class=RateLimitMiddleware,
    )
    strict = RateLimitConfig(
        rate_limit=("minute", settings.auth_rate_limit_per_minute),
        check_throttle_handler=_is_strict,
        store=STRICT_RATE_LIMIT_STORE,
        middleware_class=RateLimitMiddleware,
    )
    proxies = settings.trusted_proxy_list
    # uvicorn's ASGI types are nominally different from Litestar's; the protocol is the same.
    proxy_headers = DefineMiddleware(ProxyHeadersMiddleware, trusted_hosts=proxies)  # type: ignore[arg-type]
    client_address = [proxy_headers]
    return [*(client_address if proxies else []), general.middleware, strict.middleware]


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS for the allowlisted browser origins only; None (no CORS headers) when there are none."""
    origins = settings.cors_origin_list
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "Prefer",
            "X-Request-ID",
        ],
        expose_headers=["Location", "ETag", "Retry-After", "X-Request-ID", "RateLimit-Remaining"],
        max_age=600,
    )


def client_address(request: Request[Any, Any, Any]) -> str:
    """Dependency `client_address`: the caller's IP, X-Forwarded-For applied when trusted."""
    return request.client.host if request.client else "unknown"
