"""Where a role's processes keep their Prometheus figures, so one scrape sums all of them.

prometheus-client decides between in-memory values and its multiprocess files when it is first
imported, from `PROMETHEUS_MULTIPROC_DIR`; so an entry point calls `use_metrics_dir` before
anything imports it (this module deliberately does not), and the processes it starts (uvicorn
workers, Dramatiq worker processes, Dramatiq's fork for the exposition server) inherit the
variable. Each role needs a directory of its own: files left from an earlier run would add old
figures to the new ones, and two roles sharing one would mix their series.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def use_metrics_dir(role: str) -> Iterator[Path]:
    """Give this process and its children an empty multiprocess directory for the duration.

    An operator's `PROMETHEUS_MULTIPROC_DIR` is used as given and emptied of its `*.db` files
    (nothing else is touched); without one, a fresh temporary directory is made and removed at
    the end.
    """
    given = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=f"kopilka-{role}-metrics-"))
    os.environ[MULTIPROC_DIR_VARIABLE] = str(path)
    try:
        yield path
    finally:
        del os.environ[MULTIPROC_DIR_VARIABLE]
        shutil.rmtree(path, ignore_errors=True)
