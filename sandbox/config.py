"""Sandbox configuration, read once from `SANDBOX_*` environment variables.

Everything has a default so `python -m sandbox serve` starts with no environment at all; then no
client key is registered and no webhook URL is set, which is fine for poking at the control API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

StatusCase = Literal["upper", "lower"]


class ConfigError(Exception):
    """An environment variable is malformed; the message names it."""


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One field per `SANDBOX_<FIELD>` variable; see docs/sandbox.md for what each one does."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8090
    keys: str = ""
    app_id: int = 7700001
    package_name: str = "ru.kopilka.app"
    owner_code: int = 4384191
    webhook_url: str = ""
    webhook_key: str = ""
    test_webhook_url: str = ""
    test_webhook_key: str = ""
    notify_enabled: bool = True
    notify_retry_seconds: tuple[float, ...] = (1.0, 2.0, 5.0)
    notify_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    notify_status_case: StatusCase = "upper"
    notify_shuffle_window_ms: Annotated[int, msgspec.Meta(ge=0)] = 300
    hang_seconds: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    log_level: str = "INFO"


_FIELD_CONVERTERS = {
    "notify_retry_seconds": lambda raw: [part.strip() for part in raw.split(",") if part.strip()],
}


def load_config(environ: Mapping[str, str] | None = None) -> SandboxConfig:
    """Build the config from the environment (strings are converted to the field types)."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for name in SandboxConfig.__struct_fields__:
        value = env.get(f"SANDBOX_{name.upper()}")
        if value is None:
            continue
        convert = _FIELD_CONVERTERS.get(name)
        raw[name] = convert(value) if convert else value
    try:
        return msgspec.convert(raw, SandboxConfig, strict=False)
    except msgspec.ValidationError as exc:
        # "Expected `int`, got `str` - at `$.port`" -> "... at `SANDBOX_PORT`"
        message = re.sub(r"\$\.(\w+)", lambda m: f"SANDBOX_{m[1].upper()}", str(exc))
        raise ConfigError(f"bad sandbox configuration: {message}") from exc
