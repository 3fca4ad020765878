"""`python -m workers [dramatiq options]`: check settings, then run Dramatiq's own worker CLI.

Checking first means a bad setting is one clear line from this process instead of a crash
reported by each of Dramatiq's child processes.

Metrics: every worker process writes the role's prometheus-client files in one directory set up
here, before any of them imports prometheus-client, and unless WORKER_METRICS_PORT is 0 Dramatiq
forks one more process (`serve_metrics`) that answers scrapes with all of them summed.
"""

from __future__ import annotations

import sys
import threading

from dramatiq.cli import main as dramatiq_main

from core.ops.multiprocess import use_metrics_dir
from core.settings import get_settings, load_settings_or_exit

METRICS_FORK = "workers.__main__:serve_metrics"


def main() -> None:
    settings = load_settings_or_exit()
    forks = ["--fork-function", METRICS_FORK] if settings.worker_metrics_port else []
    sys.argv = ["dramatiq", "workers.main", "--skip-logging", *forks, *sys.argv[1:]]
    with use_metrics_dir("worker"):
        code = dramatiq_main()  # type: ignore[no-untyped-call]
    raise SystemExit(code)


def serve_metrics() -> int:
    """Dramatiq fork process: serve the worker role's metrics until Dramatiq stops it."""
    from core import metrics  # after the fork, with the metrics directory in the environment
    from core.logging import configure_logging
    from core.ports import port_in_use_message

    settings = get_settings()
    configure_logging("worker", settings.log_level)
    host, port = settings.host, settings.worker_metrics_port
    if message := port_in_use_message(host, port, "WORKER_METRICS_PORT"):
        # The workers go on without their endpoint: payments matter more than metrics.
        print(message, file=sys.stderr)
        return 1
    metrics.serve(host, port)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    main()
