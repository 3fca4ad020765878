"""Request id and access log for every HTTP request, matched route or not.

It wraps the whole Litestar app rather than sitting in its middleware list because Litestar runs
route middleware only for matched routes, and a 404 or 405 needs its id, log line and count in
/metrics too; so do the 401 and 429 answers of the auth and rate-limit middleware, whose errors
leave that middleware as exceptions before any status is known inside it.
"""

from __future__ import annotations

import time

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from core import metrics
from core.logging import is_valid_request_id, new_request_id

REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED_ROUTE = "(unmatched)"

log = structlog.get_logger("api.access")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        request_id = _incoming_request_id(scope) or new_request_id()
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER
                ]
                message["headers"] = [*headers, (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                duration = time.perf_counter() - started
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                )
                # The route template, not the path: ids in paths would make a series per id.
                route = scope.get("path_template") or UNMATCHED_ROUTE
                metrics.observe_request(scope["method"], route, status, duration)


def _incoming_request_id(scope: HTTPScope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            return candidate if is_valid_request_id(candidate) else None
    return None
