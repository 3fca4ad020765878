"""Where the time goes: py-spy (the `bench` extra) sampling a running process from outside, so
the profiled process runs unmodified, while a load runs. Only samples on the CPU count (no
`--idle`): the question is what the cores are spent on. Absent py-spy, profiling is skipped.

py-spy's raw output is one line per distinct stack with its sample count; the summary gives each
function's share of samples on the stack (inclusive) and at its top (self).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.stack import RUN_DIR, Proc

RATE = 100
TOP = 25


def available() -> bool:
    return _py_spy() is not None


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(
    proc: Proc, name: str, seconds: float, *, gil: bool = False
) -> tuple[subprocess.Popen[bytes], Path] | None:
    """Start sampling `proc` and its children for `seconds`; None without py-spy.

    `gil` samples only the thread holding the interpreter: a Dramatiq worker's threads mostly
    wait in `threading` (py-spy cannot always tell such a wait from work), and with the GIL only
    one thread of a process runs Python at a time anyway.
    """
    py_spy = _py_spy()
    if py_spy is None:
        return None
    output = RUN_DIR / f"profile-{name}.txt"
    argv = [
        py_spy, "record", "--pid", str(proc.popen.pid), "--subprocesses",
        "--duration", str(int(seconds)), "--rate", str(RATE), "--format", "raw",
        "--output", str(output), "--nonblocking", *(["--gil"] if gil else []),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), output


def finish(running: tuple[subprocess.Popen[bytes], Path] | None) -> dict[str, Any]:
    if running is None:
        return {}
    popen, output = running
    popen.wait(timeout=120)
    return summarize(output) if output.exists() else {}


def summarize(path: Path) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_short(frame) for frame in stack.split(";")[1:]]  # the first is the process
        for frame in set(frames):
            inclusive[frame] += samples
        if frames:
            own[frames[-1]] += samples

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / total, 1)) for frame, n in counter.most_common(TOP)]

    return {"samples": total, "file": str(path), "inclusive_pct": shares(inclusive),
            "self_pct": shares(own)}  # fmt: skip


def _short(frame: str) -> str:
    """`func (path/to/module.py:123)` without the line number and the site-packages prefix."""
    function, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0].split("site-packages/")[-1].split("/work/main/")[-1]
    return f"{function} ({module})"
