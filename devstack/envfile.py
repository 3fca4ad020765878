"""The `.env` file `make run` creates once: secrets and the sandbox's key pair, wired both ways."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values

HEADER = """\
# Created by `make run` on first start; ignored by git. Kopilka talks to the local RuStore sandbox.
# Delete this file to generate new keys. Every variable is documented in .env.example.
"""


def ensure_env_file(path: Path) -> None:
    if path.exists():
        return
    keys = subprocess.run(
        [sys.executable, "-m", "sandbox", "keygen"], check=True, capture_output=True, text=True
    ).stdout
    path.write_text(f"{HEADER}JWT_SECRET={secrets.token_urlsafe(48)}\n{keys}")
    path.chmod(0o600)


def read_env_file(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None}
