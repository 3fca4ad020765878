"""Register, login, refresh (rotation and reuse detection), logout, profile and account changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import User
from tests.fixtures.accounts import PASSWORD, Account, unique_email
from tests.fixtures.platform import assert_problem


async def register(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/auth/register", json={"password": PASSWORD, **body})


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refreshToken": token})


async def profile(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get(
        "/api/user/profile", headers={"Authorization": f"Bearer {access_token}"}
    )


async def test_register_returns_tokens_and_a_normalised_user(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await register(client, email=f"  {email.upper()} ", deviceId="pixel-7")

    assert response.status_code == 201
    body = response.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 900
    assert body["user"]["email"] == email
    assert body["user"]["roles"] == ["user"]
    me = (await profile(client, body["accessToken"])).json()
    assert me == {
        "userId": body["user"]["userId"],
        "email": email,
        "roles": ["user"],
        "pointsBalance": 0,
        "subscription": None,
    }


async def test_duplicate_email_is_a_409_whatever_its_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    assert (await register(client, email=email)).status_code == 201

    assert_problem(await register(client, email=email.upper()), 409, "email_taken")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"password": "Short1"}, "password"),
        ({"password": "abcdefghijkl"}, "password"),
        ({"password": "123456789012"}, "password"),
        ({"email": "longenough1@test.kopilka.example", "password": "longenough1"}, "password"),
        ({"password": None}, "password"),
    ],
)
async def test_invalid_register_input_is_a_400_naming_the_field(
    client: httpx.AsyncClient, db_session: AsyncSession, body: dict[str, Any], field: str
) -> None:
    response = await register(client, **{"email": unique_email(), **body})

    problem = assert_problem(response, 400, "validation_error")
    assert problem["detail"].startswith(f"{field}: ")
    assert problem["errors"][0]["field"] == field


@pytest.mark.parametrize("extra", [{"roles": ["admin"]}, {"pointsBalance": 1000}, {"id": "x"}])
async def test_register_with_extra_fields_is_refused_without_effect(
    client: httpx.AsyncClient, db_session: AsyncSession, extra: dict[str, Any]
) -> None:
    email = unique_email()
    problem = assert_problem(await register(client, email=email, **extra), 400, "validation_error")

    assert "unknown field" in problem["detail"]
    count = await db_session.scalar(select(func.count()).where(User.email == email))
    assert count == 0


async def test_login_returns_a_new_token_pair(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": user_account.email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["userId"] == user_account.user_id
    assert body["refreshToken"] != user_account.refresh_token
    assert (await profile(client, body["accessToken"])).status_code == 200


async def test_wrong_password_and_unknown_email_fail_alike(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    wrong_password = await client.post(
        "/api/auth/login", json={"email": user_account.email, "password": "wrong-password-1"}
    )
    unknown_email = await client.post(
        "/api/auth/login", json={"email": unique_email(), "password": "wrong-password-1"}
    )

    first = assert_problem(wrong_password, 401, "invalid_credentials")
    second = assert_problem(unknown_email, 401, "invalid_credentials")
    assert first["detail"] == second["detail"]


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    wrong = {"email": user_account.email, "password": "wrong-password-1"}
    for _ in range(5):
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401

    right = {"email": user_account.email, "password": PASSWORD}
    locked = await client.post("/api/auth/login", json=right)

    assert_problem(locked, 429, "login_locked")
    assert 0 < int(locked.headers["retry-after"]) <= 900


async def test_a_successful_login_resets_the_failure_count(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    wrong = {"email": user_account.email, "password": "wrong-password-1"}
    right = {"email": user_account.email, "password": PASSWORD}
    for _ in range(4):
        await client.post("/api/auth/login", json=wrong)
    assert (await client.post("/api/auth/login", json=right)).status_code == 200

    for _ in range(4):
        await client.post("/api/auth/login", json=wrong)
    assert (await client.post("/api/auth/login", json=right)).status_code == 200


async def test_refresh_rotates_and_the_old_token_stops_working(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    rotated = await refresh(client, user_account.refresh_token)

    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refreshToken"] != user_account.refresh_token
    assert (await profile(client, new["accessToken"])).status_code == 200
    assert (await refresh(client, new["refreshToken"])).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    first = (await refresh(client, user_account.refresh_token)).json()
    second = (await refresh(client, first["refreshToken"])).json()
    other_login = await client.post(
        "/api/auth/login", json={"email": user_account.email, "password": PASSWORD}
    )

    assert_problem(await refresh(client, first["refreshToken"]), 401, "refresh_token_reused")
    assert_problem(await refresh(client, second["refreshToken"]), 401, "invalid_refresh_token")
    # Another login is another family and is untouched.
    assert (await refresh(client, other_login.json()["refreshToken"])).status_code == 200


@pytest.mark.parametrize("token", ["", "x" * 257])
async def test_malformed_refresh_token_is_a_400(client: httpx.AsyncClient, token: str) -> None:
    assert_problem(await refresh(client, token), 400, "validation_error")


async def test_unknown_refresh_token_is_a_401(client: httpx.AsyncClient) -> None:
    assert_problem(await refresh(client, "no-such-token"), 401, "invalid_refresh_token")


async def test_logout_revokes_the_family_and_is_idempotent(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    rotated = (await refresh(client, user_account.refresh_token)).json()

    for _ in range(2):
        response = await client.post(
            "/api/auth/logout", json={"refreshToken": rotated["refreshToken"]}
        )
        assert response.status_code == 204
    assert_problem(await refresh(client, rotated["refreshToken"]), 401, "invalid_refresh_token")


async def update(client: httpx.AsyncClient, account: Account, **body: Any) -> httpx.Response:
    return await client.patch("/api/user/update", json=body, headers=account.headers)


async def test_password_change_revokes_other_sessions_but_keeps_the_callers(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    other = await client.post(
        "/api/auth/login", json={"email": user_account.email, "password": PASSWORD}
    )
    new_password = "a-brand-new-secret-9"
    response = await update(
        client,
        user_account,
        currentPassword=PASSWORD,
        newPassword=new_password,
        refreshToken=user_account.refresh_token,
    )

    assert response.status_code == 200
    assert_problem(
        await refresh(client, other.json()["refreshToken"]), 401, "invalid_refresh_token"
    )
    assert (await refresh(client, user_account.refresh_token)).status_code == 200
    old = await client.post(
        "/api/auth/login", json={"email": user_account.email, "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/auth/login", json={"email": user_account.email, "password": new_password}
    )
    assert new.status_code == 200


async def test_password_change_without_a_token_revokes_every_session(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    response = await update(
        client, user_account, currentPassword=PASSWORD, newPassword="a-brand-new-secret-9"
    )

    assert response.status_code == 200
    assert_problem(await refresh(client, user_account.refresh_token), 401, "invalid_refresh_token")


async def test_email_change_needs_the_current_password(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    new_email = unique_email()
    wrong = await update(client, user_account, currentPassword="not-my-password1", email=new_email)
    assert_problem(wrong, 403, "wrong_password")

    changed = await update(client, user_account, currentPassword=PASSWORD, email=new_email.upper())

    assert changed.json()["email"] == new_email
    assert (await profile(client, user_account.access_token)).json()["email"] == new_email
    login = await client.post("/api/auth/login", json={"email": new_email, "password": PASSWORD})
    assert login.status_code == 200


async def test_email_change_to_a_taken_address_is_a_409(
    client: httpx.AsyncClient, user_account: Account, admin_account: Account
) -> None:
    response = await update(
        client, user_account, currentPassword=PASSWORD, email=admin_account.email
    )

    assert_problem(response, 409, "email_taken")
    assert (await profile(client, user_account.access_token)).json()["email"] == user_account.email


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"currentPassword": PASSWORD}, "invalid_request"),
        ({"currentPassword": PASSWORD, "newPassword": "short"}, "validation_error"),
        ({"currentPassword": PASSWORD, "email": "nope"}, "validation_error"),
        ({"currentPassword": PASSWORD, "roles": ["admin"]}, "validation_error"),
    ],
)
async def test_invalid_update_is_a_400(
    client: httpx.AsyncClient, user_account: Account, body: dict[str, Any], code: str
) -> None:
    assert_problem(await update(client, user_account, **body), 400, code)
    assert (await profile(client, user_account.access_token)).json()["roles"] == ["user"]
