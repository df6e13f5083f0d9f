"""Finished result folders, loaded and checked, and their tables.

A run is one folder `results/<task>/<experiment>/seed<k>/` or a `halting train` run folder
(docs/interfaces.md, "Result folders"): `run.json`, `eval.json`, `train_metrics.csv`
(`metrics.csv` in a `halting train` folder), `per_example.parquet`, and for the maze
`examples.npz`. Runs with the same (task, experiment) are seeds of one experiment and aggregate
by the rules of `halting.report.stats`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from halting.report.stats import (
    FRACTION,
    RHO,
    difficulty_rho,
    finite_values,
    group_experiments,
    mean_ci,
    run_sort_key,
    seed_values,
)
from halting.tasks import TASKS
from halting.training.run_json import manifest_hash

RUN_KEYS = ("experiment", "task", "model_type", "criterion", "tau", "seed")
EVAL_MODES = ("learned", "max_steps")
PER_EXAMPLE_COLUMNS = ("example_id", "mode", "difficulty", "correct", "steps_mean")
EXAMPLE_ARRAYS = ("inputs", "labels", "predictions", "steps", "example_id")


class RunFormatError(ValueError):
    """A result file that does not follow docs/interfaces.md; the message names the file."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One result folder, loaded and checked against the interface."""

    path: Path
    meta: dict[str, Any]  # run.json
    eval: dict[str, Any]  # eval.json
    train_metrics: pd.DataFrame | None = None  # train_metrics.csv (None when absent)
    per_example: pd.DataFrame | None = None  # per_example.parquet (None when absent)
    examples: dict[str, np.ndarray] | None = field(default=None, repr=False)  # maze examples.npz

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def experiment(self) -> str:
        return str(self.meta["experiment"])

    @property
    def key(self) -> tuple[str, str]:
        return (self.task, self.experiment)

    @property
    def headline(self) -> str:
        return str(self.eval.get("headline") or TASKS[self.task].headline)

    def metric(self, name: str, mode: str = "learned") -> float:
        value = self.eval.get(mode, {}).get(name)
        return math.nan if value is None else float(value)

    @property
    def headline_value(self) -> float:
        return self.metric(self.headline)

    @property
    def steps_mean(self) -> float:
        return self.metric("steps_mean")


