"""Layering rules: core imports neither api nor workers; the sandbox imports nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.processes import PROJECT_ROOT

FORBIDDEN = {
    "core": {"api", "workers", "sandbox", "devstack", "tests"},
    "api": {"workers", "sandbox", "devstack", "tests"},
    "workers": {"api", "sandbox", "devstack", "tests"},
    "sandbox": {"core", "api", "workers", "devstack", "tests"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package: str) -> None:
    violations = {
        str(path.relative_to(PROJECT_ROOT)): sorted(imported_top_levels(path) & FORBIDDEN[package])
        for path in (PROJECT_ROOT / package).rglob("*.py")
    }
    assert {file: bad for file, bad in violations.items() if bad} == {}
