"""One module per group of shared/reliability-scenarios.md; importing them fills the registry."""

from chaos.scenarios import (  # noqa: F401  (imported for their registrations)
    idempotency,
    ledger,
    processes,
    scheduler,
    security,
    webhooks,
)
from chaos.scenarios.registry import REGISTRY, Scenario, Verdict

__all__ = ["REGISTRY", "Scenario", "Verdict"]
