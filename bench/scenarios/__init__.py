"""The scenarios, in the order `python -m bench` runs them (scale last: it fills the database)."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Context
from bench.scenarios import accept, e2e, scale, slow_rustore, soak, spend, status, webhooks

Scenario = Callable[[Context], None]

SCENARIOS: dict[str, Scenario] = {
    "accept": accept.run,
    "status": status.run,
    "e2e": e2e.run,
    "slow_rustore": slow_rustore.run,
    "webhooks": webhooks.run,
    "spend": spend.run,
    "scale": scale.run,
}
SOAK: dict[str, Scenario] = {"soak": soak.run}
