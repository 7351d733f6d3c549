# The two commands of the quickstart: `make demo` and `make test`.
# Both create the virtualenv on first use; nothing needs to be installed beforehand but
# Python 3.11+ (with venv and pip) and make.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint browser clean

demo: $(VENV)/.demo-installed
	$(BIN)/python -m examples.clickcount demo
	$(BIN)/python -m examples.user_status demo

test: lint browser
	$(BIN)/python -m pytest -p no:cacheprovider -ra --verbose --durations=25

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

browser:
	sh scripts/install_chromium.sh

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: run make with PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[devbroker]'
	touch $@

$(VENV)/.dev-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo-installed

clean:
	rm -rf $(VENV) demo-data .mypy_cache .ruff_cache
