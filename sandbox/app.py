"""The Litestar application factory: public API twins, auth, control API, faults, notifications."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException

from sandbox.auth import issue_token, require_token
from sandbox.config import SandboxConfig
from sandbox.control import control_router
from sandbox.envelope import SOMETHING_WENT_WRONG, ApiError, envelope
from sandbox.faults import FaultBook, FaultMiddleware
from sandbox.notifications import Notifier
from sandbox.public import PRODUCTION_ONLY, TWINNED
from sandbox.state import Sandbox, app_sandbox

log = logging.getLogger("sandbox")

_HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND"}


def _error_response(
    request: Request[Any, Any, Any], status: int, code: str, message: str
) -> Response[Any]:
    body = envelope(None, app_sandbox(request.app).clock.now(), code=code, message=message)
    return Response(body, status_code=status)


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return _error_response(request, exc.status_code, exc.code, exc.message)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Routing and validation failures, in the envelope too, so clients see one error shape."""
    message = exc.detail + (f": {json.dumps(exc.extra, default=str)}" if exc.extra else "")
    return _error_response(
        request, exc.status_code, _HTTP_CODES.get(exc.status_code, "ERROR"), message
    )


def _unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(request, 500, "ERROR", SOMETHING_WENT_WRONG)


def _provide(value: object) -> Provide:
    def provider() -> object:
        return value

    return Provide(provider, sync_to_thread=False)


def _public_router(prefix: str, test: bool, handlers: list[Any]) -> Router:
    return Router(
        prefix,
        route_handlers=handlers,
        guards=[require_token],
        dependencies={"test": _provide(test)},
    )


def create_app(config: SandboxConfig) -> Litestar:
    sandbox = Sandbox(config)
    notifier = Notifier(config, sandbox.clock)
    sandbox.subscribe(notifier.on_event)
    faults = FaultBook()

    @contextlib.asynccontextmanager
    async def deliver_notifications(_: Litestar) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=config.notify_timeout_seconds) as client:
            worker = asyncio.create_task(notifier.run(client))
            try:
                yield
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def run_due_transitions(_: Request[Any, Any, Any]) -> None:
        """Scheduled transitions also fall due in real time; apply them before each request.

        A coroutine on purpose: Litestar runs a plain function hook in a worker thread, where it
        would change the state while handlers on the event loop iterate over it.
        """
        sandbox.process_due()

    return Litestar(
        route_handlers=[
            issue_token,
            _public_router("/public", False, [*TWINNED, *PRODUCTION_ONLY]),
            _public_router("/public/sandbox", True, TWINNED),
            control_router,
        ],
        dependencies={
            "sandbox": _provide(sandbox),
            "notifier": _provide(notifier),
            "faults": _provide(faults),
        },
        middleware=[FaultMiddleware(faults, config.hang_seconds)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        before_request=run_due_transitions,
        lifespan=[deliver_notifications],
        state=State({"sandbox": sandbox}),
        openapi_config=None,
        logging_config=None,
    )
