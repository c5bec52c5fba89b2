# Two entry points for a fresh machine: `make run` (the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run test lint data reproduce-quick export embed benchmarks

# The app needs only its runtime (no torch); the tests need everything.
$(VENV)/.app-installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.all-installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.app-installed $@

# The page's in-browser inference (onnxruntime-web, served by the app itself): pinned in package.json, its integrity
# hashes in package-lock.json; `npm ci` installs exactly that into node_modules/ (git-ignored), nothing comes from a CDN.
# Without it the app still runs and the server answers every drawing (the page says so).
node_modules/.npm-installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.app-installed node_modules/.npm-installed
	$(PY) app.py --host $(HOST) --port $(PORT)

# The browser tests are part of the suite: without Chromium the run fails and says why (never skips them).
test: $(VENV)/.all-installed node_modules/.npm-installed
	bash scripts/ensure_chromium.sh
	$(PY) -m ruff check .
	EMNIST_REQUIRE_BROWSER=1 $(PY) -m pytest

lint: $(VENV)/.all-installed
	$(PY) -m ruff check .

data: $(VENV)/.all-installed
	$(PY) -m training data --protocol pool

reproduce-quick: $(VENV)/.all-installed
	$(PY) -m training reproduce all --profile quick --workers 2

export: $(VENV)/.all-installed
	$(PY) -m training export

embed: $(VENV)/.all-installed
	$(PY) -m training embed

benchmarks: $(VENV)/.all-installed
	$(PY) benchmarks/train_throughput.py
