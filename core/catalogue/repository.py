from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.catalogue.models import Product

BY_PRODUCT_ID = select(Product).where(Product.product_id == bindparam("product_id"))
"""Built once: every intent reads its product, and building the statement cost more CPU than
running it."""


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_product_id(self, product_id: str) -> Product | None:
        result = await self.session.execute(BY_PRODUCT_ID, {"product_id": product_id})
        return result.scalar_one_or_none()

    async def listing(self, *, include_inactive: bool) -> list[Product]:
        query = select(Product).order_by(Product.product_id)
        if not include_inactive:
            query = query.where(Product.active.is_(True))
        return list((await self.session.execute(query)).scalars())

    async def insert_new(self, values: Mapping[str, object]) -> Product | None:
        """Insert unless the product id exists; None when it does, even if a concurrent
        transaction inserted it first (the insert waits for that one to commit or roll back)."""
        statement = (
            insert(Product)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Product.product_id])
            .returning(Product)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def add(self, product: Product) -> Product:
        self.session.add(product)
        await self.session.flush()
        return product
