from __future__ import annotations

from typing import Annotated

import msgspec

from api.purchases.schemas import ProductId
from core.catalogue.models import Product, ProductType

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Points = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
# products.price_kopecks is a PostgreSQL integer: a larger price must be a 400, not a 500.
Price = Annotated[int, msgspec.Meta(gt=0, le=2**31 - 1)]


class ProductOut(msgspec.Struct, frozen=True, rename="camel"):
    product_id: str
    type: str
    title: str
    points: int
    price_kopecks: int | None
    active: bool

    @classmethod
    def from_model(cls, product: Product) -> ProductOut:
        return cls(
            product.product_id,
            product.type,
            product.title,
            product.points,
            product.price_kopecks,
            product.active,
        )


class ProductIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    product_id: ProductId
    type: ProductType
    title: Title
    points: Points = 0
    price_kopecks: Price | None = None
    active: bool = True


class ProductPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Fields to change; those left out keep their value."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    points: Points | msgspec.UnsetType = msgspec.UNSET
    price_kopecks: Price | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return {
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not msgspec.UNSET
        }
