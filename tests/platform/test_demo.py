"""`make run`'s demo data: accounts that log in and a catalogue the sandbox can sell, made once."""

from __future__ import annotations

import subprocess
import sys

import httpx

from devstack.demo import DEMO_ACCOUNTS, DEMO_PRODUCTS
from tests.fixtures.processes import PROJECT_ROOT


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack.demo"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_demo_data_is_created_once_and_usable(
    base_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    assert run_demo(base_env).returncode == 0
    second = run_demo(base_env)

    assert second.returncode == 0
    assert second.stdout.count("exists, left unchanged") == len(DEMO_ACCOUNTS)
    for email, password, _role in DEMO_ACCOUNTS:
        login = await client.post("/api/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
    listed = {p["productId"] for p in (await client.get("/api/products")).json()}
    assert {product.product_id for product in DEMO_PRODUCTS} <= listed


def test_demo_data_is_refused_in_production(base_env: dict[str, str]) -> None:
    result = run_demo(
        {**base_env, "ENVIRONMENT": "production", "RUSTORE_API_URL": "https://127.0.0.1"}
    )
    assert result.returncode == 1
    assert "never created in production" in result.stderr
