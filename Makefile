# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv from the lock file (requirements.lock, hashed) on first use; later runs install nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.clawback-installed
UV_BOOTSTRAP := 0.13.9
# Regenerate the lock after editing pyproject.toml dependencies:
#   .venv/bin/uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 --universal -o requirements.lock

export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test lint bench venv clean

demo: $(STAMP)
	$(BIN)/clawback demo

test: $(STAMP)
	.ci/system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_snapshot.py
	$(BIN)/python bench/bench_readonly.py
	$(BIN)/python bench/bench_rollback.py
	$(BIN)/python bench/bench_health.py
	$(BIN)/python bench/bench_preview.py

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_BOOTSTRAP)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	@touch $(STAMP)

clean:
	rm -rf $(VENV)
