"""`python -m devstack.demo`: the demo accounts `make run` creates, so the API can be tried at once.

    admin  admin@kopilka.example  demo-admin-password   (roles: admin)
    user   user@kopilka.example   demo-user-password    (roles: user)

Idempotent: an account that already exists is left as it is. Refuses to run with
ENVIRONMENT=production, where a published password would be an open door.
"""

from __future__ import annotations

import asyncio
import sys

from core.accounts import service
from core.accounts.models import Role
from core.accounts.repository import UserRepository
from core.db import create_engine, create_sessionmaker
from core.settings import Settings, load_settings_or_exit

DEMO_ACCOUNTS = (
    ("admin@kopilka.example", "demo-admin-password", Role.ADMIN),
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
                lines.append(f"    {role:<6} {email:<24} {password:<22} ({state})")
            await session.commit()
    finally:
        await engine.dispose()
    return lines


def main() -> int:
    settings = load_settings_or_exit()
    if settings.environment == "production":
        print("kopilka: demo accounts are never created in production", file=sys.stderr)
        return 1
    lines = asyncio.run(ensure_demo_accounts(settings))
    print("  Demo accounts (POST /api/auth/login):", *lines, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
