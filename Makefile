# VetConnect — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install lock demo test test-fast lint bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the exact locked versions

lock: ## Re-resolve requirements.lock from pyproject.toml (lower bounds live there)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

demo: install ## Start embedded PostgreSQL, load the demo world, open the app with Animana (the simulator) beside it
	$(BIN)/vetconnect demo

test: install ## Run the whole test suite against a real (embedded) PostgreSQL
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: install ## Tests without the browser ones
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not browser and not slow"

lint: install ## ruff
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install ## Run the tenancy benchmark (figures go to stdout; other benches: bench/*.py --help)
	$(BIN)/python bench/tenancy.py

clean: ## Stop the embedded server and remove the venv
	-$(BIN)/vetconnect db stop
	rm -rf $(VENV)
