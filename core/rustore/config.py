"""Settings of one RuStore API client, built by the application's settings module.

This module reads no environment variables: the caller decides where values come from, and tests
build a config directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_API_URL = "https://public-api.rustore.ru"


@dataclass(frozen=True, kw_only=True, slots=True)
class RuStoreConfig:
    """Credentials, identity of our app, and the time budget of every call.

    Time budget: one attempt is bounded by the httpx timeouts below; the client retries transient
    failures for at most `retry_budget` seconds (and `max_attempts` attempts), so a call returns or
    raises within roughly `retry_budget` + one attempt's timeout.
    """

    key_id: str
    """Key id from Console → Company → API RuStore."""
    private_key: str = field(repr=False)
    """The private key exactly as the Console gives it: base64 of a PKCS#8 DER RSA key."""
    app_id: int
    """Numeric app id from the Console URL (`console.rustore.ru/apps/{appId}`)."""
    package_name: str
    """Android package name, part of the subscription paths."""
    api_url: str = DEFAULT_API_URL

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    """Longest wait for the next bytes of an answer, counted from when the request is written."""
    pool_timeout: float = 5.0
    confirm_read_timeout: float = 35.0
    """Read timeout for `:confirm` and `:cancel`, which RuStore says may take up to 30 s."""

    retry_budget: float = 10.0
    """Seconds the client keeps retrying transient failures before raising them."""
    max_attempts: int = 4
    backoff_initial: float = 0.25
    """Scale of the exponential backoff between attempts (full jitter)."""
    backoff_max: float = 2.0
    """Longest single pause between attempts, also the cap on a honoured Retry-After."""

    token_refresh_margin: float = 60.0
    """Refresh the access token this many seconds before RuStore's ttl runs out."""
    max_connections: int = 20

    def __post_init__(self) -> None:
        if not self.key_id:
            raise ValueError("RuStoreConfig.key_id must not be empty")
        if not self.private_key:
            raise ValueError("RuStoreConfig.private_key must not be empty")
        if not self.package_name:
            raise ValueError("RuStoreConfig.package_name must not be empty")
        if not self.api_url.startswith(("https://", "http://")):
            raise ValueError("RuStoreConfig.api_url must be an http(s) URL")
        for name in (
            "connect_timeout",
            "read_timeout",
            "pool_timeout",
            "confirm_read_timeout",
            "backoff_initial",
            "backoff_max",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"RuStoreConfig.{name} must be positive")
        if self.retry_budget < 0 or self.token_refresh_margin < 0:
            raise ValueError("RuStoreConfig.retry_budget and token_refresh_margin must be >= 0")
        if self.max_attempts < 1 or self.max_connections < 1:
            raise ValueError("RuStoreConfig.max_attempts and max_connections must be >= 1")
