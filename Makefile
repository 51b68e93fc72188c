# tenantdb — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# The suite mostly waits (kopf, the emulators, polls): two processes, each a whole test file at a
# time (module fixtures stay whole), take about half the time on two cores.
PYTEST_WORKERS ?= 2
BENCH_FULL ?=

IMAGE ?= tenantdb
TAG ?= $(shell $(PYTHON) -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")

.PHONY: help install demo test lint crds run lock bench bench-full e2e image chart-lint clean kube-assets promtool dashboard

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

test: $(STAMP) ## every tier but e2e: unit, integration (kopf on the emulator), real kube-apiserver (tests/apiserver)
	@# The real API server tier needs its binaries: built once with Go (cached), else the tier skips.
	@if [ -z "$${KUBEBUILDER_ASSETS:-}" ] && { command -v go >/dev/null || test -x /usr/local/go/bin/go; }; then \
	  PATH="$$PATH:/usr/local/go/bin" tools/kube-assets/build.sh >/dev/null \
	    || echo "make test: kube-assets could not be built; tests/apiserver will say why" >&2; \
	fi
	@# The alerts' unit tests run Prometheus' promtool: built once with Go (cached), else they skip.
	@if [ -z "$${PROMTOOL:-}" ] && { command -v go >/dev/null || test -x /usr/local/go/bin/go; }; then \
	  PATH="$$PATH:/usr/local/go/bin" tools/promtool/build.sh >/dev/null \
	    || echo "make test: promtool could not be built; tests/deploy/test_alerts.py will say why" >&2; \
	fi
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

kube-assets: ## build kube-apiserver, etcd, kube-controller-manager (pinned release, Go) into a cache; print the folder
	@tools/kube-assets/build.sh

promtool: ## build Prometheus' promtool (pinned release, Go) into a cache, for the alerts' tests; print its path
	@tools/promtool/build.sh

dashboard: $(STAMP) ## rebuild the chart's Grafana dashboard (charts/tenantdb/dashboards/) with Grafana's foundation SDK
	$(BIN)/python tools/grafana/dashboard.py

lint: $(STAMP) ## ruff, mypy --strict on operator/, import layers
	$(BIN)/ruff check operator tests bench tools/grafana
	$(BIN)/ruff format --check operator tests bench tools/grafana
	$(BIN)/mypy
	$(BIN)/mypy --strict tools/grafana/dashboard.py
	$(BIN)/lint-imports

crds: $(STAMP) ## regenerate crds/ and the chart's and Kustomize base's copies from the pydantic models
	$(BIN)/tenantdb crds --output-dir crds
	cp crds/*.yaml charts/tenantdb/crds/
	cp crds/*.yaml manifests/base/crds/

chart-lint: $(STAMP) ## render, lint and validate the chart, overlays, Argo CD health checks, Dockerfile
	$(BIN)/pytest tests/deploy

image: ## build the operator image and the Neon-emulator image (needs Docker)
	docker build --target runtime -t $(IMAGE):$(TAG) .
	docker build --target emulator -t $(IMAGE):$(TAG)-emulator .

run: $(STAMP) ## run the operator against the current kube context (configuration from the environment)
	$(BIN)/tenantdb run

lock: ## re-resolve the pins into requirements.lock (needs uv)
	uv lock
	uv export --format requirements-txt --no-emit-project --all-extras --group dev --no-header -o requirements.lock
	uv export --format requirements-txt --no-emit-project --no-dev --no-header -o requirements-runtime.lock
	uv export --format requirements-txt --no-emit-project --no-dev --extra testing --no-header -o requirements-emulator.lock

bench: $(STAMP) ## benchmarks, quick (~7-8 min in all): print the numbers, write bench/results/quick/ (BENCH_FULL=1: bench-full)
	@all=$$(date +%s); for b in bench/[!_]*.py; do \
	  echo "== $$b $(if $(BENCH_FULL),--full)"; one=$$(date +%s); \
	  $(BIN)/python $$b $(if $(BENCH_FULL),--full) || exit 1; \
	  echo "== $$b: $$(( $$(date +%s) - one )) s"; \
	done; echo "== make bench$(if $(BENCH_FULL), (full size)): $$(( $$(date +%s) - all )) s in all"

bench-full: ## benchmarks at full size (30,000 tenants; well over an hour): write bench/results/*.json to commit
	@$(MAKE) --no-print-directory bench BENCH_FULL=1

e2e: $(STAMP) ## real-cluster suite on a throwaway kind cluster: needs Docker and kind (see README)
	TENANTDB_E2E=1 $(BIN)/pytest -m e2e tests/e2e

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .cache
