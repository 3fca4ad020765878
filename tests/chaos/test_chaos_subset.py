"""The CI subset of the reliability harness (docs/reliability.md): the scenarios that matter most,
shortened, against the whole stack as real processes on embedded servers of the harness's own
(never the DATABASE_URL/REDIS_URL servers of this test run, which it must not restart)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos import report, runner
from chaos.scenarios import REGISTRY
from devstack import STATE_DIR

CI_SUBSET = sorted(number for number, scenario in REGISTRY.items() if scenario.ci)


@pytest.mark.slow
def test_ci_subset_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rows = runner.run(
        CI_SUBSET, full=False, environ=dict(os.environ), data_dir=STATE_DIR / "chaos-ci"
    )
    report.write(rows, report.machine(), "ci", out=tmp_path)

    assert [row.number for row in rows] == CI_SUBSET
    assert sum(row.tally.lost for row in rows) == 0
    assert sum(row.tally.duplicated for row in rows) == 0
    failed = {row.number: row.failures or row.tally for row in rows if not row.passed}
    assert not failed, report.table(rows)
