# The two quickstart commands are `make run` and `make test`; CI runs `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format system-deps bench-quick chaos fuzz clean

system-deps:
	scripts/system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hashsvc serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps lint
	$(BIN)/pytest

# Benchmarks print figures; --quick forms only check correctness (CI runs this target).
bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_index.py --quick

# Full forms of the fault-injection tests (tests/reliability) and of the S6 flood, with their
# ledgers printed.
chaos: system-deps $(STAMP)
	$(BIN)/pytest tests/reliability tests/security/test_s6_flood.py --full-chaos -s -p no:cacheprovider -o timeout=900

# Full form of the decode-path fuzzer (CI runs a 2-minute form inside `make test`).
fuzz: $(STAMP)
	$(BIN)/python -m tests.security.fuzz_decode -max_total_time=1800

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
