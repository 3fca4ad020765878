"""Errors the RuStore client raises, sorted by what a worker should do about them.

* `RuStoreTransientError`: try again later (timeouts, resets, 5xx, 429, a 2xx body we cannot
  decode). The client already retried briefly; the job queue retries on its own schedule.
* `RuStoreNotFound`: RuStore does not know the purchase/invoice/subscription. A subclass of
  `RuStorePermanentError`, so `except RuStorePermanentError` covers it; catch it first to treat it
  differently (e.g. a sandbox purchase looked up on the production path).
* `RuStorePermanentError`: RuStore understood and refused ("Purchase status must be PAID",
  "Invoice has already been refunded", other 4xx). Retrying the same call will not help; re-read
  the state and reconcile.
* `RuStoreAuthError`: our key, key scope or clock is wrong. Retrying helps only once an operator
  fixes the configuration or the clock, so jobs should back off and an alert should fire.

Every error carries RuStore's own `message`, the HTTP `status` and the envelope `code` when known.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Literal

Outcome = Literal["ok", "transient", "not_found", "permanent", "auth", "error"]
"""How a call ended, for metrics; "error" means an unexpected exception (a bug or cancellation)."""


class RuStoreError(Exception):
    """Base class for every failed call to the RuStore API."""

    outcome: ClassVar[Outcome] = "permanent"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        rustore_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        """HTTP status of the answer, None when no answer arrived."""
        self.code = code
        """Envelope `code` ("ERROR", "BAD_REQUEST", "NOT_FOUND"), None when there was none."""
        self.rustore_message = rustore_message
        """RuStore's `message` verbatim, e.g. "Purchase status must be PAID"."""


class RuStoreTransientError(RuStoreError):
    """The call may succeed if repeated later."""

    outcome: ClassVar[Outcome] = "transient"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        rustore_message: str | None = None,
        ambiguous: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, rustore_message=rustore_message)
        self.ambiguous = ambiguous
        """True when RuStore may have acted on the request (the answer was lost or garbled).

        For a write (confirm/cancel/refund) the caller must re-read the state before repeating it.
        False when the request certainly had no effect (connection refused, 429).
        """
        self.retry_after = retry_after
        """Seconds RuStore asked us to wait (Retry-After), when it said so."""


class RuStorePermanentError(RuStoreError):
    """RuStore refused the request for a business reason; repeating it will not help."""

    outcome: ClassVar[Outcome] = "permanent"


class RuStoreNotFound(RuStorePermanentError):
    """RuStore does not know the requested object (HTTP 404, code NOT_FOUND, "... not found")."""

    outcome: ClassVar[Outcome] = "not_found"


class RuStoreAuthError(RuStoreError):
    """Authentication or authorisation failed: wrong key, key scope, or clock skew."""

    outcome: ClassVar[Outcome] = "auth"


class WebhookError(Exception):
    """A server notification that must be refused (the API answers 400 so RuStore resends)."""


class WebhookDecryptError(WebhookError):
    """The payload is not valid base64, too short, or fails AES-GCM authentication or JSON."""


class WebhookFormatError(WebhookError):
    """The notification decrypted but its JSON does not have the documented shape."""


class UnknownNotificationTypeError(WebhookFormatError):
    """`notification_type` is not one RuStore documents; `notification_type` holds the raw value."""

    def __init__(self, notification_type: str) -> None:
        super().__init__(f"unknown RuStore notification_type {notification_type!r}")
        self.notification_type = notification_type


_TRANSIENT_STATUSES = frozenset({408, 425, 429})

# Business messages that say "not now" rather than "never" (refund-purchase page, §6).
_TRANSIENT_MESSAGES = ("try again later", "something went wrong")

# Auth-page errors (§2) with the action an operator should take.
_AUTH_HINTS = {
    "range timestamp not valid": (
        "clock skew: our timestamp is more than 60 s away from RuStore's clock; "
        "synchronise this host's clock (NTP)"
    ),
    "signature encode error": "the signature was rejected: the private key does not match keyId",
    "company key not found": "keyId is unknown to RuStore: check the key id from the Console",
    "company key disabled": "the key was deleted in the Console: generate a new one",
}


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in _TRANSIENT_STATUSES


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given either as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def classify_api_error(
    status: int,
    code: str | None,
    message: str | None,
    *,
    retry_after: float | None = None,
) -> RuStoreError:
    """Turn a failed API answer (non-2xx, or 2xx with code != OK) into the error to raise.

    The HTTP status decides first where it is unambiguous (5xx/429 retry, 401/403 auth); the
    envelope `code` and `message` decide the rest, because RuStore documents messages, not the
    status codes of its business errors (rustore-api.md §11).
    """
    text = message or ""
    lowered = text.lower()
    summary = f"RuStore answered HTTP {status}" + (f" {code}" if code else "") + f": {text!r}"
    if is_transient_status(status):
        return RuStoreTransientError(
            summary,
            status=status,
            code=code,
            rustore_message=message,
            ambiguous=status != 429,
            retry_after=retry_after,
        )
    if any(hint in lowered for hint in _TRANSIENT_MESSAGES):
        return RuStoreTransientError(summary, status=status, code=code, rustore_message=message)
    error_class: type[RuStoreError] = RuStorePermanentError
    if status in (401, 403) or "jwe token" in lowered:
        error_class = RuStoreAuthError
        summary += " (check the key's apps and methods)"
    elif status == 404 or (code or "").upper() == "NOT_FOUND" or "not found" in lowered:
        error_class = RuStoreNotFound
    return error_class(summary, status=status, code=code, rustore_message=message)


def classify_auth_error(
    status: int,
    code: str | None,
    message: str | None,
    *,
    skew_seconds: float | None = None,
) -> RuStoreError:
    """Turn a failed `POST /public/auth` answer into the error to raise.

    Anything but a server-side hiccup is an `RuStoreAuthError`, with a hint naming the likely
    cause; for "Range timestamp not valid" it adds the measured clock difference when known.
    """
    if is_transient_status(status):
        return RuStoreTransientError(
            f"RuStore auth answered HTTP {status}: {message!r}",
            status=status,
            code=code,
            rustore_message=message,
            ambiguous=False,
        )
    hint = _AUTH_HINTS.get((message or "").strip().lower(), "authentication refused")
    if skew_seconds is not None and "clock skew" in hint:
        direction = "ahead of" if skew_seconds > 0 else "behind"
        hint += f"; this host is about {abs(skew_seconds):.0f} s {direction} RuStore"
    return RuStoreAuthError(
        f"RuStore auth failed ({hint}): HTTP {status} {message!r}",
        status=status,
        code=code,
        rustore_message=message,
    )
