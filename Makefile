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

# uPlot, from the npm registry, copied where the dashboard serves it from.
VENDOR := metricstream/dashboard/static/vendor
UPLOT := $(VENDOR)/uPlot.iife.min.js
# The browser tests drive Debian's Chromium, never a downloaded browser.
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint bench screenshot install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(UPLOT): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	mkdir -p $(VENDOR)
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/

$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

install: $(STAMP) $(UPLOT)

run: $(STAMP) $(UPLOT)
	$(BIN)/metricstream demo

test: $(STAMP) $(UPLOT) $(CHROMIUM)
	$(BIN)/ruff check metricstream tests bench
	$(BIN)/ruff format --check metricstream tests bench
	$(TEST_ENV) $(BIN)/pytest

bench: $(STAMP) $(UPLOT) $(CHROMIUM)
	$(TEST_ENV) $(BIN)/python -m bench

# Regenerates docs/screenshot.png (the live view, as the browser test sees it).
screenshot: $(STAMP) $(UPLOT) $(CHROMIUM)
	$(TEST_ENV) SCREENSHOT=docs/screenshot.png $(BIN)/pytest tests/dashboard/test_browser.py -k renders_the_live_view

lint: $(STAMP)
	$(BIN)/ruff check --fix metricstream tests bench
	$(BIN)/ruff format metricstream tests bench

clean:
	rm -rf $(VENV) var *.egg-info node_modules $(VENDOR)
