"""`python -m devstack.demo`: the demo accounts and catalogue `make run` creates, so the API can be
tried at once against the RuStore sandbox (which accepts any product code).

    admin    admin@kopilka.example    demo-admin-password     (roles: admin)
    support  support@kopilka.example  demo-support-password   (roles: support; reads /ops)
    user     user@kopilka.example     demo-user-password      (roles: user)

Idempotent: an account that already exists is left as it is. Refuses to run with
ENVIRONMENT=production, where a published password would be an open door.
"""

from __future__ import annotations

import asyncio
import sys

from core.accounts import service
from core.accounts.models import Role
from core.accounts.repository import UserRepository
from core.catalogue.models import Product, ProductType
from core.catalogue.repository import ProductRepository
from core.db import create_engine, create_sessionmaker
from core.settings import Settings, load_settings_or_exit

DEMO_PRODUCTS = (
    Product(product_id="coins_100", type=ProductType.CONSUMABLE, title="100 coins", points=100,
            price_kopecks=9_900),
    Product(product_id="coins_500", type=ProductType.CONSUMABLE, title="500 coins", points=500,
            price_kopecks=39_900),
    Product(product_id="no_ads", type=ProductType.NON_CONSUMABLE, title="No ads forever",
            points=0, price_kopecks=29_900),
    Product(product_id="premium_monthly", type=ProductType.SUBSCRIPTION, title="Premium, monthly",
            points=0, price_kopecks=19_900),
)  # fmt: skip

DEMO_ACCOUNTS = (
    ("admin@kopilka.example", "demo-admin-password", Role.ADMIN),
    ("support@kopilka.example", "demo-support-password", Role.SUPPORT),
    ("user@kopilka.example", "demo-user-password", Role.USER),
)


async def ensure_demo_accounts(settings: Settings) -> list[str]:
    """Create the missing demo accounts; one printable line per account."""
    engine = create_engine(settings)
    lines = []
    try:
        async with create_sessionmaker(engine)() as session:
            for email, password, role in DEMO_ACCOUNTS:
                existing = await UserRepository(session).get_by_email(email)
                if existing is None:
                    await service.create_user(session, email, password, [role])
                state = "exists, left unchanged" if existing else "created"
                lines.append(f"    {role:<7} {email:<24} {password:<22} ({state})")
            await session.commit()
    finally:
        await engine.dispose()
    return lines


async def ensure_demo_catalogue(settings: Settings) -> list[str]:
    """Add the demo products that are missing; existing ones are left as an admin changed them."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            products = ProductRepository(session)
            for product in DEMO_PRODUCTS:
                if await products.by_product_id(product.product_id) is None:
                    await products.add(product)
            await session.commit()
    finally:
        await engine.dispose()
    return [f"    {p.product_id:<16} {p.type:<15} {p.points:>4} points" for p in DEMO_PRODUCTS]


def main() -> int:
    settings = load_settings_or_exit()
    if settings.environment == "production":
        print("kopilka: demo accounts are never created in production", file=sys.stderr)
        return 1
    lines = asyncio.run(ensure_demo_accounts(settings))
    print("  Demo accounts (POST /api/auth/login):", *lines, sep="\n", flush=True)
    products = asyncio.run(ensure_demo_catalogue(settings))
    print("  Demo catalogue (GET /api/products):", *products, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
