"""The product catalogue: a public, cacheable list of active products, changed only by admins."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.accounts.models import Role
from core.accounts.tokens import AccessClaims
from core.catalogue import service as catalogue
from core.db import create_sessionmaker, utcnow
from core.errors import ConflictError
from tests.fixtures.accounts import Account, MakeAccount


def _product(**changes: Any) -> dict[str, Any]:
    return {
        "productId": f"test_{uuid.uuid4().hex[:12]}",
        "type": "consumable",
        "title": "Test coins",
        "points": 10,
        "priceKopecks": 990,
        **changes,
    }


async def _create(
    client: httpx.AsyncClient, admin: Account, product: dict[str, Any]
) -> httpx.Response:
    return await client.post("/api/admin/products", json=product, headers=admin.headers)


async def _public_ids(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/api/products")
    assert response.status_code == 200, response.text
    return {p["productId"] for p in response.json()}


async def test_the_list_is_public_and_shows_created_products(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    product = _product()

    created = await _create(client, admin_account, product)
    listed = await client.get("/api/products")

    assert created.status_code == 201, created.text
    assert created.json() == {**product, "active": True}
    assert listed.status_code == 200
    assert {**product, "active": True} in listed.json()


async def test_the_list_answers_304_to_its_own_etag_until_it_changes(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    first = await client.get("/api/products")
    etag = first.headers["etag"]

    unchanged = await client.get("/api/products", headers={"If-None-Match": etag})
    assert (await _create(client, admin_account, _product())).status_code == 201
    changed = await client.get("/api/products", headers={"If-None-Match": etag})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


async def test_a_deactivated_product_leaves_the_public_list(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    product = _product()
    await _create(client, admin_account, product)

    patched = await client.patch(
        f"/api/admin/products/{product['productId']}",
        json={"active": False, "title": "Retired coins", "priceKopecks": None},
        headers=admin_account.headers,
    )

    assert patched.status_code == 200, patched.text
    assert patched.json() == {
        **product,
        "title": "Retired coins",
        "priceKopecks": None,
        "active": False,
    }
    assert product["productId"] not in await _public_ids(client)


async def test_a_duplicate_product_is_409(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    product = _product()
    await _create(client, admin_account, product)

    again = await _create(client, admin_account, {**product, "title": "Other"})

    assert again.status_code == 409
    assert again.json()["code"] == "product_exists"


async def test_a_create_racing_an_uncommitted_twin_is_a_conflict_not_a_crash(
    engine: AsyncEngine,
) -> None:
    """The second insert waits on the first one's unique-index entry, then must say 409."""
    product_id = _product()["productId"]
    sessions = create_sessionmaker(engine)
    async with sessions() as first, sessions() as second:
        fields = {"product_id": product_id, "type": "consumable", "title": "Twin"}
        admin = AccessClaims(uuid.uuid4(), frozenset({Role.ADMIN}), "t", utcnow())
        await catalogue.create(first, fields, actor=admin)
        racing = asyncio.create_task(catalogue.create(second, fields, actor=admin))
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second insert should be waiting on the first"
        await first.commit()
        with pytest.raises(ConflictError):
            await racing


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "gift_card"},
        {"productId": "has spaces"},
        {"points": -1},
        {"priceKopecks": 0},
        {"title": ""},
        {"active": "yes please"},
        {"id": str(uuid.uuid4())},
    ],
)
async def test_a_malformed_product_is_400(
    client: httpx.AsyncClient, admin_account: Account, changes: dict[str, Any]
) -> None:
    product = _product(**changes)

    response = await _create(client, admin_account, product)

    assert response.status_code == 400, response.text
    assert product["productId"] not in await _public_ids(client)


@pytest.mark.parametrize("body", [{"title": None}, {"points": -5}, {"productId": "renamed"}])
async def test_a_malformed_patch_is_400(
    client: httpx.AsyncClient, admin_account: Account, body: dict[str, Any]
) -> None:
    product = _product()
    await _create(client, admin_account, product)

    response = await client.patch(
        f"/api/admin/products/{product['productId']}", json=body, headers=admin_account.headers
    )

    assert response.status_code == 400, response.text


async def test_patching_an_unknown_product_is_404(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await client.patch(
        "/api/admin/products/no_such_product", json={"active": False}, headers=admin_account.headers
    )
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.USER, Role.SUPPORT])
async def test_only_admins_change_the_catalogue(
    client: httpx.AsyncClient, make_account: MakeAccount, admin_account: Account, role: Role
) -> None:
    caller = await make_account(role)
    existing = _product()
    await _create(client, admin_account, existing)

    created = await _create(client, caller, _product())
    patched = await client.patch(
        f"/api/admin/products/{existing['productId']}",
        json={"active": False},
        headers=caller.headers,
    )

    assert (created.status_code, patched.status_code) == (403, 403)
    assert existing["productId"] in await _public_ids(client)
