"""Run folders: the checkpoints under a results folder, a checkpoint's run folder and its
training log, smoothed training curves, the config fields a run does not use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

SKIP_DIRS = {"logs", "tensorboard", "figures", "__pycache__"}


def stamp(path: str) -> tuple[int, int]:
    """(mtime, size) of a file: part of cache keys, so a rewritten checkpoint reloads."""
    info = Path(path).stat()
    return info.st_mtime_ns, info.st_size


def find_checkpoints(root: str | os.PathLike, limit: int = 300) -> list[str]:
    """Checkpoints under `root`: every `final.ckpt` and `checkpoints/*.ckpt`, sorted."""
    root = Path(root)
    found: list[str] = []
    if not root.is_dir():
        return found
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        in_ckpt_dir = Path(here).name == "checkpoints"
        found += [
            str(Path(here) / f)
            for f in sorted(files)
            if f == "final.ckpt" or (in_ckpt_dir and f.endswith(".ckpt"))
        ]
        if len(found) >= limit:
            break
    return sorted(found[:limit])


def run_dir_of(checkpoint: str | os.PathLike) -> Path:
    """The run folder of a checkpoint: `<run>/final.ckpt` or `<run>/checkpoints/<name>.ckpt`."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def metrics_file(run_dir: str | os.PathLike) -> Path | None:
    """The run's training log: `metrics.csv` (train) or `train_metrics.csv` (results folder)."""
    for name in ("metrics.csv", "train_metrics.csv"):
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    return None


def metric_names(frame: pd.DataFrame) -> list[str]:
    """Numeric logged metrics, validation first."""
    names = [
        c
        for c in frame.columns
        if c not in ("step", "epoch")
        and pd.api.types.is_numeric_dtype(frame[c])
        and frame[c].notna().any()
    ]
    return sorted(names, key=lambda c: (not c.startswith("val/"), c))


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing); weight 0 = raw."""
    values = np.asarray(values, dtype=np.float64)
    if weight <= 0 or len(values) == 0:
        return values
    out, last = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        last = weight * last + (1 - weight) * v
        out[i] = last / (1 - weight ** (i + 1))
    return out


def curve(frame: pd.DataFrame, metric: str, weight: float) -> pd.DataFrame:
    """One metric against the step: columns `raw` and `smoothed`, rows where it was logged."""
    rows = frame[["step", metric]].dropna().groupby("step", as_index=True)[metric].mean()
    return pd.DataFrame(
        {"raw": rows.values, "smoothed": smooth(rows.values, weight)},
        index=pd.Index(rows.index, name="step"),
    )


def unused_fields(config: dict) -> set[str]:
    """Config fields that the run's task, backbone and criterion do not use."""
    from halting.config import inapplicable_fields, make_config

    try:
        return set(inapplicable_fields(make_config(config), set(config)))
    except ValueError:  # a config of another code version: show everything
        return set()


def default_data_dir(info: dict) -> str:
    """The maze folder a checkpoint was trained on (config, else data_meta)."""
    return str(
        info.get("config", {}).get("data_dir") or info.get("data_meta", {}).get("data_dir") or ""
    )
