from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY, PUBLIC, Caller
from api.accounts.guards import requires_role
from api.catalogue.schemas import ProductIn, ProductOut, ProductPatch
from api.errors import problem_responses
from api.openapi import success_body
from core.accounts.models import Role
from core.catalogue import service as catalogue

CACHE_SECONDS = 60


class CatalogueController(Controller):
    path = "/api/products"
    tags = ["catalogue"]

    @get(
        "/",
        opt=PUBLIC,
        summary="Active products (public, cacheable)",
        responses={
            **success_body(200, list[ProductOut], "Active products"),
            **problem_responses(429),
        },
    )
    async def list_products(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[bytes]:
        products = await catalogue.listing(db_session)
        body = msgspec.json.encode([ProductOut.from_model(p) for p in products])
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)


class CatalogueAdminController(Controller):
    path = "/api/admin/products"
    tags = ["admin"]
    security = BEARER_SECURITY
    guards = [requires_role(Role.ADMIN)]

    @post("/", status_code=HTTP_201_CREATED, responses=problem_responses(400, 401, 403, 409))
    async def create_product(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        data: JSONBody[ProductIn],
    ) -> ProductOut:
        fields = msgspec.structs.asdict(data)
        product = await catalogue.create(db_session, fields, actor=request.user)
        await db_session.commit()
        return ProductOut.from_model(product)

    @patch(
        "/{product_id:str}",
        summary="Change or deactivate a product",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def update_product(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        product_id: FromPath[str],
        data: JSONBody[ProductPatch],
    ) -> ProductOut:
        product = await catalogue.update(db_session, product_id, data.changes(), actor=request.user)
        await db_session.commit()
        return ProductOut.from_model(product)
