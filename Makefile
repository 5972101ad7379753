# Set-up is part of every target: .venv is created and the project installed when missing
# or when pyproject.toml changed.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3
# dvc runs each stage's `zoo ...` through the shell: put the project's tools first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: install repro repro-paper test test-fast ui ui-paper bench clean lock

install: $(STAMP)

# constraints.txt holds the exact versions `make test` last passed with: every install uses them.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	set -o pipefail; $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]' 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $(STAMP)

## Refresh constraints.txt: the newest versions pyproject.toml allows, resolved in a fresh
## virtual environment; then run `make test` before committing the new file.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	{ echo "# Exact versions rnngan-zoo's tests passed with; refreshed by 'make lock'."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | sed 's/+[a-z0-9.]*$$//'; } > constraints.txt
	rm -rf .lock-venv
	@echo "constraints.txt refreshed: run make test, then commit it"

## The whole pipeline on the embedded default data (offline).
repro: install
	@mkdir -p logs && date +%Y-%m-%dT%H:%M:%S > logs/repro.started
	zoo warm dvc repro
	@$(BIN)/python benchmarks/pipeline.py > /dev/null 2>&1 && echo "Per-stage times and peak memory: logs/pipeline_timing.md" || true
	@echo
	@echo "Results:"
	@echo "  reports/leaderboard.md   the comparison, one table per task (and its plots)"
	@echo "  metrics/*.json           per-experiment metrics (dvc metrics show)"
	@echo "  plots/<experiment>/      per-experiment plots, curves/<experiment>.csv training curves (dvc plots show)"
	@echo "  make ui                  the MLflow dashboard: every run, its metrics and artifacts"

## The paper profile (profiles/paper): the comparisons that need more than the default hour on
## two CPU cores (the 25-Gaussian grid, XML at four times the text, arithmetic) and the public
## data sets at the papers' scale (made for a GPU; the first run downloads them). Its outputs,
## reports and MLflow store stay in profiles/paper; the default profile's are untouched.
repro-paper: install
	cd profiles/paper && zoo warm dvc repro
	@echo
	@echo "Results: profiles/paper/reports/leaderboard.md and claims.md; make ui-paper: its MLflow dashboard"

## Unit tests, the CLI, the real pipeline end to end on shrunken parameters, and the MLflow
## dashboard rendered by headless Chromium (installed when missing).
test: install chromium
	$(BIN)/python -m pytest

## Chromium for tests/test_ui.py, from the distribution's packages where it is missing (sudo
## when not root). If that fails the UI test fails, saying how to install it.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  sudo=$$( [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || echo sudo ); \
	  if command -v apt-get >/dev/null; then \
	    echo "Installing chromium (apt-get) for the MLflow dashboard test..."; \
	    { $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	      || echo "Could not install chromium: tests/test_ui.py will fail. Install it with: sudo apt-get install -y chromium"; \
	  else \
	    echo "No apt-get here: install Chromium yourself (tests/test_ui.py needs it on PATH as chromium)"; \
	  fi; }

## Everything but the slow end-to-end tests.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

## The MLflow dashboard on this project's store (http://127.0.0.1:5000): one experiment per
## task (rnngan-zoo/<task>), the report's run in rnngan-zoo, each task's champion in the registry.
ui: install
	@echo "Open http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (the 'Model training' view: runs and the model registry)"
	zoo ui

## The paper profile's MLflow dashboard (profiles/paper/mlflow.db).
ui-paper: install
	cd profiles/paper && zoo ui

## Benchmarks: each prints ratios against a baseline measured in the same run.
bench: install
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/cells.py
	$(BIN)/python benchmarks/training_loop.py
	$(BIN)/python benchmarks/gpu.py

clean:
	rm -rf models metrics plots curves reports mlflow.db mlartifacts logs data/raw
