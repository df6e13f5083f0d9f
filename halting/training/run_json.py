"""run.json, the record of a finished run (docs/interfaces.md, "Result folders"): its one writer,
and the reading of its dataset manifest.

The workflow (workflow_scripts/train.py), `halting train` and the test fixtures write it through
`write_run_json`; `halting.report.runs` reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from halting.config import ExperimentConfig, canonical_json
from halting.io import atomic_write_text


def run_record(
    config: ExperimentConfig,
    *,
    experiment: str,
    dataset: str | None = None,
    maze_size: int | None = None,
    data_manifest: Any = None,
    code_version: str | None = None,
    train_seconds: float | None = None,
    checkpoint_dir: str | None = None,
) -> dict[str, Any]:
    """run.json's object: the run's identity and config from `config`, and what only the caller
    knows: the experiment name, the dataset's name, grid size and manifest (its JSON), the code
    version, the training time and the training's checkpoint folder (None where unknown)."""
    return {
        "experiment": experiment,
        "task": config.task,
        "model_type": config.model_type,
        "criterion": config.criterion,
        "tau": config.tau,
        "seed": config.seed,
        "dataset": dataset,
        "maze_size": maze_size,
        "data_manifest": data_manifest,
        "config": config.to_dict(),
        "code_version": code_version,
        "train_seconds": train_seconds,
        "checkpoint_dir": checkpoint_dir,
    }


def run_json_text(record: dict[str, Any]) -> str:
    """The file's text: indented JSON with sorted keys and a final newline."""
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def write_run_json(
    path: str | os.PathLike, config: ExperimentConfig, *, experiment: str, **fields: Any
) -> dict[str, Any]:
    """Write `run_record(config, experiment=..., **fields)` to `path` atomically; returns it."""
    record = run_record(config, experiment=experiment, **fields)
    atomic_write_text(path, run_json_text(record))
    return record


def manifest_hash(value: Any) -> str | None:
    """The dataset's content hash from run.json's `data_manifest`: the string itself, a dict's
    `content_hash`/`hash`/`sha256` entry, or else the SHA-256 of the dict's canonical JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("content_hash", "hash", "sha256"):
            if isinstance(value.get(key), str):
                return value[key]
        return hashlib.sha256(canonical_json(value).encode()).hexdigest()
    return str(value)
