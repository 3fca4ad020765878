# The two commands a new user needs are `make run` and `make test`; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt migrate bench bench-quick bench-soak chaos chaos-soak clean install

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack run

test: $(STAMP)
	$(BIN)/python -m devstack test $(PYTEST_ARGS)

migrate: $(STAMP)
	$(BIN)/python -m devstack migrate

# bandit fails on a medium/high finding without `# nosec BXXX` and a reason; pip-audit fails on a
# known vulnerability in constraints.txt, and (--strict) when a pin could not be looked up, e.g. the
# vulnerability service is unreachable: `make lint PIP_AUDIT_STRICT=` reports that and goes on.
PIP_AUDIT_STRICT ?= --strict

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -c pyproject.toml -r core api workers sandbox devstack bench chaos --severity-level medium --quiet
	$(BIN)/pip-audit -r constraints.txt --no-deps --disable-pip --progress-spinner off $(PIP_AUDIT_STRICT)

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks (docs/performance.md). The `bench` extra adds py-spy for the profile; wrk is not
# used: our generator (bench/load.py) renders unique bodies per request, which wrk cannot.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench --profile $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

bench-soak: $(STAMP)
	$(BIN)/python -m bench --soak $(BENCH_ARGS)

# The reliability harness (docs/reliability.md): scenarios 1-30 against the whole stack as real
# processes on embedded servers of its own, faults injected, the ledger audit after each; a table
# plus JSON in chaos/results/. CHAOS_ARGS="--subset ci" or "--scenario 6 --scenario 12".
chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

chaos-soak: $(STAMP)
	$(BIN)/python -m chaos --soak $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .kopilka .pytest_cache .mypy_cache .ruff_cache
