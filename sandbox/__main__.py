"""`python -m sandbox serve [--host --port]` and `python -m sandbox keygen`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from sandbox.app import create_app
from sandbox.config import ConfigError, load_config
from sandbox.faults import FaultReset
from sandbox.keys import encode_registered_keys, generate_key_pair, generate_webhook_key

DEFAULT_KOPILKA_URL = "http://127.0.0.1:8000"


class _HideInjectedResets(logging.Filter):
    """uvicorn logs a traceback for every injected connection reset; they are on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, FaultReset):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def serve(host: str | None, port: int | None) -> None:
    try:
        config = load_config()
    except ConfigError as exc:
        sys.exit(str(exc))
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("uvicorn.error").addFilter(_HideInjectedResets())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the delivery log says it better
    uvicorn.run(
        create_app(config),
        host=host or config.host,
        port=port or config.port,
        log_config=None,
        access_log=config.log_level.upper() == "DEBUG",
        timeout_graceful_shutdown=1,
        # The sandbox's state lives in this one process. Without this, uvicorn would take
        # WEB_CONCURRENCY (the api's setting, in the same .env) from the environment.
        workers=1,
    )


def keygen(args: argparse.Namespace) -> None:
    """Print `NAME=value` lines for both sides: Kopilka's RUSTORE_* and the sandbox's SANDBOX_*."""
    pair = generate_key_pair()
    webhook_key, test_webhook_key = generate_webhook_key(), generate_webhook_key()
    lines = {
        "RUSTORE_API_URL": f"http://{args.host}:{args.port}",
        "RUSTORE_KEY_ID": pair.key_id,
        "RUSTORE_PRIVATE_KEY": pair.private_key,
        "RUSTORE_APP_ID": str(args.app_id),
        "RUSTORE_PACKAGE_NAME": args.package_name,
        "RUSTORE_WEBHOOK_KEY": webhook_key,
        "RUSTORE_SANDBOX_WEBHOOK_KEY": test_webhook_key,
        "SANDBOX_PORT": str(args.port),
        "SANDBOX_KEYS": encode_registered_keys({pair.key_id: pair.public_key}),
        "SANDBOX_APP_ID": str(args.app_id),
        "SANDBOX_PACKAGE_NAME": args.package_name,
        "SANDBOX_WEBHOOK_URL": f"{args.kopilka_url}/api/webhooks/rustore",
        "SANDBOX_WEBHOOK_KEY": webhook_key,
        "SANDBOX_TEST_WEBHOOK_URL": f"{args.kopilka_url}/api/webhooks/rustore/sandbox",
        "SANDBOX_TEST_WEBHOOK_KEY": test_webhook_key,
    }
    print("\n".join(f"{name}={value}" for name, value in lines.items()))


def main(argv: list[str] | None = None) -> None:
    defaults = load_config()
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the emulator")
    run.add_argument("--host", default=None, help="default: SANDBOX_HOST or 127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default: SANDBOX_PORT or 8090")
    gen = commands.add_parser("keygen", help="print fresh keys as NAME=value lines")
    gen.add_argument("--host", default=defaults.host)
    gen.add_argument("--port", type=int, default=defaults.port)
    gen.add_argument("--app-id", type=int, default=defaults.app_id)
    gen.add_argument("--package-name", default=defaults.package_name)
    gen.add_argument(
        "--kopilka-url",
        default=os.environ.get("KOPILKA_URL", DEFAULT_KOPILKA_URL),
        help="where Kopilka's webhook endpoints live (default: $KOPILKA_URL or %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port)
    else:
        keygen(args)


if __name__ == "__main__":
    main()
