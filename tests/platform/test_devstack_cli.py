"""`make test PYTEST_ARGS=…` hands any pytest arguments through; other commands take none."""

from __future__ import annotations

import pytest

from devstack import __main__ as cli


def test_pytest_arguments_pass_through_in_order() -> None:
    args = cli.parse(["test", "-q", "-x", "tests/platform", "-k", "health"])
    assert args.handler is cli.test
    assert args.pytest_args == ["-q", "-x", "tests/platform", "-k", "health"]


def test_other_commands_refuse_unknown_arguments() -> None:
    with pytest.raises(SystemExit):
        cli.parse(["migrate", "-x"])
