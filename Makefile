# tenantdb — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install demo test lint crds run lock bench e2e image chart-lint clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

install: $(STAMP) ## create .venv with the pinned dependencies (requirements.lock)

demo: $(STAMP) ## the whole product on this machine: PostgreSQL + Neon emulator + Kubernetes emulator + operator
	$(BIN)/tenantdb demo

test: $(STAMP) ## unit and integration tests (real PostgreSQL, kopf against the Kubernetes emulator)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, mypy --strict on operator/, import layers
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

crds: $(STAMP) ## regenerate crds/ (and the chart's copy) from the pydantic models
	$(BIN)/tenantdb crds --output-dir crds
	@if [ -d charts/tenantdb/crds ]; then cp crds/*.yaml charts/tenantdb/crds/; fi

run: $(STAMP) ## run the operator against the current kube context (configuration from the environment)
	$(BIN)/tenantdb run

lock: ## re-resolve the pins into requirements.lock (needs uv)
	uv lock
	uv export --format requirements-txt --no-emit-project --all-extras --group dev --no-header -o requirements.lock
	uv export --format requirements-txt --no-emit-project --no-dev --no-header -o requirements-runtime.lock

bench: $(STAMP) ## benchmarks: write bench/results/*.json
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

e2e: $(STAMP) ## real-cluster suite: needs Docker and kind (see README)
	$(BIN)/pytest -m e2e tests/e2e

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .cache
