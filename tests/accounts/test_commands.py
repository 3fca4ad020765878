"""The first-admin command and the demo accounts of `make run`."""

from __future__ import annotations

import subprocess
import sys

import httpx

from devstack.demo import DEMO_ACCOUNTS
from tests.fixtures.accounts import unique_email


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], env=env, input=stdin, capture_output=True, text=True
    )


async def test_create_admin_makes_an_account_with_the_admin_role(
    client: httpx.AsyncClient, base_env: dict[str, str]
) -> None:
    email, password = unique_email(), "first-admin-secret-1"
    command = ["core.accounts.cli", "create-admin", "--email", email, "--password-stdin"]

    created = run(command, base_env, stdin=f"{password}\n")
    again = run(command, base_env, stdin=f"{password}\n")

    assert created.returncode == 0, created.stderr
    assert again.returncode == 1
    assert "already exists" in again.stderr
    login = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.json()["user"]["roles"] == ["admin"]


def test_create_admin_applies_the_password_policy(base_env: dict[str, str]) -> None:
    env = {**base_env, "KOPILKA_ADMIN_PASSWORD": "short"}

    result = run(["core.accounts.cli", "create-admin", "--email", unique_email()], env)

    assert result.returncode == 1
    assert "password:" in result.stderr


async def test_demo_accounts_are_created_once_and_can_log_in(
    client: httpx.AsyncClient, base_env: dict[str, str]
) -> None:
    first = run(["devstack.demo"], base_env)
    second = run(["devstack.demo"], base_env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("exists, left unchanged") == len(DEMO_ACCOUNTS)
    for email, password, role in DEMO_ACCOUNTS:
        assert email in first.stdout
        assert password in first.stdout
        login = await client.post("/api/auth/login", json={"email": email, "password": password})
        assert login.json()["user"]["roles"] == [role]


def test_demo_accounts_are_refused_in_production(base_env: dict[str, str]) -> None:
    production = {"ENVIRONMENT": "production", "RUSTORE_API_URL": "https://public-api.rustore.ru"}

    result = run(["devstack.demo"], {**base_env, **production})

    assert result.returncode == 1
    assert "never created in production" in result.stderr
