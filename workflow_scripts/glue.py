"""Helpers the workflow scripts share: log redirection, the time budget, run.json's fields."""

import json
import logging
import os
import sys
from pathlib import Path

# The repository root (the workflow's base folder) first on sys.path, so that the scripts import
# this checkout's `halting` also where it is not installed (`--sdm conda`, envs/halting.yaml).
# Snakemake's script preamble appends that folder too, but last, after any installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def log_to(path):
    """Send this process's stdout and stderr (file descriptors 1 and 2) to the rule's log."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def log_info_to(path):
    """log_to(path), plus the `logging` records of level INFO and up (the figures' and the
    summary's progress) in that log."""
    log_to(path)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def time_budget_min(resources):
    """Training time budget in minutes: the resource `time_budget_s` if set, else the job's
    `runtime` (minutes) minus a margin for start-up, the last checkpoint and publishing
    (10 minutes, or 10% of short runtimes); None (no budget) without a runtime. 0 means unset
    for both (`--set-resources train:time_budget_s=1 if attempt == 1 else 0` pauses only the
    first attempt); a negative one disables the budget (Slurm's SIGTERM at the walltime then
    pauses the job)."""
    budget = resources.get("time_budget_s")
    if budget and budget < 0:
        return None
    if budget:
        return budget / 60
    runtime = resources.get("runtime")
    if not runtime:
        return None
    return runtime - min(10, runtime / 10)


def run_fields(params, datasets, manifests):
    """What the workflow knows of a run beyond its config, as the keyword arguments of
    `halting.training.run_json.write_run_json`: the dataset's name, grid size and manifest (the
    rule's input), the code version and the training's checkpoint folder."""
    spec = datasets[params.dataset] if params.dataset else {}
    return {
        "dataset": params.dataset or None,
        "maze_size": spec.get("size"),
        "data_manifest": json.loads(Path(manifests[0]).read_text()) if manifests else None,
        "code_version": params.code_version,
        "checkpoint_dir": params.checkpoint_dir,
    }
