# Two commands: `make run` (the product, embedded default) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The test suite talks to the real PostgreSQL and Redis on this machine.
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/metricstream} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/0} \
	SECRET_KEY=metricstream-test-secret-key

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/metricstream demo

test: $(STAMP)
	$(BIN)/ruff check metricstream tests bench
	$(BIN)/ruff format --check metricstream tests bench
	$(TEST_ENV) $(BIN)/pytest

bench: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check --fix metricstream tests bench
	$(BIN)/ruff format metricstream tests bench

clean:
	rm -rf $(VENV) var *.egg-info
