"""RuStore's standard response envelope and the error that turns into it.

Every documented answer except the bare Google-like subscription objects and the empty glike
acknowledgement is `{"code", "message", "body", "timestamp"}`; errors carry `body: null` and an
English message taken from the documentation's lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.clock import envelope_time

Json = dict[str, Any]

# Messages quoted from the documentation; reused wherever the same condition comes up.
PURCHASE_NOT_FOUND = "Purchase not found"
FORBIDDEN = "Forbidden"
BAD_REQUEST = "Bad request"
SOMETHING_WENT_WRONG = "Something went wrong"


class ApiError(Exception):
    """A failure with its HTTP status, envelope `code` and message."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message

    @classmethod
    def bad_request(cls, message: str = BAD_REQUEST) -> ApiError:
        return cls(400, "BAD_REQUEST", message)

    @classmethod
    def not_found(cls, message: str = PURCHASE_NOT_FOUND) -> ApiError:
        return cls(404, "NOT_FOUND", message)

    @classmethod
    def forbidden(cls) -> ApiError:
        # UNCERTAIN: the refund page lists "Forbidden" but not its status or code; 403 + ERROR.
        return cls(403, "ERROR", FORBIDDEN)

    @classmethod
    def rejected(cls, message: str) -> ApiError:
        """A call that is well-formed but not allowed in the object's state.

        UNCERTAIN: no source gives the HTTP status of these errors (rustore-api.md §11); the
        envelope code "ERROR" is documented, 400 is our choice.
        """
        return cls(400, "ERROR", message)


def envelope(body: Any, at: datetime, *, code: str = "OK", message: str | None = None) -> Json:
    return {"code": code, "message": message, "body": body, "timestamp": envelope_time(at)}
