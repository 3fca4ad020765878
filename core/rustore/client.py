"""Async client for RuStore's server-side payments API (rustore-api.md §2-§6).

One `RuStoreClient` owns one httpx connection pool and one token cache; create it once per
process and close it with `aclose()` (or use it as an async context manager).

Every public method makes one logical call, which is:
1. up to `max_attempts` attempts within `retry_budget` seconds, retrying transient failures with
   exponential backoff and full jitter (Retry-After is honoured when it fits in the budget);
2. inside each attempt, one re-authentication if RuStore refuses the token (401/403 or
   "Jwe token is expired"), then the same request once more;
3. a typed result, or one of the errors in `core.rustore.errors`.

Writes (`:confirm`, `:cancel`, refund) are retried inside the client only when the request
certainly had no effect (connection refused, pool timeout, 429, a failed token fetch). After an
ambiguous failure (read timeout, reset, 5xx, garbled 2xx) the error is raised at once with
`ambiguous=True`: repeating a confirm blindly could not double-charge (RuStore answers "Purchase
status must be PAID"), but it would turn a success we did not see into a confusing permanent
error. The worker re-reads the purchase instead, and confirms again only if it is still PAID.

Logs carry the method name, HTTP method, path, status, latency and attempt number, never the
private key, the signature or the token. `observer`, if given, is called once per logical call
(and once per token fetch, as method "auth") with the outcome and latency, for metrics.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from core.rustore.auth import TokenCache
from core.rustore.config import RuStoreConfig
from core.rustore.errors import (
    Outcome,
    RuStoreAuthError,
    RuStoreError,
    RuStoreTransientError,
    classify_api_error,
    classify_auth_error,
    parse_retry_after,
)
from core.rustore.models import (
    AuthToken,
    Envelope,
    InvoiceInfo,
    InvoicePage,
    InvoicePayment,
    SmartPayResult,
    SmartPaySubscription,
    SubscriptionPurchase,
    SubscriptionStateBody,
)
from core.rustore.signing import auth_request_body, load_private_key
from core.rustore.statuses import InvoiceStatus
from core.rustore.transport import AiohttpTransport

T = TypeVar("T")

CallObserver = Callable[[str, Outcome, float], None]
"""`observer(method_name, outcome, latency_seconds)`, called after every logical call."""

logger = structlog.get_logger(__name__)

_AUTH_PATH: Final = "/public/auth"

_ANY_ENVELOPE = msgspec.json.Decoder(Envelope[Any], strict=False)
_AUTH = msgspec.json.Decoder(Envelope[AuthToken], strict=False)
_INVOICE_PAYMENT = msgspec.json.Decoder(Envelope[InvoicePayment], strict=False)
_INVOICE_PAGE = msgspec.json.Decoder(Envelope[InvoicePage], strict=False)
_INVOICE_INFO = msgspec.json.Decoder(Envelope[InvoiceInfo], strict=False)
_SMARTPAY = msgspec.json.Decoder(Envelope[SmartPayResult], strict=False)
_STATE = msgspec.json.Decoder(Envelope[SubscriptionStateBody], strict=False)
_SUBSCRIPTION_ENVELOPE = msgspec.json.Decoder(Envelope[SubscriptionPurchase], strict=False)
_SUBSCRIPTION_BARE = msgspec.json.Decoder(SubscriptionPurchase, strict=False)

Decode = Callable[[httpx.Response], T]

# Failures that happen before the request is written, so RuStore cannot have acted on it (the
# transport, core/rustore/transport.py, raises these only then).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RuStoreClient:
    """Typed access to RuStore's payments API; safe to share between concurrent tasks."""

    def __init__(self, config: RuStoreConfig, *, observer: CallObserver | None = None) -> None:
        self._config = config
        # Loaded on first auth, so that a process that never calls RuStore (or a test stack with a
        # placeholder key) can still build a client; a bad key then fails that call with
        # RuStoreAuthError like any other credential problem.
        self._key: rsa.RSAPrivateKey | None = None
        self._observer = observer
        timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=None,
            pool=config.pool_timeout,
        )
        self._confirm_timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.confirm_read_timeout,
            write=None,
            pool=config.pool_timeout,
        )
        self._http = httpx.AsyncClient(
            base_url=config.api_url,
            timeout=timeout,
            transport=AiohttpTransport(max_connections=config.max_connections),
            headers={"Accept": "application/json", "User-Agent": "kopilka-rustore-client"},
        )
        self._tokens = TokenCache(self._fetch_token, refresh_margin=config.token_refresh_margin)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- Current methods (Pay SDK), §3a ---

    async def get_purchase(self, invoice_id: int | str, *, sandbox: bool = False) -> InvoicePayment:
        """Payment by invoice id, v2 (#1). The sandbox twin shows Pay SDK test payments only."""
        path = _path(sandbox, "v2", "purchase", invoice_id)
        return await self._call("get_purchase", "GET", path, _body_of(_INVOICE_PAYMENT))

    async def list_invoices(
        self,
        invoice_date: date,
        statuses: Iterable[InvoiceStatus | str],
        *,
        page_number: int = 0,
        page_size: int = 20,
    ) -> InvoicePage:
        """One page of our app's payments on `invoice_date` with the given statuses (#2).

        `invoiceStatuses` is repeated once per status. Its case is UNCERTAIN (the OpenAPI enum is
        lowercase, the 2025 docs UPPERCASE): enum members are sent UPPERCASE, strings as given.
        RuStore documents no sandbox twin for this method, so there is no `sandbox` switch.
        """
        query = [("invoiceStatuses", str(status)) for status in statuses]
        if not query:
            raise ValueError("list_invoices needs at least one status")
        query += [
            ("invoiceDate", invoice_date.isoformat()),
            ("pageNumber", str(page_number)),
            ("pageSize", str(page_size)),
        ]
        path = _path(False, "applications", self._config.app_id, "invoices")
        return await self._call(
            "list_invoices",
            "GET",
            path,
            _body_of(_INVOICE_PAGE),
            params=httpx.QueryParams(tuple(query)),
        )

    async def iter_invoices(
        self,
        invoice_date: date,
        statuses: Iterable[InvoiceStatus | str],
        *,
        page_size: int = 20,
    ) -> AsyncIterator[InvoicePayment]:
        """Every payment of `list_invoices`, fetching page after page until `totalPages`."""
        statuses = list(statuses)
        page_number = 0
        while True:
            page = await self.list_invoices(
                invoice_date, statuses, page_number=page_number, page_size=page_size
            )
            for payment in page.content:
                yield payment
            page_number += 1
            if not page.content or page_number >= page.total_pages:
                return

    async def confirm_purchase(self, purchase_id: str, *, sandbox: bool = False) -> None:
        """Confirm a two-stage purchase in PAID (#3); RuStore may take up to 30 s to answer."""
        path = _path(sandbox, "applications", self._config.app_id, "purchases", purchase_id)
        await self._call(
            "confirm_purchase",
            "PUT",
            path + ":confirm",
            _ok,
            request_timeout=self._confirm_timeout,
            idempotent=False,
        )

    async def cancel_purchase(self, purchase_id: str, *, sandbox: bool = False) -> None:
        """Cancel a two-stage purchase in PAID, releasing the hold (#4)."""
        path = _path(sandbox, "applications", self._config.app_id, "purchases", purchase_id)
        await self._call(
            "cancel_purchase",
            "PUT",
            path + ":cancel",
            _ok,
            request_timeout=self._confirm_timeout,
            idempotent=False,
        )

    async def refund_invoice(self, invoice_id: int | str, *, sandbox: bool = False) -> None:
        """Full refund of a CONFIRMED invoice (#5); PATCH with no body."""
        path = _path(sandbox, "applications", self._config.app_id, "invoices", invoice_id)
        await self._call("refund_invoice", "PATCH", path, _ok, idempotent=False)

    async def get_subscription(
        self, subscription_id: str, purchase_id: str, *, sandbox: bool = False
    ) -> SubscriptionPurchase:
        """Pay SDK subscription, v4 (#6): the Google-like object inside the envelope."""
        path = self._subscription_path(sandbox, "v4", subscription_id, purchase_id)
        return await self._call("get_subscription", "GET", path, _body_of(_SUBSCRIPTION_ENVELOPE))

    async def acknowledge_subscription(
        self, subscription_id: str, purchase_id: str, *, sandbox: bool = False
    ) -> None:
        """Acknowledge a Pay SDK subscription, v2 (#7); optional, and repeatable.

        UNCERTAIN: RuStore's page shows no sandbox path; `sandbox=True` uses florencecat's form
        `/public/sandbox/v2/subscription/...:acknowledge`.
        """
        path = self._subscription_path(sandbox, "v2", subscription_id, purchase_id)
        await self._call("acknowledge_subscription", "POST", path + ":acknowledge", _ok)

    # --- Legacy methods (BillingClient SDK, deprecated by RuStore), §3b ---

    async def get_purchase_by_token(
        self, purchase_token: str, *, sandbox: bool = False
    ) -> InvoiceInfo:
        """Payment by purchase token (#8), snake_case InvoiceInfo."""
        path = _path(sandbox, "purchase", purchase_token)
        return await self._call("get_purchase_by_token", "GET", path, _body_of(_INVOICE_INFO))

    async def get_purchase_v1(self, invoice_id: int | str, *, sandbox: bool = False) -> InvoiceInfo:
        """Payment by invoice id, v1 (#9): `GET /public/purchase?invoiceId=`."""
        return await self._call(
            "get_purchase_v1",
            "GET",
            _path(sandbox, "purchase"),
            _body_of(_INVOICE_INFO),
            params=httpx.QueryParams({"invoiceId": str(invoice_id)}),
        )

    async def get_legacy_subscription(
        self, subscription_token: str, *, sandbox: bool = False
    ) -> SmartPaySubscription:
        """SmartPay-style subscription (#10), unwrapped from its doubly nested envelope."""
        path = _path(sandbox, "subscription", subscription_token)
        return await self._call("get_legacy_subscription", "GET", path, _smartpay_body)

    async def get_subscription_state(
        self, subscription_token: str, *, sandbox: bool = False
    ) -> bool:
        """Whether the legacy subscription is active (#11): true in PROMO/START/STANDARD/GRACE."""
        path = _path(sandbox, "subscription", subscription_token, "state")
        state = await self._call("get_subscription_state", "GET", path, _body_of(_STATE))
        return state.is_active

    async def get_subscription_v3(
        self, subscription_id: str, subscription_token: str, *, sandbox: bool = False
    ) -> SubscriptionPurchase:
        """Google-like subscription, v3 (#12): a bare object on success, an envelope on error."""
        path = self._subscription_path(sandbox, "v3", subscription_id, subscription_token)
        return await self._call("get_subscription_v3", "GET", path, _bare_subscription)

    async def get_subscription_glike(
        self, subscription_id: str, subscription_token: str
    ) -> SubscriptionPurchase:
        """Google-like subscription, v2 (#13, "use v3"); bare like v3, no sandbox twin."""
        path = self._subscription_path(False, "glike", subscription_id, subscription_token)
        return await self._call("get_subscription_glike", "GET", path, _bare_subscription)

    async def acknowledge_subscription_glike(
        self, subscription_id: str, subscription_token: str, *, sandbox: bool = False
    ) -> None:
        """Google-like acknowledge (#14); RuStore answers 200 with an empty body."""
        path = self._subscription_path(sandbox, "glike", subscription_id, subscription_token)
        await self._call("acknowledge_subscription_glike", "POST", path + ":acknowledge", _empty_ok)

    # --- Machinery ---

    def _subscription_path(self, sandbox: bool, version: str, product: str, purchase: str) -> str:
        return _path(sandbox, version, "subscription", self._config.package_name, product, purchase)

    async def _call(
        self,
        name: str,
        http_method: str,
        path: str,
        decode: Decode[T],
        *,
        params: httpx.QueryParams | None = None,
        request_timeout: httpx.Timeout | None = None,
        idempotent: bool = True,
    ) -> T:
        config = self._config
        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.max_attempts) | stop_before_delay(config.retry_budget),
            wait=self._backoff,
            retry=retry_if_exception(_retry_predicate(idempotent)),
            reraise=True,
        )
        attempts = itertools.count(1)

        async def attempt() -> T:
            number = next(attempts)

            async def send(token: str) -> httpx.Response:
                return await self._send(
                    name,
                    http_method,
                    path,
                    attempt=number,
                    headers={"Public-Token": token},
                    params=params,
                    request_timeout=request_timeout,
                )

            token = await self._tokens.get()
            response = await send(token)
            if _token_refused(response):
                self._tokens.invalidate(token)
                response = await send(await self._tokens.get())
                if _token_refused(response):
                    code, message = _error_fields(response)
                    raise RuStoreAuthError(
                        f"RuStore refused a fresh token for {name} (HTTP {response.status_code}"
                        f" {message!r}): check that the key is enabled for this app and method",
                        status=response.status_code,
                        code=code,
                        rustore_message=message,
                    )
            if not response.is_success:
                raise _api_error(response)
            return decode(response)

        with self._observed(name):
            result: T = await retrying(attempt)
            return result

    async def _send(
        self,
        name: str,
        http_method: str,
        path: str,
        *,
        attempt: int | None,
        headers: dict[str, str] | None = None,
        params: httpx.QueryParams | None = None,
        json: dict[str, str] | None = None,
        request_timeout: httpx.Timeout | None = None,
        may_act: bool = True,
    ) -> httpx.Response:
        """One HTTP exchange, logged; transport failures become `RuStoreTransientError`.

        `may_act` is False for requests that cannot change anything at RuStore (auth), so their
        failures never count as ambiguous.
        """
        log = logger.bind(rustore_method=name, http_method=http_method, path=path, attempt=attempt)
        started = time.perf_counter()
        try:
            response = await self._http.request(
                http_method,
                path,
                headers=headers,
                params=params,
                json=json,
                timeout=request_timeout
                if request_timeout is not None
                else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.RequestError as exc:
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            log.warning("rustore.request_failed", error=type(exc).__name__, latency_ms=latency_ms)
            raise RuStoreTransientError(
                f"RuStore {name}: {type(exc).__name__} {exc}".rstrip(),
                ambiguous=may_act and not isinstance(exc, _NOT_SENT),
            ) from exc
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        # A successful call is on the purchase's timeline and in the metrics already: only a
        # failed one needs a line at the default level (WARNING); DEBUG shows every call.
        log_event = log.debug if response.is_success else log.warning
        log_event("rustore.request", status=response.status_code, latency_ms=latency_ms)
        return response

    async def _fetch_token(self) -> tuple[str, float]:
        """`POST /public/auth` with a freshly signed body; errors say what to fix."""
        with self._observed("auth"):
            if self._key is None:
                self._key = load_private_key(self._config.private_key)
            body = auth_request_body(self._key, self._config.key_id)
            response = await self._send(
                "auth",
                "POST",
                _AUTH_PATH,
                attempt=None,
                json=body,
                may_act=False,
            )
            if not response.is_success:
                code, message = _error_fields(response)
                raise classify_auth_error(
                    response.status_code, code, message, skew_seconds=_clock_skew(response)
                )
            try:
                envelope = _AUTH.decode(response.content)
            except msgspec.DecodeError as exc:
                raise RuStoreTransientError(
                    f"RuStore auth answered HTTP {response.status_code} with a malformed body:"
                    f" {exc}",
                    status=response.status_code,
                    ambiguous=False,
                ) from None
            if not envelope.ok:
                raise classify_auth_error(
                    response.status_code,
                    envelope.code,
                    envelope.message,
                    skew_seconds=_clock_skew(response),
                )
            if envelope.body is None or not envelope.body.jwe:
                raise RuStoreAuthError(
                    "RuStore auth answered OK without body.jwe: the key may have been removed"
                    " from the Console",
                    status=response.status_code,
                    code=envelope.code,
                    rustore_message=envelope.message,
                )
            logger.info("rustore.token_refreshed", ttl=envelope.body.ttl)
            return envelope.body.jwe, float(envelope.body.ttl)

    def _backoff(self, state: RetryCallState) -> float:
        """Exponential backoff with full jitter, stretched to a Retry-After RuStore sent."""
        config = self._config
        pause = wait_random_exponential(multiplier=config.backoff_initial, max=config.backoff_max)(
            state
        )
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, RuStoreTransientError) and failure.retry_after is not None:
            # If this exceeds the remaining budget, stop_before_delay gives up and the caller
            # sees `retry_after` on the error.
            return max(pause, failure.retry_after)
        return pause

    @contextlib.contextmanager
    def _observed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        outcome: Outcome = "error"
        try:
            yield
            outcome = "ok"
        except RuStoreError as exc:
            outcome = exc.outcome
            raise
        finally:
            if self._observer is not None:
                try:
                    self._observer(name, outcome, time.perf_counter() - started)
                except Exception:
                    logger.exception("rustore.observer_failed", rustore_method=name)


