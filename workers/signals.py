"""Make a worker process treat one stop request delivered twice as one request.

Supervisors such as honcho (make run) and Kubernetes signal the whole process group, and
Dramatiq's master also forwards the signal to its children, so each child receives SIGTERM twice
within milliseconds. Dramatiq reads a second SIGTERM as "kill now" and exits from the signal
handler while its worker threads still run, which leaves the process hanging until SIGKILL. A
second SIGTERM within a short window is therefore dropped; a later one still forces the exit.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

DUPLICATE_WINDOW_SECONDS = 2.0
DRAMATIQ_CHILD_HANDLER = "worker_process.<locals>.termhandler"


def tolerate_duplicate_stop_signal() -> None:
    """Wrap Dramatiq's SIGTERM handler; only in a Dramatiq worker child, where it is installed."""
    dramatiq_handler = signal.getsignal(signal.SIGTERM)
    if getattr(dramatiq_handler, "__qualname__", "") != DRAMATIQ_CHILD_HANDLER:
        return
    assert callable(dramatiq_handler)
    first_at: float | None = None

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal first_at
        now = time.monotonic()
        if first_at is not None and now - first_at < DUPLICATE_WINDOW_SECONDS:
            return
        first_at = first_at or now
        dramatiq_handler(signum, frame)

    signal.signal(signal.SIGTERM, handler)
