"""Local set-up for `make run` and `make test`: embedded PostgreSQL and Redis, `.env`, processes.

Nothing here is imported by `core/`, `api/` or `workers/`; production runs with real servers
given by `DATABASE_URL` and `REDIS_URL`.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = PROJECT_ROOT / ".kopilka"
