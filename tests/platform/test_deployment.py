"""What can be checked of the deployment files without a Docker engine: they parse, every command
they run exists, and their variables are exactly the ones the settings read."""

from __future__ import annotations

import importlib.util
import re
import shlex
from typing import Any

import msgspec
import pytest
import yaml
from honcho.environ import parse_procfile

from core.settings import Settings
from tests.fixtures.processes import PROJECT_ROOT

KOPILKA_SERVICES = ("migrate", "api", "worker", "scheduler")
SETTINGS_NAMES = {field.encode_name for field in msgspec.structs.fields(Settings)}
REQUIRED_NAMES = {field.encode_name for field in msgspec.structs.fields(Settings) if field.required}
PROCESS_ONLY_NAMES = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PATH"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    return loaded


def assert_command_exists(argv: list[str]) -> None:
    if argv[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}"
    elif argv[0] == "alembic":
        assert (PROJECT_ROOT / "alembic.ini").exists()
        assert importlib.util.find_spec("alembic") is not None
    else:
        pytest.fail(f"unexpected command {argv}")


def test_backing_services_have_health_checks_and_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose["volumes"]


@pytest.mark.parametrize("service", KOPILKA_SERVICES)
def test_kopilka_service_runs_an_existing_command_from_the_image(
    compose: dict[str, Any], service: str
) -> None:
    definition = compose["services"][service]
    assert definition["build"] == "."
    assert_command_exists(definition["command"])
    for dependency in ("postgres", "redis"):
        assert definition["depends_on"][dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", KOPILKA_SERVICES)
def test_kopilka_service_environment_matches_settings(
    compose: dict[str, Any], service: str
) -> None:
    environment = set(compose["services"][service]["environment"])
    assert environment - SETTINGS_NAMES == set()
    assert REQUIRED_NAMES - environment == set()


def test_migrations_run_before_the_api_starts(compose: dict[str, Any]) -> None:
    condition = compose["services"]["api"]["depends_on"]["migrate"]["condition"]
    assert condition == "service_completed_successfully"


POOLS_PER_PROCESS = 2


def test_database_connections_fit_the_pools_and_the_server(compose: dict[str, Any]) -> None:
    """Each worker thread can hold a pooled connection, and every process filling both its pools
    at once (SQLAlchemy's and asyncpg's, `core.db`) still leaves PostgreSQL room for migrations
    and psql."""
    services = compose["services"]
    postgres = services["postgres"]["command"]
    limit = int(postgres[postgres.index("-c") + 1].removeprefix("max_connections="))
    web_concurrency = services["api"]["environment"]["WEB_CONCURRENCY"]
    default = re.fullmatch(r"\$\{WEB_CONCURRENCY:-(\d+)\}", web_concurrency)
    assert default is not None
    web_processes = int(default[1])
    worker = services["worker"]["command"]
    worker_processes = int(worker[worker.index("--processes") + 1])
    worker_threads = int(worker[worker.index("--threads") + 1])
    settings = {field.name: field.default for field in msgspec.structs.fields(Settings)}
    pool_size = settings["database_pool_size"]

    assert worker_threads <= pool_size
    processes = web_processes + worker_processes + 1  # + 1: the scheduler
    assert processes * POOLS_PER_PROCESS * pool_size + 10 <= limit


def test_procfile_has_every_process_and_each_command_exists() -> None:
    procfile = parse_procfile((PROJECT_ROOT / "Procfile").read_text())
    assert set(procfile.processes) == {"web", "worker", "scheduler", "sandbox"}
    for entry in procfile.processes.values():
        assert_command_exists(shlex.split(entry))


def test_dockerfile_copies_existing_paths_and_runs_the_api() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+?) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (PROJECT_ROOT / path).exists(), path
    assert 'CMD ["python", "-m", "api"]' in dockerfile


def test_env_example_documents_exactly_the_settings() -> None:
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    documented = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert documented == SETTINGS_NAMES | (documented & PROCESS_ONLY_NAMES)


def test_readme_names_every_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert sorted(name for name in SETTINGS_NAMES if f"`{name}`" not in readme) == []
