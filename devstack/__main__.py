"""`python -m devstack run|test|migrate`: what `make run`, `make test` and `make migrate` do."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import honcho.manager
import httpx
from alembic import command
from alembic.config import Config
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from core.ports import port_in_use_message
from devstack import PROJECT_ROOT
from devstack.envfile import ensure_env_file, read_env_file
from devstack.stack import Stack

ENV_FILE = PROJECT_ROOT / ".env"
VENV_BIN = Path(sys.executable).parent
APP_PORTS = (("PORT", 8000), ("SANDBOX_PORT", 8090))
SHUTDOWN_GRACE_SECONDS = 20


def migrate(env: dict[str, str]) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = env["DATABASE_URL"]
    command.upgrade(config, "head")


def process_env(base: dict[str, str]) -> dict[str, str]:
    env = {**base, "PATH": f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run(_: argparse.Namespace) -> int:
    ensure_env_file(ENV_FILE)
    base = process_env({**read_env_file(ENV_FILE), **os.environ})
    for variable, default in APP_PORTS:
        if message := port_in_use_message("127.0.0.1", int(base.get(variable, default)), variable):
            print(message, file=sys.stderr)
            return 1
    stack = Stack(base)
    try:
        env = stack.up(test=False)
        migrate(env)
        subprocess.run([sys.executable, "-m", "devstack.demo"], env=env, check=True)
        return _supervise(env)
    finally:
        stack.down()


def _supervise(env: dict[str, str]) -> int:
    """Run every Procfile process under honcho until Ctrl-C, which stops them all."""
    procfile = parse_procfile((PROJECT_ROOT / "Procfile").read_text())
    # Dramatiq finishes in-flight jobs on SIGTERM, which takes longer than honcho's default 5 s
    # before SIGKILL; honcho reads this module constant and offers no option for it.
    honcho.manager.KILL_WAIT = SHUTDOWN_GRACE_SECONDS
    manager = Manager(Printer(sys.stdout))
    for name, command_line in procfile.processes.items():
        manager.add_process(name, command_line, env=env, cwd=str(PROJECT_ROOT))
    threading.Thread(target=_announce_when_ready, args=(env,), daemon=True).start()
    manager.loop()
    return int(manager.returncode or 0)


def _announce_when_ready(env: dict[str, str]) -> None:
    api = f"http://127.0.0.1:{env.get('PORT', '8000')}"
    sandbox = f"http://127.0.0.1:{env.get('SANDBOX_PORT', '8090')}"
    for _ in range(600):
        try:
            if httpx.get(f"{api}/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        print("kopilka: the api did not become ready; see the log above", file=sys.stderr)
        return
    print(
        "\n"
        "  Kopilka is up.\n"
        f"    Ops dashboard   {api}/ops  (docs/dashboard.md)\n"
        f"    API docs        {api}/schema\n"
        f"    OpenAPI JSON    {api}/schema/openapi.json\n"
        f"    Health          {api}/health/ready\n"
        f"    RuStore sandbox {sandbox}  (control API: docs/sandbox.md)\n"
        f"    Database        {env['DATABASE_URL']}\n"
        f"    Redis           {env['REDIS_URL']}\n"
        "  Press Ctrl-C to stop everything.\n",
        flush=True,
    )


def test(args: argparse.Namespace) -> int:
    stack = Stack(dict(os.environ))
    try:
        env = process_env(stack.up(test=True))
        migrate(env)
        return subprocess.run(
            [sys.executable, "-m", "pytest", *args.pytest_args], env=env
        ).returncode
    finally:
        stack.down()


def migrate_command(_: argparse.Namespace) -> int:
    stack = Stack({**read_env_file(ENV_FILE), **os.environ})
    try:
        migrate(stack.up(test=False))
    finally:
        stack.down()
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(required=True)
    commands.add_parser("run", help="set up and start every process").set_defaults(handler=run)
    test_parser = commands.add_parser(
        "test", help="set up and run the test suite; other arguments go to pytest"
    )
    test_parser.set_defaults(handler=test)
    commands.add_parser("migrate", help="apply migrations").set_defaults(handler=migrate_command)
    # Everything this parser does not know (paths, -x, -k …) is pytest's.
    args, pytest_args = parser.parse_known_args(argv)
    if pytest_args and args.handler is not test:
        parser.error(f"unrecognized arguments: {' '.join(pytest_args)}")
    args.pytest_args = pytest_args
    return args


def main() -> None:
    args = parse(sys.argv[1:])
    raise SystemExit(args.handler(args))


if __name__ == "__main__":
    main()
