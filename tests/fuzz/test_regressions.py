"""What the schema fuzzer found (docs/fuzzing.md), pinned down one request at a time."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest

from tests.fixtures.accounts import Account
from tests.fixtures.platform import assert_problem

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("FUZZ_API_URL")), reason="runs against the in-process app only"
)

INT4_MAX = 2**31 - 1


def _product(**changes: Any) -> dict[str, Any]:
    product_id = f"fuzz_{uuid.uuid4().hex[:12]}"
    return {"productId": product_id, "type": "consumable", "title": "Coins", **changes}


@pytest.mark.parametrize("price", [INT4_MAX + 1, 9_999_999_999])
async def test_a_price_beyond_the_column_is_a_400_not_a_500(
    client: httpx.AsyncClient, admin_account: Account, price: int
) -> None:
    created = await client.post(
        "/api/admin/products", json=_product(priceKopecks=price), headers=admin_account.headers
    )
    product = _product(priceKopecks=INT4_MAX)
    accepted = await client.post("/api/admin/products", json=product, headers=admin_account.headers)
    patched = await client.patch(
        f"/api/admin/products/{product['productId']}",
        json={"priceKopecks": price},
        headers=admin_account.headers,
    )

    assert_problem(created, 400, "validation_error")
    assert accepted.status_code == 201, accepted.text
    assert_problem(patched, 400, "validation_error")


async def test_a_grant_past_the_integer_balance_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, admin_account: Account, user_account: Account
) -> None:
    async def grant(amount: int) -> httpx.Response:
        return await client.post(
            f"/api/admin/users/{user_account.user_id}/points/grant",
            json={"amount": amount, "reason": "fuzz"},
            headers={**admin_account.headers, "Idempotency-Key": uuid.uuid4().hex},
        )

    filled = [(await grant(1_000_000_000)).status_code for _ in range(2)]
    over = await grant(1_000_000_000)
    to_the_limit = await grant(INT4_MAX - 2_000_000_000)

    assert filled == [200, 200]
    assert_problem(over, 422, "points_limit")
    assert to_the_limit.json() == {"balance": INT4_MAX, "debt": 0}


async def test_a_nul_character_is_a_400_wherever_it_reaches_the_database(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    in_body = await client.post(
        "/api/admin/products", json=_product(title="Coins\u0000"), headers=admin_account.headers
    )
    in_path = await client.patch(
        "/api/admin/products/coins%00", json={"title": "Coins"}, headers=admin_account.headers
    )
    in_email = await client.post(
        "/api/auth/login", json={"email": "a\u0000@example.com", "password": "Fuzz-password-42"}
    )

    for response in (in_body, in_path, in_email):
        problem = assert_problem(response, 400, "invalid_characters")
        assert problem["detail"] == "Text must not contain NUL (\\u0000) characters."


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/points/spend", {"amount": "5", "reason": "sword"}, "amount"),
        ("/api/points/spend", {"amount": 5.0, "reason": "sword"}, "amount"),
        ("/api/auth/refresh", {"refreshToken": 12345}, "refreshToken"),
        ("/api/purchases/intent", {"productId": 7}, "productId"),
    ],
)
async def test_a_json_value_of_the_wrong_type_is_refused_not_coerced(
    client: httpx.AsyncClient, user_account: Account, path: str, body: dict[str, Any], field: str
) -> None:
    headers = {**user_account.headers, "Idempotency-Key": uuid.uuid4().hex}

    response = await client.post(path, json=body, headers=headers)

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["source"] == "body"


async def test_a_boolean_given_as_a_number_is_refused(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await client.post(
        "/api/admin/products", json=_product(active=0), headers=admin_account.headers
    )

    problem = assert_problem(response, 400, "validation_error")
    assert problem["detail"] == "active: Expected `bool`, got `int`"


async def test_query_strings_are_still_read_as_their_types(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    response = await client.get("/api/points/history?limit=5", headers=user_account.headers)

    assert response.status_code == 200, response.text


async def test_the_schema_says_what_the_api_enforces(client: httpx.AsyncClient) -> None:
    """The schema gaps the fuzzer found: each one let it send a request the api refused."""
    schema = (await client.get("/schema/openapi.json")).json()
    components, paths = schema["components"]["schemas"], schema["paths"]

    assert components["RegisterIn"]["additionalProperties"] is False
    assert components["ProductIn"]["properties"]["priceKopecks"]["exclusiveMinimum"] == 0
    assert components["ProductPatch"]["properties"]["points"]["minimum"] == 0
    idempotent = [
        ("post", "/api/payments/verify"),
        ("post", "/api/points/buy"),
        ("post", "/api/points/spend"),
        ("post", "/api/subscriptions/verify"),
        ("post", "/api/admin/users/{user_id}/points/grant"),
        ("post", "/api/admin/users/{user_id}/points/clawback"),
    ]
    for method, path in idempotent:
        headers = {p["name"]: p for p in paths[path][method]["parameters"] if p["in"] == "header"}
        assert headers["Idempotency-Key"]["required"] is True, path
    listing = paths["/api/products"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["schema"]["items"] == {"$ref": "#/components/schemas/ProductOut"}
    accepted = paths["/api/payments/verify"]["post"]["responses"]["202"]["content"]
    assert accepted["application/json"]["schema"] == {"$ref": "#/components/schemas/PaymentOut"}
    assert paths["/api/diagnostics/pings"]["post"]["requestBody"]["required"] is False
