"""Scenario numbers 1-30 of shared/reliability-scenarios.md → the check that proves each one
against the running stack. A check returns a `Verdict`: the audit's tally plus the scenario's
own assertions, each failed one written down as a sentence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from chaos.audit import Tally
from chaos.context import Context


class Verdict(msgspec.Struct, kw_only=True):
    tally: Tally = msgspec.field(default_factory=Tally)
    failures: list[str] = msgspec.field(default_factory=list)
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    skipped: str | None = None
    """Why the check could not run (reported, not counted as a failure)."""

    def expect(self, holds: bool, failure: str) -> bool:
        """Record `failure` unless `holds`; the scenario goes on (all findings get reported)."""
        if not holds:
            self.failures.append(failure)
        return holds

    def audited(self, tally: Tally) -> Verdict:
        """Fold one audit into the verdict (a scenario with sub-cases audits each)."""
        self.tally = self.tally.add(tally)
        return self


Check = Callable[[Context], Verdict]


@dataclass(frozen=True)
class Scenario:
    number: int
    group: str
    title: str
    fault: str
    check: Check
    ci: bool


REGISTRY: dict[int, Scenario] = {}


def scenario(
    number: int, group: str, title: str, fault: str, *, ci: bool = False
) -> Callable[[Check], Check]:
    """Register `check` as scenario `number`; `ci` puts it in the subset `make test` runs."""

    def register(check: Check) -> Check:
        assert number not in REGISTRY, f"scenario {number} registered twice"
        REGISTRY[number] = Scenario(number, group, title, fault, check, ci)
        return check

    return register
