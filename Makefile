# streamlearn developer tasks. `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JARS := $(VENV)/.broker-jars
REGISTRY := $(VENV)/registry/quarkus-app/quarkus-run.jar
REGISTRY_POM := $(wildcard compose/registry/pom.xml compose/registry/settings.xml compose/registry/src/main/resources/*)

.DEFAULT_GOAL := help
.PHONY: help setup registry-jars demo test test-unit chaos bench profile up down lint format check clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) $(JARS) ## Create .venv (Python 3.11+), install the project with dev tools, fetch the broker jars

$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	    || { echo "Python 3.11+ is needed: run make with PY=python3.11 (or newer)" >&2; exit 1; }; \
	  $(PY) -m venv $(VENV) && $(BIN)/python -m pip install -q --upgrade pip; \
	fi
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

$(JARS): compose/pom.xml
	@if command -v mvn > /dev/null; then \
	  echo "fetching the local Kafka broker's jars with Maven"; \
	  mvn -q -B -f compose/pom.xml dependency:build-classpath -Dmdep.outputFile=$(CURDIR)/$@; \
	else \
	  echo "warning: Maven not found; install maven (and Java 17+) for the local broker" >&2; \
	fi

# Not part of setup: the first build takes about 2 minutes (Maven re-runs Apicurio's Quarkus
# build); afterwards it is skipped until compose/registry/ changes.
registry-jars: $(REGISTRY) ## Build the local schema registry (Apicurio) into .venv/registry

$(REGISTRY): $(STAMP) $(REGISTRY_POM)
	@if command -v mvn > /dev/null; then \
	  echo "building the local schema registry with Maven (about 2 minutes the first time)"; \
	  $(BIN)/python -c 'import sys; from pathlib import Path; from streamlearn.tools import registry_local; \
	    sys.excepthook = lambda kind, exc, tb: print(f"error: {exc}", file=sys.stderr); \
	    registry_local.build(Path("$(VENV)/registry"))' && touch $@; \
	else \
	  echo "warning: Maven not found; install maven (and Java 17+) for the local schema registry" >&2; \
	fi

demo: setup ## Start the local broker and run the end-to-end demo
	$(BIN)/streamlearn demo

test: setup registry-jars ## Run all tests (integration tests start their own broker and registry)
	$(BIN)/pytest -q

chaos: setup ## Fault-injection suite and its table (CHAOS_PROFILE=full for the long profile)
	$(BIN)/pytest -q -m chaos -s tests/chaos

test-unit: setup ## Run the tests that need no broker
	$(BIN)/pytest -q -m "not integration"

# e.g. make bench BENCH_ARGS="--quick --json /tmp/bench.json"
BENCH_ARGS ?=
bench: setup ## Issue 9's figures in one run, ~7 min (BENCH_ARGS="--quick --json FILE")
	$(BIN)/streamlearn bench $(BENCH_ARGS)

# e.g. make profile PROFILE_ARGS=--quick
PROFILE_ARGS ?=
PROFILER := $(VENV)/.profile-installed
profile: setup $(PROFILER) ## A py-spy flame graph and loop-stall table per bench phase, ~5 min (PROFILE_ARGS=--quick)
	$(BIN)/python -m streamlearn.tools.bench.profile --out .streamlearn/profile $(PROFILE_ARGS)

$(PROFILER): pyproject.toml
	$(BIN)/python -m pip install -q -e '.[profile]'
	@touch $@

up: setup ## Start the local Kafka broker
	$(BIN)/streamlearn up

down: ## Stop the local Kafka broker
	$(BIN)/streamlearn down

lint: setup ## ruff (lint, format), mypy, and the import contract of the floors
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test-unit ## Lint and unit tests

clean: ## Stop the local broker and remove local state (.streamlearn), keep .venv
	@if [ -x $(BIN)/python ]; then \
	  $(BIN)/python -c 'from streamlearn.tools import broker; from streamlearn.foundation.settings import Settings; broker.down(Settings())' || true; \
	fi
	rm -rf .streamlearn .pytest_cache .ruff_cache
