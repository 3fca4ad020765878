"""The reliability harness (`python -m chaos`, `make chaos`): the whole stack as real processes on
embedded servers of its own, faults injected on purpose, and the ledger audit after every scenario.
See docs/reliability.md."""
