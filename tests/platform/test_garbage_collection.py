"""The api's and the workers' processes settle the garbage collector once they are up
(core.garbage_collection). Each check runs in a process of its own: freezing is for the life of a
process, and this one runs the whole suite."""

from __future__ import annotations

import subprocess
import sys

import msgspec

from core.garbage_collection import YOUNG_GENERATION_THRESHOLD
from tests.fixtures.processes import PROJECT_ROOT

REPORT = "import gc, json; print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0]]))"


def _run(code: str, env: dict[str, str]) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    frozen, threshold = msgspec.json.decode(done.stdout.splitlines()[-1])
    return frozen, threshold


def test_a_fresh_process_has_nothing_frozen(base_env: dict[str, str]) -> None:
    frozen, threshold = _run("", base_env)
    assert frozen == 0
    assert threshold < YOUNG_GENERATION_THRESHOLD  # the interpreter's default (700 in 3.11)


def test_the_api_settles_once_its_app_is_built(base_env: dict[str, str]) -> None:
    frozen, threshold = _run("from api.app import create_asgi_app; create_asgi_app()", base_env)
    assert frozen > 50_000  # the modules and the app: the permanent graph
    assert threshold == YOUNG_GENERATION_THRESHOLD


def test_the_worker_settles_once_it_has_booted(base_env: dict[str, str]) -> None:
    # Booted on a queue nothing is sent to, so it takes no message another test left behind.
    boot = (
        "import dramatiq, workers.main\n"
        "worker = dramatiq.Worker(\n"
        "    workers.main.broker, queues={'no-such-queue'}, worker_threads=1\n"
        ")\n"
        "worker.start()\n"
        "worker.stop()"
    )
    frozen, threshold = _run(boot, base_env)
    assert frozen > 50_000
    assert threshold == YOUNG_GENERATION_THRESHOLD
