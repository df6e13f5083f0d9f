"""The resume contract of a run folder: which checkpoint `train` continues from, whether its
config may continue as the requested one (ConfigMismatch otherwise), what --restart clears, and
the cumulative metrics.csv rebuilt from every attempt's log.
"""

from __future__ import annotations

import csv
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from halting.config import TOTALS, ExperimentConfig, config_diff
from halting.io import atomic_path
from halting.training import checkpoint as ckpt_io
from halting.training.runlog import RunLog


class ConfigMismatch(ValueError):
    """The run folder holds a checkpoint of a different config."""


# --- the cumulative metrics.csv ----------------------------------------------------------------


def merge_metrics(run_dir: Path) -> Path:
    """Rebuild run_dir/metrics.csv from every attempt's CSVLogger file.

    A row is identified by its step, the columns it fills and its rank among such rows of its
    attempt; a later attempt's row replaces an earlier one with the same identity (rows past a
    resume point that a killed attempt had logged are logged again, identically, by the next).
    """
    rows: dict[tuple, dict[str, str]] = {}
    columns: set[str] = set()
    versions = sorted(
        (p for p in (run_dir / "logs").glob("version_*") if p.name[8:].isdigit()),
        key=lambda p: int(p.name[8:]),
    )
    for version in versions:
        path = version / "metrics.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            seen: dict[tuple, int] = {}
            for row in reader:
                if None in row or not row.get("step"):  # a line cut by a kill
                    continue
                filled = tuple(sorted(k for k, v in row.items() if v != ""))
                ident = (row["step"], filled)
                seen[ident] = seen.get(ident, 0) + 1
                rows[ident + (seen[ident],)] = row
                columns.update(filled)
    out = run_dir / "metrics.csv"
    if not rows:
        return out
    ordered = sorted(rows.values(), key=lambda r: int(r["step"]))  # stable: keeps log order
    names = sorted(columns, key=lambda c: (c not in ("step", "epoch"), c))
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(ordered)
    return out


# --- resume decision -------------------------------------------------------------------------


def _saved_config(ckpt: dict[str, Any]) -> dict[str, Any]:
    return dict(ckpt["hyper_parameters"].get("config", {}))


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    """A config mapping as the resume checks compare it: `./data/x/` is `data/x`."""
    if not values.get("data_dir"):
        return dict(values)
    return {**values, "data_dir": os.path.normpath(values["data_dir"])}


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """A config mapping as the resume check compares it: normalised, totals left out."""
    return {k: v for k, v in _normalised(values).items() if k not in TOTALS}


def check_resumable(path: Path, ckpt: dict[str, Any], config: ExperimentConfig) -> str | None:
    """ConfigMismatch unless `ckpt` (read from `path`) can continue as `config`: equal up to
    the totals, and not already past the new ones. Returns a note when the totals changed."""
    saved = _saved_config(ckpt)
    diff = config_diff(_comparable(saved), _comparable(config.to_dict()))
    if diff:
        raise ConfigMismatch(
            f"{path} was trained with a different config ({'; '.join(diff)}). Use the same "
            f"flags to resume (only max_steps / max_epochs may change), another "
            f"--default_root_dir, or --restart to start over."
        )
    totals = config_diff({k: saved.get(k) for k in TOTALS}, {k: getattr(config, k) for k in TOTALS})
    if not totals:
        return None
    step, epoch = int(ckpt.get("global_step", 0)), int(ckpt.get("epoch", 0))
    past = []
    if config.max_steps and step > config.max_steps:
        past.append(f"max_steps={config.max_steps} (it is at step {step})")
    if (
        config.max_epochs
        and saved.get("max_epochs") != config.max_epochs
        and epoch >= config.max_epochs
    ):  # `epoch`: 0-based, of the checkpoint's last step
        past.append(f"max_epochs={config.max_epochs} (it is in epoch {epoch + 1})")
    if past:
        raise ConfigMismatch(
            f"{path} has trained past {' and '.join(past)}: a run cannot be shortened. Use "
            f"another --default_root_dir, or --restart to start over."
        )
    return f"continuing with new totals ({'; '.join(totals)})"


def _clear_run(run_dir: Path, ckpt_dir: Path) -> list[str]:
    removed = []
    for path in [*ckpt_dir.glob("*.ckpt"), run_dir / "final.ckpt", run_dir / "metrics.csv"]:
        if path.exists():
            path.unlink()
            removed.append(path.name)
    if (run_dir / "logs").exists():
        shutil.rmtree(run_dir / "logs")
        removed.append("logs/")
    return removed


def resolve_resume(
    run_dir: Path,
    config: ExperimentConfig,
    resume: str | os.PathLike | None,
    restart: bool,
    log: RunLog,
) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint to resume from (None: fresh start), after the config check."""
    ckpt_dir = run_dir / "checkpoints"
    if restart:
        if resume not in (None, "auto"):
            raise ValueError(
                f"--restart cannot be combined with --resume_ckpt {resume}: "
                "--restart deletes this run's checkpoints and starts over"
            )
        removed = _clear_run(run_dir, ckpt_dir)
        if removed:
            log(f"restart: removed {', '.join(removed)}")
        return None, None
    if resume in (None, "auto"):
        found = ckpt_io.find_resumable(ckpt_dir)
    else:
        path = Path(resume)
        try:
            found = (path, ckpt_io.load_checkpoint(path))
        except ckpt_io.CorruptCheckpoint as exc:
            warnings.warn(
                f"{exc}; falling back to the newest readable checkpoint in {path.parent}",
                stacklevel=2,
            )
            found = ckpt_io.find_resumable(path.parent)
            if found is None:
                raise
    if found is None:
        return None, None
    path, ckpt = found
    note = check_resumable(path, ckpt, config)
    if note:
        log(note)
    return path, ckpt
