"""`make bench`: the benchmark harness (runs from the checkout; not part of the package)."""
