"""`python -m api`: serve the api with uvicorn on HOST:PORT."""

from __future__ import annotations

import sys

import uvicorn

from core.ops.multiprocess import use_metrics_dir
from core.ports import port_in_use_message
from core.settings import load_settings_or_exit


def main() -> None:
    settings = load_settings_or_exit()
    if message := port_in_use_message(settings.host, settings.port, "PORT"):
        print(message, file=sys.stderr)
        raise SystemExit(1)
    # Before uvicorn imports the app (and prometheus-client): every api process writes the
    # role's metrics files there, so /metrics answers for all of them.
    with use_metrics_dir("api"):
        uvicorn.run(
            "api.app:create_asgi_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.web_concurrency,
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )


if __name__ == "__main__":
    main()
