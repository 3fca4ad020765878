"""`python -m workers [dramatiq options]`: check settings, then run Dramatiq's own worker CLI.

Checking first means a bad setting is one clear line from this process instead of a crash
reported by each of Dramatiq's child processes.
"""

from __future__ import annotations

import sys

from dramatiq.cli import main as dramatiq_main

from core.settings import load_settings_or_exit


def main() -> None:
    load_settings_or_exit()
    sys.argv = ["dramatiq", "workers.main", "--skip-logging", *sys.argv[1:]]
    raise SystemExit(dramatiq_main())  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
