"""Error classification, the token cache's timing, and the config's guard rails."""

from __future__ import annotations

import asyncio

import pytest

from core.rustore import (
    RuStoreAuthError,
    RuStoreConfig,
    RuStoreError,
    RuStoreNotFound,
    RuStorePermanentError,
    RuStoreTransientError,
)
from core.rustore.auth import TokenCache
from core.rustore.errors import classify_api_error, classify_auth_error, parse_retry_after


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (500, "ERROR", "Internal error", RuStoreTransientError),
        (502, None, "<html>", RuStoreTransientError),
        (429, None, None, RuStoreTransientError),
        (400, "ERROR", "Cannot refund now. Try again later", RuStoreTransientError),
        (400, "ERROR", "Something went wrong", RuStoreTransientError),
        (404, "NOT_FOUND", "Purchase not found", RuStoreNotFound),
        (400, "ERROR", "Purchase not found", RuStoreNotFound),
        (200, "NOT_FOUND", None, RuStoreNotFound),
        (400, "ERROR", "Purchase status must be PAID", RuStorePermanentError),
        (400, "ERROR", "Invoice has already been refunded", RuStorePermanentError),
        (400, "ERROR", "Invoice status must be CONFIRMED", RuStorePermanentError),
        (400, "BAD_REQUEST", "Bad request", RuStorePermanentError),
        (200, "ERROR", "Jwe token is expired", RuStoreAuthError),
        (403, "ERROR", "Forbidden", RuStoreAuthError),
    ],
)
def test_api_error_classification(
    status: int, code: str | None, message: str | None, expected: type[RuStoreError]
) -> None:
    error = classify_api_error(status, code, message)

    assert type(error) is expected
    assert (error.status, error.code, error.rustore_message) == (status, code, message)
    if message:
        assert message in str(error)


def test_not_found_is_a_permanent_error_with_its_own_outcome() -> None:
    error = classify_api_error(404, "NOT_FOUND", "Purchase not found")

    assert isinstance(error, RuStorePermanentError)
    assert error.outcome == "not_found"


def test_429_is_not_ambiguous_but_5xx_is() -> None:
    rate_limited = classify_api_error(429, None, None, retry_after=3)
    failed = classify_api_error(503, None, None)

    assert isinstance(rate_limited, RuStoreTransientError)
    assert not rate_limited.ambiguous
    assert rate_limited.retry_after == 3
    assert isinstance(failed, RuStoreTransientError)
    assert failed.ambiguous


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("Range timestamp not valid", "clock skew"),
        ("Signature encode error", "private key does not match"),
        ("Company key not found", "keyId is unknown"),
        ("Company key disabled", "deleted"),
        ("You can't use this action because the company is banned", "authentication refused"),
    ],
)
def test_auth_errors_name_their_cause(message: str, hint: str) -> None:
    error = classify_auth_error(400, "ERROR", message)

    assert isinstance(error, RuStoreAuthError)
    assert hint in str(error)
    assert error.rustore_message == message


def test_auth_server_error_is_transient_and_unambiguous() -> None:
    error = classify_auth_error(503, None, "unavailable")

    assert isinstance(error, RuStoreTransientError)
    assert not error.ambiguous


def test_retry_after_as_seconds_or_date() -> None:
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_refreshed_a_margin_before_its_ttl() -> None:
    clock = FakeClock()
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        issued.append(f"t{len(issued)}")
        return issued[-1], 900

    cache = TokenCache(fetch, refresh_margin=60, clock=clock)

    assert await cache.get() == "t0"
    clock.now += 839
    assert await cache.get() == "t0"
    clock.now += 2  # 841 s: within 60 s of expiry
    assert await cache.get() == "t1"


async def test_invalidate_only_drops_the_refused_token() -> None:
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        issued.append(f"t{len(issued)}")
        return issued[-1], 900

    cache = TokenCache(fetch, refresh_margin=60, clock=FakeClock())
    old = await cache.get()
    cache.invalidate(old)
    new = await cache.get()
    cache.invalidate(old)  # a late caller reporting the old token must not drop the new one

    assert await cache.get() == new == "t1"


async def test_failed_fetch_leaves_the_next_caller_free_to_retry() -> None:
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise RuStoreTransientError("auth down")
        return "t", 900

    cache = TokenCache(fetch, refresh_margin=60)
    with pytest.raises(RuStoreTransientError):
        await cache.get()

    assert await cache.get() == "t"


async def test_tiny_ttl_keeps_at_least_half_its_life() -> None:
    clock = FakeClock()
    count = 0

    async def fetch() -> tuple[str, float]:
        nonlocal count
        count += 1
        return "t", 10

    cache = TokenCache(fetch, refresh_margin=60, clock=clock)
    await cache.get()
    clock.now += 4
    await cache.get()

    assert count == 1


def test_config_repr_hides_the_private_key() -> None:
    config = RuStoreConfig(key_id="1", private_key="SECRETKEYMATERIAL", app_id=1, package_name="p")

    assert "SECRETKEYMATERIAL" not in repr(config)


@pytest.mark.parametrize(
    "override",
    [{"key_id": ""}, {"api_url": "ftp://x"}, {"read_timeout": 0}, {"max_attempts": 0}],
)
def test_config_refuses_nonsense(override: dict[str, object]) -> None:
    settings: dict[str, object] = {
        "key_id": "1",
        "private_key": "k",
        "app_id": 1,
        "package_name": "p",
    }
    settings.update(override)

    with pytest.raises(ValueError, match="RuStoreConfig"):
        RuStoreConfig(**settings)  # type: ignore[arg-type]
