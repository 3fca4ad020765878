"""Errors a client can cause, raised by services and turned into 4xx problems by the api.

Services stay free of HTTP; each error carries a stable machine-readable `code` that the api puts in
the problem document, so clients branch on `code`, never on wording.
"""

from __future__ import annotations

from typing import Any


class KopilkaError(Exception):
    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class InvalidRequestError(KopilkaError):
    code = "invalid_request"


def invalid_field(field: str, message: str) -> InvalidRequestError:
    """A 400 shaped like the api's own validation errors, so clients read both one way."""
    return InvalidRequestError(
        f"{field}: {message}",
        code="validation_error",
        errors=[{"field": field, "message": message, "source": "body"}],
    )


class UnauthorizedError(KopilkaError):
    code = "unauthorized"


class ForbiddenError(KopilkaError):
    code = "forbidden"


class NotFoundError(KopilkaError):
    code = "not_found"


class ConflictError(KopilkaError):
    code = "conflict"


class UnprocessableError(KopilkaError):
    code = "unprocessable"


class TooManyRequestsError(KopilkaError):
    """The caller must wait `retry_after` seconds before trying again."""

    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class ServiceUnavailableError(KopilkaError):
    code = "service_unavailable"
