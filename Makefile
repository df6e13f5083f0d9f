# The README's two commands: `make setup` and `make test` (and `make run-local`).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch unless a GPU is visible (nvidia-smi works) or TORCH_CONSTRAINTS is given.
TORCH_CONSTRAINTS ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo /dev/null || echo constraints-cpu.txt)
SYSTEM_PACKAGES := chromium poppler-utils

.PHONY: setup system-packages test test-fast lint format run-local gpu-check

setup: system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(TORCH_CONSTRAINTS) -e '.[dev]'
	$(BIN)/halting --help >/dev/null
	@echo "set-up done: activate with 'source $(VENV)/bin/activate'"

# Browser and PDF rasteriser for the viewer and figure tests; only as root with apt-get.
system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else \
	  echo "not root or no apt-get: skipping $(SYSTEM_PACKAGES) (the tests that need them skip)"; \
	fi

# Three workers, one test file each at a time (module fixtures and the local Slurm cluster stay
# in one process): much of the suite waits on subprocesses, Slurm and Snakemake, not on the CPU.
test:
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

# The inner loop: everything but the learning, Snakemake, Slurm and browser tests (about a minute).
test-fast:
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not workflow and not slurm and not gpu"

# ruff (lint and format) and snakefmt, as configured in pyproject.toml; `make test` checks them too.
lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile rules

run-local:
	$(BIN)/snakemake --profile profiles/local results/summary.pdf

# On a GPU node, about 8 minutes on one GPU: the GPU works, the runbook's maze models train,
# resume and evaluate on it (tests marked gpu), and every experiment's full-size step is timed.
gpu-check:
	$(BIN)/halting doctor --accelerator gpu
	CUBLAS_WORKSPACE_CONFIG=:4096:8 $(BIN)/python -m pytest -q -m gpu
	$(BIN)/python benchmarks/gpu.py --steps 5