def _path(sandbox: bool, *parts: str | int) -> str:
    """`/public[/sandbox]/part/part...`, each part percent-encoded as one path segment.

    Ids come from mobile clients, so `/`, `?`, `#`, `:` or a dot segment must not change the route.
    Action suffixes (`:confirm`) are appended by the caller, unescaped, as RuStore requires.
    """
    segments = []
    for part in parts:
        text = str(part)
        if text in ("", ".", ".."):  # would address another route after URL normalisation
            raise ValueError(f"RuStore path parameter {text!r} is not a valid id")
        segments.append(quote(text, safe=""))
    prefix = "/public/sandbox/" if sandbox else "/public/"
    return prefix + "/".join(segments)


def _retry_predicate(idempotent: bool) -> Callable[[BaseException], bool]:
    def should_retry(exc: BaseException) -> bool:
        return isinstance(exc, RuStoreTransientError) and (idempotent or not exc.ambiguous)

    return should_retry


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None]:
    """The envelope `code` and `message` of an error answer, or a text excerpt if not JSON."""
    try:
        envelope = _ANY_ENVELOPE.decode(response.content)
    except msgspec.DecodeError:
        excerpt = response.text[:200].strip()
        return None, excerpt or None
    return envelope.code, envelope.message


def _token_refused(response: httpx.Response) -> bool:
    """RuStore refused our token: 401/403, or its "Jwe token is expired" with any status."""
    if response.status_code in (401, 403):
        return True
    if response.is_success:
        return False
    _, message = _error_fields(response)
    return "jwe token" in (message or "").lower()


