"""Abuse limits at the edge: client address behind proxies, rate limits, CORS, nesting.

Rate limits are counted in Redis so they hold across api processes: RATE_LIMIT_PER_MINUTE for every
route per client address, and AUTH_RATE_LIMIT_PER_MINUTE, counted separately, for the routes that
take a password (`STRICT_RATE_LIMIT` in their `opt`). /health is never limited, so probes keep
working during an attack; nor is /api/webhooks, because RuStore sends and retries from a few
addresses and a refused notification is a delayed payment, nor /metrics, which Prometheus scrapes
from the ops network. When Redis is unreachable requests pass unlimited (logged), matching the
rule that the api keeps answering while Redis is down.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from litestar import Request
from litestar.config.cors import CORSConfig
from litestar.exceptions import ClientException, TooManyRequestsException, ValidationException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import DURATION_VALUES, CacheObject, RateLimitConfig
from litestar.middleware.rate_limit import RateLimitMiddleware as LitestarRateLimitMiddleware
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.batching import Batcher
from core.settings import Settings

log = structlog.get_logger(__name__)

STRICT_RATE_LIMIT_OPT = "strict_rate_limit"
STRICT_RATE_LIMIT = {STRICT_RATE_LIMIT_OPT: True}
UNLIMITED_PATHS = ["^/health/", "^/api/webhooks/", "^/metrics$"]
# Each limit's name, which prefixes its counters' Redis keys.
RATE_LIMIT_STORE = "rate_limit"
STRICT_RATE_LIMIT_STORE = "strict_rate_limit"

COUNT_IN_WINDOWS = """
local windows = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCRBY', key, ARGV[2 * i])
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
        redis.call('EXPIRE', key, ARGV[2 * i - 1])
        ttl = tonumber(ARGV[2 * i - 1])
    end
    windows[i] = {count, ttl}
end
return windows
"""
"""Count requests in their clients' windows, opening a window (its expiry) with its first count:
for each key, ARGV holds the window's length and how many requests to add. One script is one
round trip and one command to parse, where a MULTI of the same steps is five per key. A key
without an expiry (ttl -1) gets one too, so no window can outlive its unit. (Several keys in one
script suit one Redis server, not a cluster, whose keys live on different nodes.)"""


class WindowCounter:
    """Each request's number in its client's window, counted in Redis so that it holds across
    api processes. The requests of one batch (core/batching.py: those made at about the same
    time) are counted in one script call, a client's several requests with one INCRBY; each
    still gets its own number, as if counted one by one. One per process."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(COUNT_IN_WINDOWS)
        self._batcher: Batcher[tuple[str, int], tuple[int, int]] = Batcher(self._count_all)

    async def count(self, key: str, duration: int) -> tuple[int, int]:
        """(this request's number in the window, the seconds the window has left); raises
        RedisError when Redis cannot count."""
        return await self._batcher((key, duration))

    async def _count_all(self, requests: list[tuple[str, int]]) -> list[tuple[int, int]]:
        added = Counter(requests)
        replies = await self._script(
            keys=[key for key, _ in added],
            args=[value for (_, duration), n in added.items() for value in (duration, n)],
        )
        windows = {
            request: (int(count), int(ttl))
            for request, (count, ttl) in zip(added, replies, strict=True)
        }
        numbered: Counter[tuple[str, int]] = Counter()
        counts = []
        for request in requests:
            count, ttl = windows[request]
            counts.append((count - added[request] + 1 + numbered[request], ttl))
            numbered[request] += 1
        return counts


class RateLimitMiddleware(LitestarRateLimitMiddleware):
    """Litestar's limiter (its config, exclusions, throttle check and headers), counting in
    Redis with `WindowCounter`, with a Retry-After on its 429 and fail-open when Redis is down.

    Litestar's own reads the client's history, appends to it and writes it back under a
    per-process lock: two round trips that serialize every request of the process behind one
    another, and a count that two processes can overwrite. A fixed window counted with INCR is
    exact across processes and waits on nothing. The window opens with the client's first request
    and lasts one `unit`, as in Litestar's.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["litestar_app"]
        request: Request[Any, Any, Any] = app.request_class(scope)
        if await self.should_check_request(request=request):
            window = await self._count(app.state.window_counter, self._key(request))
            if window.count > self.max_requests:
                headers = self.create_response_headers(cache_object=window)
                headers["Retry-After"] = headers[self.config.rate_limit_reset_header_key]
                raise TooManyRequestsException(headers=headers)
            if self.config.set_rate_limit_headers:
                send = self.create_send_wrapper(send=send, cache_object=window)
        await self.app(scope, receive, send)

    def _key(self, request: Request[Any, Any, Any]) -> str:
        return f"kopilka:{self.config.store}:{self.get_identifier_for_request(request)}"

    async def _count(self, counter: WindowCounter, key: str) -> Window:
        """This request's number in the client's window, and when the window closes."""
        duration = DURATION_VALUES[self.unit]
        now = int(time.time())
        try:
            count, ttl = await counter.count(key, duration)
        except RedisError as exc:
            log.warning("rate_limit.unavailable", error=str(exc))
            return Window(history=[], reset=now + duration, count=0)
        return Window(history=[], reset=now + max(ttl, 1), count=count)

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        count = getattr(cache_object, "count", len(cache_object.history))
        return {
            self.config.rate_limit_policy_header_key: (
                f"{self.max_requests}; w={DURATION_VALUES[self.unit]}"
            ),
            self.config.rate_limit_limit_header_key: str(self.max_requests),
            self.config.rate_limit_remaining_header_key: str(max(self.max_requests - count, 0)),
            self.config.rate_limit_reset_header_key: str(
                max(cache_object.reset - int(time.time()), 0)
            ),
        }


@dataclass
class Window(CacheObject):
    """Litestar's cache object (what its header helpers take) with the window's count instead
    of a history list, which at a high limit would hold one entry per request."""

    count: int = 0


class ApiRequest(Request[Any, Any, Any]):
    """msgspec refuses JSON nested deeper than the interpreter's recursion limit with a
    RecursionError; that is the client's malformed body, a 400, not a 500.

    A JSON body must also match its route's `data` type exactly: Litestar converts it in msgspec's
    lax mode, which is meant for query strings and takes `"5"` for 5 and `0` for false, so the
    body is first checked in strict mode, as the OpenAPI schema describes it (tests/fuzz)."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            raise ClientException("JSON is nested too deeply.") from None
        route_handler = self.scope.get("route_handler")
        if route_handler is not None and (data_field := route_handler.parsed_data_field):
            _check_strictly(value, data_field.annotation)
        return value


def _check_strictly(value: Any, data_type: Any) -> None:
    try:
        msgspec.convert(value, data_type, strict=True)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$")
        key = path.rstrip("`").lstrip(".") or None
        raise ValidationException(
            f"{key or 'body'}: {message}",
            extra=[{"key": key, "message": message, "source": "body"}],
        ) from None


async def _is_strict(request: Request[Any, Any, Any]) -> bool:
    """Async although it awaits nothing: Litestar runs a sync throttle check in its thread pool,
    a thread hand-off on every request of every route, about a tenth of the api's CPU."""
    return bool(request.route_handler.opt.get(STRICT_RATE_LIMIT_OPT))


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
