"""A missing or malformed setting stops each process at start with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.settings import SettingsError, load_settings
from tests.fixtures.processes import PROJECT_ROOT

ENTRY_POINTS = {
    "api": [sys.executable, "-m", "api"],
    "worker": [sys.executable, "-m", "workers", "--processes", "1", "--threads", "1"],
    "scheduler": [sys.executable, "-m", "workers.scheduler"],
}


def run_with(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("process", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("JWT_SECRET", None, "JWT_SECRET: required but not set"),
        ("RUSTORE_APP_ID", "twelve", "RUSTORE_APP_ID: Expected `int`, got `str`"),
        ("PORT", "70000", "PORT: Expected `int` <= 65535"),
        ("RUSTORE_WEBHOOK_KEY", "c2hvcnQ=", "RUSTORE_WEBHOOK_KEY: expected the base64 32-byte key"),
    ],
)
def test_bad_setting_stops_process_with_one_line(
    base_env: dict[str, str], process: str, variable: str, value: str | None, expected: str
) -> None:
    env = {k: v for k, v in base_env.items() if k != variable}
    if value is not None:
        env[variable] = value

    result = run_with(env, ENTRY_POINTS[process])

    assert result.returncode != 0
    output_lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    assert len(output_lines) == 1, output_lines
    assert output_lines[0].startswith("kopilka: configuration error: " + expected)
    assert "Traceback" not in result.stderr


def test_defaults_apply_and_urls_are_kept(base_env: dict[str, str]) -> None:
    defaulted = ("PORT", "RUSTORE_API_URL")
    settings = load_settings({k: v for k, v in base_env.items() if k not in defaulted})
    assert settings.port == 8000
    assert settings.rustore_api_url == "https://public-api.rustore.ru"
    assert settings.database_url == base_env["DATABASE_URL"]


def test_production_refuses_plain_http_rustore(base_env: dict[str, str]) -> None:
    env = {**base_env, "ENVIRONMENT": "production", "RUSTORE_API_URL": "http://127.0.0.1:1"}
    with pytest.raises(SettingsError, match="RUSTORE_API_URL"):
        load_settings(env)
