from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.catalogue.models import Product


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_product_id(self, product_id: str) -> Product | None:
        result = await self.session.execute(select(Product).where(Product.product_id == product_id))
        return result.scalar_one_or_none()

    async def listing(self, *, include_inactive: bool) -> list[Product]:
        query = select(Product).order_by(Product.product_id)
        if not include_inactive:
            query = query.where(Product.active.is_(True))
        return list((await self.session.execute(query)).scalars())

    async def add(self, product: Product) -> Product:
        self.session.add(product)
        await self.session.flush()
        return product
