from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.audit.models import Target
from core.catalogue.models import Product, ProductType
from core.catalogue.repository import ProductRepository
from core.errors import ConflictError, InvalidRequestError, NotFoundError

AUDITED_FIELDS = ("product_id", "type", "title", "points", "price_kopecks", "active")


async def purchasable(
    session: AsyncSession, product_id: str, types: Collection[ProductType]
) -> Product:
    """An active product of one of `types`, or a 400 naming the product id."""
    product = await ProductRepository(session).by_product_id(product_id)
    if product is None or not product.active or product.type not in types:
        allowed = " or ".join(sorted(types))
        raise InvalidRequestError(
            f"productId: no active {allowed} product {product_id!r}",
            code="unknown_product",
            productId=product_id,
        )
    return product


async def listing(session: AsyncSession, *, include_inactive: bool = False) -> list[Product]:
    return await ProductRepository(session).listing(include_inactive=include_inactive)


async def create(
    session: AsyncSession, fields: Mapping[str, object], *, actor: audit.Actor
) -> Product:
    """An admin's new product, audited; 409 when its product id is taken."""
    product = await ProductRepository(session).insert_new(fields)
    if product is None:
        raise ConflictError(f"Product {fields['product_id']!r} exists", code="product_exists")
    await audit.record(
        session, actor=actor, action="product.create", target_type=Target.PRODUCT,
        target_id=product.product_id, before=None, after=_described(product, AUDITED_FIELDS),
    )  # fmt: skip
    return product


async def update(
    session: AsyncSession, product_id: str, changes: dict[str, object], *, actor: audit.Actor
) -> Product:
    """An admin's change, audited with the old and new values of the fields it names."""
    product = await ProductRepository(session).by_product_id(product_id)
    if product is None:
        raise NotFoundError(f"No product {product_id!r}")
    before = _described(product, changes)
    for name, value in changes.items():
        setattr(product, name, value)
    await session.flush()
    await audit.record(
        session, actor=actor, action="product.update", target_type=Target.PRODUCT,
        target_id=product_id, before=before, after=_described(product, changes),
    )  # fmt: skip
    return product


def _described(product: Product, names: Collection[str]) -> dict[str, object]:
    return {name: getattr(product, name) for name in names}