def read_json(path: Path) -> dict[str, Any]:
    """A result file's JSON object; RunFormatError naming the file if it is unreadable or not an
    object (run.json, eval.json; the viewer reads them through it too)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFormatError(f"{path}: cannot read JSON ({err})") from err
    if not isinstance(data, dict):
        raise RunFormatError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_fraction(path: Path, where: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise RunFormatError(f"{path}: {where} must be a number, got {value!r}")
    if not (math.isnan(value) or -1e-9 <= value <= 1 + 1e-9):
        raise RunFormatError(f"{path}: {where}={value!r} is not a fraction in [0, 1]")


def _load_run_json(path: Path) -> dict[str, Any]:
    meta = read_json(path)
    missing = [k for k in RUN_KEYS if k not in meta]
    if missing:
        raise RunFormatError(f"{path}: missing key(s) {', '.join(missing)}")
    if meta["task"] not in TASKS:
        raise RunFormatError(f"{path}: unknown task {meta['task']!r} (expected {sorted(TASKS)})")
    if meta["tau"] is not None and not isinstance(meta["tau"], (int, float)):
        raise RunFormatError(f"{path}: tau must be a number or null, got {meta['tau']!r}")
    for key in ("dataset", "maze_size", "config", "code_version", "data_manifest", "train_seconds"):
        meta.setdefault(key, None)
    return meta


def _load_eval_json(path: Path, task: str) -> dict[str, Any]:
    ev = read_json(path)
    headline = ev.get("headline") or TASKS[task].headline
    if "learned" not in ev or not isinstance(ev["learned"], dict):
        raise RunFormatError(f"{path}: missing the 'learned' metrics object")
    for mode in EVAL_MODES:
        metrics = ev.get(mode)
        if metrics is None:
            continue
        if not isinstance(metrics, dict):
            raise RunFormatError(
                f"{path}: '{mode}' must be an object, got {type(metrics).__name__}"
            )
        for name in ("accuracy", "exact_accuracy", "accuracy_place", "accuracy_sequence"):
            _check_fraction(path, f"{mode}.{name}", metrics.get(name))
    for name in (headline, "steps_mean"):
        if name not in ev["learned"]:
            raise RunFormatError(f"{path}: 'learned' has no {name!r}")
    return ev


def _load_train_metrics(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise RunFormatError(f"{path}: cannot read CSV ({err})") from err
    if "step" not in df.columns:
        raise RunFormatError(f"{path}: no 'step' column (columns: {', '.join(df.columns)})")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise RunFormatError(f"{path}: column {col!r} is not numeric")
    return df


def _load_per_example(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise RunFormatError(f"{path}: cannot read Parquet ({err})") from err
    missing = [c for c in PER_EXAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise RunFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    bad_modes = sorted(set(df["mode"].astype(str)) - set(EVAL_MODES))
    if bad_modes:
        raise RunFormatError(f"{path}: unknown mode(s) {bad_modes}")
    return df


def _load_examples(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as err:  # zipfile/ValueError/OSError for a damaged archive
        raise RunFormatError(f"{path}: cannot read .npz ({err})") from err
    missing = [k for k in EXAMPLE_ARRAYS if k not in arrays]
    if missing:
        raise RunFormatError(f"{path}: missing array(s) {', '.join(missing)}")
    shape = arrays["inputs"].shape
    if len(shape) != 3 or shape[1] != shape[2]:
        raise RunFormatError(f"{path}: inputs must be (k, S, S), got {shape}")
    for key in ("labels", "predictions", "steps"):
        if arrays[key].shape != shape:
            raise RunFormatError(f"{path}: {key} has shape {arrays[key].shape}, inputs {shape}")
    if arrays["example_id"].shape != shape[:1]:
        raise RunFormatError(
            f"{path}: example_id must be ({shape[0]},), got {arrays['example_id'].shape}"
        )
    return arrays


def load_run(run_dir: str | Path) -> Run:
    """Load one result folder. run.json and eval.json are required; the rest is optional."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a run folder")
    for required in ("run.json", "eval.json"):
        if not (run_dir / required).is_file():
            raise RunFormatError(f"{run_dir / required}: missing (required in every run folder)")
    meta = _load_run_json(run_dir / "run.json")
    ev = _load_eval_json(run_dir / "eval.json", meta["task"])
    run = Run(path=run_dir, meta=meta, eval=ev)
    for name in ("train_metrics.csv", "metrics.csv"):  # metrics.csv: a `halting train` folder
        if (run_dir / name).is_file() and run.train_metrics is None:
            run.train_metrics = _load_train_metrics(run_dir / name)
    if (run_dir / "per_example.parquet").is_file():
        run.per_example = _load_per_example(run_dir / "per_example.parquet")
    if (run_dir / "examples.npz").is_file():
        run.examples = _load_examples(run_dir / "examples.npz")
    return run


