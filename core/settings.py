"""Typed configuration read from environment variables.

Every process (api, worker, scheduler) loads the same `Settings`. A missing or malformed variable
stops the process at start with one line naming it (see `load_settings_or_exit`), because a payment
system that starts half-configured fails later in ways that are much harder to read.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import sys
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

import msgspec

Url = Annotated[str, msgspec.Meta(min_length=1)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class SettingsError(Exception):
    """A configuration variable is missing or malformed; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """All configuration, one field per environment variable (the field name upper-cased)."""

    database_url: Url
    redis_url: Url
    jwt_secret: Annotated[str, msgspec.Meta(min_length=32)]
    rustore_key_id: Annotated[str, msgspec.Meta(min_length=1)]
    rustore_private_key: Annotated[str, msgspec.Meta(min_length=1)]
    rustore_app_id: int
    rustore_package_name: Annotated[str, msgspec.Meta(min_length=1)]
    rustore_webhook_key: Annotated[str, msgspec.Meta(min_length=1)]

    rustore_sandbox_webhook_key: str = ""
    rustore_api_url: Url = "https://public-api.rustore.ru"
    rustore_timeout: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    port: Port = 8000
    host: str = "127.0.0.1"
    web_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 2
    """api processes: one per core of the 2-core machine Kopilka is sized for, as the worker's
    `--processes 2`; one process is held to one core by the GIL."""
    worker_metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9191
    scheduler_metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9192
    environment: str = "development"
    log_level: str = "INFO"
    database_pool_size: Annotated[int, msgspec.Meta(ge=1)] = 20
    database_pool_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    database_lock_timeout: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    redis_timeout: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    diagnostics_ping_interval: Annotated[int, msgspec.Meta(ge=1)] = 60
    purchase_sweep_interval: Annotated[int, msgspec.Meta(ge=1)] = 30
    notification_sweep_interval: Annotated[int, msgspec.Meta(ge=1)] = 30
    purchase_stale_seconds: Annotated[int, msgspec.Meta(ge=1)] = 600
    held_payment_check_seconds: Annotated[int, msgspec.Meta(ge=1)] = 900
    dunning_schedule_seconds: Annotated[str, msgspec.Meta(pattern=r"^[1-9]\d*(,[1-9]\d*)*$")] = (
        "3600,21600,86400,259200,604800"
    )
    dunning_max_checks: Annotated[int, msgspec.Meta(ge=0)] = 10

    # Accounts and access
    jwt_issuer: Annotated[str, msgspec.Meta(min_length=1)] = "kopilka"
    jwt_audience: Annotated[str, msgspec.Meta(min_length=1)] = "kopilka-api"
    access_token_ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=86400)] = 900
    refresh_token_ttl_seconds: Annotated[int, msgspec.Meta(ge=3600)] = 30 * 86400
    login_max_failures_per_account: Annotated[int, msgspec.Meta(ge=1)] = 5
    login_max_failures_per_address: Annotated[int, msgspec.Meta(ge=1)] = 20
    login_lockout_seconds: Annotated[int, msgspec.Meta(ge=1)] = 900
    rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 100
    auth_rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 10
    trusted_proxies: str = ""
    cors_origins: str = ""
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024

    # Ops dashboard (/ops)
    ops_session_ttl_seconds: Annotated[int, msgspec.Meta(ge=300, le=7 * 86400)] = 8 * 3600
    ops_allow_plain_http: bool = False

    def __post_init__(self) -> None:
        for name in ("rustore_webhook_key", "rustore_sandbox_webhook_key"):
            value = getattr(self, name)
            if value and not _is_aes256_key(value):
                raise SettingsError(
                    f"{name.upper()}: expected the base64 32-byte key from the RuStore console"
                )
        if self.environment == "production" and self.rustore_api_url.startswith("http://"):
            raise SettingsError("RUSTORE_API_URL: production requires https")
        if self.environment == "production" and self.ops_allow_plain_http:
            raise SettingsError("OPS_ALLOW_PLAIN_HTTP: production requires https")
        for proxy in self.trusted_proxy_list:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                message = f"TRUSTED_PROXIES: {proxy!r} is not an IP address or CIDR"
                raise SettingsError(message) from None

    @property
    def trusted_proxy_list(self) -> list[str]:
        """Peers whose X-Forwarded-For is believed; empty means the peer is the client."""
        return _comma_list(self.trusted_proxies)

    @property
    def cors_origin_list(self) -> list[str]:
        """Browser origins allowed to call the api; empty turns CORS off."""
        return _comma_list(self.cors_origins)


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_aes256_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _field_names() -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(Settings)}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, raising `SettingsError` naming the bad variable."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {name: environ[name] for name in _field_names() if name in environ}
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(str(exc))) from None


def _describe(message: str) -> str:
    """Turn msgspec's message into one line that starts with the variable's name."""
    if message.startswith("Object missing required field `"):
        name = message.split("`")[1]
        return f"{name}: required but not set"
    if " - at `$." in message:
        problem, path = message.rsplit(" - at `$.", 1)
        return f"{path.rstrip('`')}: {problem}"
    return message


@cache
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()


def load_settings_or_exit() -> Settings:
    """Entry-point helper: print one clear line and exit 2 instead of a traceback."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(f"kopilka: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
