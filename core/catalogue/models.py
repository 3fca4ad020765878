from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, Timestamps, UUIDPrimaryKey


class ProductType(StrEnum):
    CONSUMABLE = "consumable"  # grants points; bought again and again (two-stage in RuStore)
    NON_CONSUMABLE = "non_consumable"  # grants an entitlement once
    SUBSCRIPTION = "subscription"


class Product(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(
            "type IN ('consumable', 'non_consumable', 'subscription')", name="type_known"
        ),
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("price_kopecks IS NULL OR price_kopecks > 0", name="price_positive"),
    )

    product_id: Mapped[str] = mapped_column(String(64), unique=True)
    """RuStore's product code (`itemCode` in an invoice, `subscriptionId` for subscriptions)."""
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(default=0)
    price_kopecks: Mapped[int | None]
    """When set, verification requires RuStore's charged amount to equal it."""
    active: Mapped[bool] = mapped_column(default=True)
