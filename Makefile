# The README's two commands: `make setup` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch unless a GPU is visible (nvidia-smi works) or TORCH_CONSTRAINTS is given.
TORCH_CONSTRAINTS ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo /dev/null || echo constraints-cpu.txt)

.PHONY: setup test run-local

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(TORCH_CONSTRAINTS) -e '.[dev]'
	$(BIN)/halting --help >/dev/null
	@echo "set-up done: activate with 'source $(VENV)/bin/activate'"

test:
	$(BIN)/python -m pytest -q

run-local:
	$(BIN)/snakemake --profile profiles/local results/summary.pdf
