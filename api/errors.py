"""One error format for every error: RFC 9457 problem details plus a stable `code`.

Litestar raises its own HTTP exceptions for routing, validation, rate limits and body size;
services raise `core.errors` types. Both, and anything unexpected, leave as
`application/problem+json` with the same fields, so a client parses errors one way.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core import errors
from core.logging import current_request_id

log = structlog.get_logger(__name__)

PROBLEM_TYPE_PREFIX = "urn:kopilka:problem:"

STATUS_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}

DOMAIN_STATUSES: dict[type[errors.KopilkaError], int] = {
    errors.InvalidRequestError: 400,
    errors.UnauthorizedError: 401,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.UnprocessableError: 422,
    errors.TooManyRequestsError: 429,
    errors.ServiceUnavailableError: 503,
}

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemDocument(msgspec.Struct, frozen=True, rename="camel"):
    """The shape of every error response, for the OpenAPI schema (`Problem` builds them)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problems a route can answer, so clients see them in the schema."""
    return {
        status: ResponseSpec(
            ProblemDocument,
            description=f"{HTTPStatus(status).phrase} (problem details, `code` says why)",
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


class Problem(ProblemDetailsException):
    """A problem document with the fields every Kopilka error carries."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            status_code=status,
            detail=detail,
            title=HTTPStatus(status).phrase,
            type_=PROBLEM_TYPE_PREFIX + code,
            headers=headers,
            extra={"code": code, **(extra or {})},
        )

    def to_response(self, request: Request[Any, Any, Any]) -> Any:
        self.instance = request.url.path
        if isinstance(self.extra, dict) and (request_id := current_request_id()):
            self.extra["requestId"] = request_id
        return super().to_response(request)


def _from_http_exception(exc: HTTPException) -> Problem:
    status = exc.status_code
    code = STATUS_CODES.get(status, "client_error" if status < 500 else "server_error")
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        extra["errors"] = [_field_error(item) for item in exc.extra]
        code = "validation_error"
        if extra["errors"]:
            first = extra["errors"][0]
            detail = f"{first['field'] or 'body'}: {first['message']}"
    elif isinstance(exc.extra, dict):
        extra.update(exc.extra)
    if status >= 500:
        detail = HTTPStatus(status).phrase
    return Problem(status, code, detail, headers=exc.headers, extra=extra)


def _field_error(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return {
            "field": item.get("key"),
            "message": item.get("message"),
            "source": item.get("source"),
        }
    return {"field": None, "message": str(item), "source": None}


def _from_domain_error(exc: errors.KopilkaError) -> Problem:
    status = next(s for cls, s in DOMAIN_STATUSES.items() if isinstance(exc, cls))
    return Problem(status, exc.code, exc.detail, headers=_domain_headers(exc), extra=exc.extra)


def _domain_headers(exc: errors.KopilkaError) -> dict[str, str] | None:
    if isinstance(exc, errors.TooManyRequestsError):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, errors.UnauthorizedError):
        return {"WWW-Authenticate": "Bearer"}  # RFC 9110: a 401 names the scheme to use
    return None


def _from_unexpected(exc: Exception) -> Problem:
    log.error("unhandled_exception", exc_info=exc)
    return Problem(500, "internal_error", "The server could not complete the request.")


OUTAGE_SQLSTATES = ("08", "53", "57P", "55P03", "57014")
"""Connection failures, exhausted server resources, shutdown/restart, lock and statement timeouts:
the database, not the request, is at fault, and the same request can succeed a moment later."""
OUTAGE_RETRY_AFTER = "1"


NUL_IN_TEXT_SQLSTATE = "22021"
"""character_not_in_repertoire: PostgreSQL text cannot hold U+0000, and only a client sends one."""


def _from_database_error(exc: Exception) -> Problem:
    """503 when the database is unreachable, saturated or a lock wait ran out; a 400 for a NUL
    character in a client's text, which PostgreSQL refuses wherever it appears; else a 500.

    Failing fast with 503 (pool timeout, lock_timeout) instead of queueing requests is what lets
    the api recover by itself once the database does; nothing was committed, so a retry is safe.
    """
    if _sqlstate(exc) == NUL_IN_TEXT_SQLSTATE:
        return Problem(400, "invalid_characters", "Text must not contain NUL (\\u0000) characters.")
    if not _is_database_outage(exc):
        return _from_unexpected(exc)
    log.warning("database.unavailable", error_type=type(exc).__name__, error=str(exc)[:300])
    return Problem(
        503,
        "service_unavailable",
        "The database is briefly unavailable; retry shortly.",
        headers={"Retry-After": OUTAGE_RETRY_AFTER},
    )


def _is_database_outage(exc: Exception) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = _sqlstate(exc)
    return sqlstate is not None and sqlstate.startswith(OUTAGE_SQLSTATES)


def _sqlstate(exc: Exception) -> str | None:
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                HTTPException: _from_http_exception,
                errors.KopilkaError: _from_domain_error,
                # asyncpg raises connect failures (refused, timed out) unwrapped.
                ConnectionError: _from_database_error,
                TimeoutError: _from_database_error,
                SQLAlchemyError: _from_database_error,
                asyncpg.PostgresError: _from_database_error,
                Exception: _from_unexpected,
            }
        )
    )