def find_run_dirs(results_root: str | Path) -> list[Path]:
    """Every folder holding a run.json at any depth under `results_root` (itself included): the
    workflow's `<task>/<experiment>/seed<k>/` and `halting train` run folders alike. The
    workflow's pattern is globbed too: rglob does not enter linked folders."""
    root = Path(results_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: results folder does not exist")
    found = {*root.glob("*/*/seed*/run.json"), *root.rglob("run.json")}
    return sorted(p.parent for p in found)


def load_runs(
    results_root: str | Path | None = None, run_dirs: Iterable[str | Path] | None = None
) -> list[Run]:
    """Load explicit `run_dirs` if given, else every run under `results_root`.

    Checks that the seeds of one experiment agree on model, criterion and tau.
    """
    if run_dirs is None:
        if results_root is None:
            raise ValueError("give results_root or run_dirs")
        run_dirs = find_run_dirs(results_root)
    seen: dict[Path, None] = {}
    for d in run_dirs:
        seen.setdefault(Path(d).resolve(), None)
    runs = [load_run(d) for d in seen]
    by_key: dict[tuple[str, str], Run] = {}
    for run in runs:
        first = by_key.setdefault(run.key, run)
        for k in ("model_type", "criterion", "tau"):
            if first.meta[k] != run.meta[k]:
                raise RunFormatError(
                    f"{run.path / 'run.json'}: {k}={run.meta[k]!r} differs from "
                    f"{first.path / 'run.json'} ({first.meta[k]!r}) in the same experiment"
                )
    return sorted(runs, key=run_sort_key)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def run_table(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per run: identity, headline metric and mean ponder steps (learned halting)."""
    rows = []
    for r in runs:
        m = r.meta
        rows.append(
            {
                "task": r.task,
                "experiment": r.experiment,
                "model_type": m["model_type"],
                "criterion": m["criterion"],
                "tau": m["tau"],
                "seed": m["seed"],
                "dataset": m["dataset"],
                "maze_size": m["maze_size"],
                "headline": r.headline,
                "headline_value": r.headline_value,
                "steps_mean": r.steps_mean,
                "train_seconds": m["train_seconds"],
                "code_version": m["code_version"],
                "data_manifest": manifest_hash(m["data_manifest"]),
                "path": str(r.path),
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["maze_size"] = table["maze_size"].astype("Int64")
    return table


def _joined(values: Iterable[Any]) -> str | None:
    unique = sorted({str(v) for v in values if v is not None})
    return "+".join(unique) if unique else None


def experiment_table(runs: Iterable[Run], level: float = 0.95) -> pd.DataFrame:
    """One row per (task, experiment): seeds, penalty text, headline mean/sd/interval/seed
    values, mean steps, rho(steps, difficulty) mean/interval/seed values, training time.

    Intervals follow `mean_ci`: NaN under MIN_SEEDS_FOR_INTERVAL seeds (the `*_seed_values`
    columns list each seed's value, in seed order), clipped to [0, 1] for the headline and to
    [-1, 1] for rho. `code_version` and `data_manifest` join the distinct values of the seeds
    with "+", so a mix of versions is visible rather than hidden.
    """
    from halting.report.style import label_for, penalty_text

    rows = []
    for (task, experiment), group in group_experiments(runs).items():
        m = group[0].meta
        head = finite_values(r.headline_value for r in group)
        mean, lo, hi = mean_ci(head, level, FRACTION)
        rhos = [difficulty_rho(r.per_example) for r in group]
        rho_mean, rho_lo, rho_hi = mean_ci(rhos, level, RHO)
        steps = finite_values(r.steps_mean for r in group)
        seconds = [r.meta["train_seconds"] for r in group if r.meta["train_seconds"] is not None]
        rows.append(
            {
                "task": task,
                "experiment": experiment,
                "model_type": m["model_type"],
                "criterion": m["criterion"],
                "tau": m["tau"],
                "penalty": penalty_text(m),  # "τ=0.001", "β=0.01", "K=6"
                "label": label_for(m),
                "dataset": m["dataset"],
                "maze_size": m["maze_size"],
                "seeds": len(group),
                "seed_list": " ".join(str(r.meta["seed"]) for r in group),
                "headline": group[0].headline,
                "headline_mean": mean,
                "headline_sd": float(head.std(ddof=1)) if head.size > 1 else math.nan,
                "headline_ci_low": lo,
                "headline_ci_high": hi,
                "headline_seed_values": seed_values(r.headline_value for r in group),
                "steps_mean": float(steps.mean()) if steps.size else math.nan,
                "rho_mean": rho_mean,
                "rho_ci_low": rho_lo,
                "rho_ci_high": rho_hi,
                "rho_seed_values": seed_values(rhos),
                "train_seconds_mean": float(np.mean(seconds)) if seconds else math.nan,
                "code_version": _joined(r.meta["code_version"] for r in group),
                "data_manifest": _joined(manifest_hash(r.meta["data_manifest"]) for r in group),
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["maze_size"] = table["maze_size"].astype("Int64")
    return table


def is_maze_hard_30(meta: dict[str, Any]) -> bool:
    """True for Maze-Hard 30x30 data (HRM's long-path maze set): the run's `maze_size` is 30
    and its `dataset` name contains "hard" (case-insensitive). The published HRM/TRM
    accuracies are comparable only on that data; run.json does not carry path lengths."""
    return (
        meta.get("task") == "maze"
        and meta.get("maze_size") == 30
        and "hard" in str(meta.get("dataset") or "").lower()
    )
