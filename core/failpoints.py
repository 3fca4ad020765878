"""Named crash points for fault-injection tests.

`KOPILKA_FAILPOINTS=purchase.after_confirm` makes a process die at that point exactly as a
SIGKILL would (no cleanup, no ack), so tests can prove recovery from the worst moments of the
pipeline against real processes. Unset in every normal run, where a failpoint costs one lookup.
"""

from __future__ import annotations

import os
from functools import cache

ENV_VAR = "KOPILKA_FAILPOINTS"
KILLED_EXIT_CODE = 137


@cache
def _armed() -> frozenset[str]:
    return frozenset(name for name in os.environ.get(ENV_VAR, "").split(",") if name)


def failpoint(name: str) -> None:
    if name in _armed():
        os._exit(KILLED_EXIT_CODE)