def _api_error(response: httpx.Response) -> RuStoreError:
    code, message = _error_fields(response)
    return classify_api_error(
        response.status_code,
        code,
        message,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _clock_skew(response: httpx.Response) -> float | None:
    """Seconds our clock is ahead of RuStore's, from the error envelope's timestamp."""
    try:
        envelope = _ANY_ENVELOPE.decode(response.content)
        if envelope.timestamp is None:
            return None
        theirs = datetime.fromisoformat(envelope.timestamp)
    except (msgspec.DecodeError, ValueError):
        return None
    if theirs.tzinfo is None:
        return None
    return (datetime.now(UTC) - theirs).total_seconds()


def _malformed(response: httpx.Response, reason: str) -> RuStoreTransientError:
    """A 2xx answer we cannot read. Treated as transient: RuStore or a proxy garbled it, and a
    later read of the same object usually succeeds. The job queue bounds how long we keep trying.
    """
    return RuStoreTransientError(
        f"RuStore answered HTTP {response.status_code} with a malformed body: {reason}",
        status=response.status_code,
        ambiguous=True,
    )


def _envelope(decoder: msgspec.json.Decoder[Envelope[T]], response: httpx.Response) -> T | None:
    """Decode a 2xx envelope, raising the classified error when its code is not OK."""
    try:
        envelope = decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        raise _malformed(response, str(exc)) from None
    if not envelope.ok:
        raise classify_api_error(response.status_code, envelope.code, envelope.message)
    return envelope.body


def _body_of(decoder: msgspec.json.Decoder[Envelope[T]]) -> Decode[T]:
    """Decoder for methods whose OK envelope must carry a body."""

    def decode(response: httpx.Response) -> T:
        body = _envelope(decoder, response)
        if body is None:
            raise _malformed(response, "code OK without a body")
        return body

    return decode


def _ok(response: httpx.Response) -> None:
    """Decoder for actions answered with an OK envelope whose body (`{}` or null) means nothing."""
    _envelope(_ANY_ENVELOPE, response)


def _empty_ok(response: httpx.Response) -> None:
    """Decoder for the glike acknowledge: documented as an empty 200; refuse only an error
    envelope, since any other 2xx body still means RuStore accepted it."""
    if not response.content.strip():
        return
    with contextlib.suppress(msgspec.DecodeError):
        envelope = _ANY_ENVELOPE.decode(response.content)
        if not envelope.ok:
            raise classify_api_error(response.status_code, envelope.code, envelope.message)


def _bare_subscription(response: httpx.Response) -> SubscriptionPurchase:
    """Decoder for v2/v3 subscriptions: a bare object on success, an envelope on error."""
    try:
        return _SUBSCRIPTION_BARE.decode(response.content)
    except msgspec.DecodeError as exc:
        reason = str(exc)
    with contextlib.suppress(msgspec.DecodeError):
        envelope = _ANY_ENVELOPE.decode(response.content)
        if not envelope.ok:
            raise classify_api_error(response.status_code, envelope.code, envelope.message)
    raise _malformed(response, reason)


def _smartpay_body(response: httpx.Response) -> SmartPaySubscription:
    """Decoder for the legacy subscription: outer envelope, then `{code, success, message, body}`.

    The inner body wins when present (the doc's example pairs a full body with code 40401);
    without it, the inner message decides the error.
    """
    result = _body_of(_SMARTPAY)(response)
    if result.body is not None:
        return result.body
    code = None if result.code is None else str(result.code)
    message = result.message or "legacy subscription answer without a body"
    raise classify_api_error(response.status_code, code, message)
