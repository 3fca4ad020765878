"""`python -m core.accounts.cli create-admin --email ops@example.com`: the first admin account.

The password is read from KOPILKA_ADMIN_PASSWORD, or from stdin with `--password-stdin`, or asked
for interactively; never from the command line, where other local users can read it in the process
list. It must meet the usual password policy.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from core.accounts import service
from core.accounts.models import Role
from core.db import create_engine, create_sessionmaker
from core.errors import KopilkaError
from core.settings import load_settings_or_exit

PASSWORD_ENV = "KOPILKA_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if password := os.environ.get(PASSWORD_ENV):
        return password
    return getpass.getpass("Password for the new admin: ")


async def create_admin(email: str, password: str) -> str:
    engine = create_engine(load_settings_or_exit())
    try:
        async with create_sessionmaker(engine)() as session:
            user = await service.create_user(session, email, password, [Role.ADMIN])
            await session.commit()
            return str(user.id)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.accounts.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create an account with the admin role")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    args = parser.parse_args(argv)
    try:
        user_id = asyncio.run(create_admin(args.email, read_password(args.password_stdin)))
    except KopilkaError as exc:
        print(f"kopilka: {exc.detail}", file=sys.stderr)
        return 1
    print(f"admin {args.email} created (id {user_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
