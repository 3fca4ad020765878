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


class ServiceUnavailableError(KopilkaError):
    code = "service_unavailable"
