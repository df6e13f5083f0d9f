"""Small synthetic result folders in exactly the format of docs/interfaces.md ("Result folders").

`write_results(root)` writes 3 experiments x 2 seeds for each of maze (30x30 hard), parity and
addition, with plausible numbers: lower tau -> more steps and higher accuracy, harder examples
-> more steps. Nothing here trains a model; the figures and report must only rely on the format.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from halting.config import ExperimentConfig, make_config
from halting.data.grid import GOAL, OPEN, START, WALL, bfs_parents, canonical_label
from halting.tasks import get_task
from halting.training.run_json import write_run_json

MAZE_SIZE = 30
MAZE_DATASET = "maze-30x30-hard-1k"
TRAIN_STEPS = 2000

# task -> (experiment, model_type, criterion, tau, accuracy, steps)
EXPERIMENTS = {
    "maze": [
        ("rnn_act_tau1e-3", "act_rnn", "act", 0.001, 0.42, 6.5),
        ("ut_act_tau1e-3", "universal_transformer", "act", 0.001, 0.78, 4.2),
        ("ut_fixed", "universal_transformer", "fixed", None, 0.70, 6.0),
    ],
    "parity": [
        ("rnn_act_tau1e-3", "act_rnn", "act", 0.001, 0.97, 5.5),
        ("rnn_act_tau1e-2", "act_rnn", "act", 0.01, 0.91, 2.6),
        ("rnn_pondernet_beta1e-2", "act_rnn", "pondernet", 0.01, 0.95, 4.1),
    ],
    "addition": [
        ("rnn_act_tau1e-3", "act_rnn", "act", 0.001, 0.88, 4.8),
        ("ut_act_tau1e-3", "universal_transformer", "act", 0.001, 0.93, 3.4),
        ("rnn_fixed", "act_rnn", "fixed", None, 0.80, 8.0),
    ],
}
DIFFICULTY = {"maze": (110, 260), "parity": (1, 16), "addition": (1, 5)}
MAZE_MANIFEST = {"content_hash": "9f2c4e1ab37d5c8e0f61a2b3c4d5e6f7", "size": 30, "n_train": 1000}


def random_maze(rng: np.random.Generator, size: int = MAZE_SIZE) -> np.ndarray:
    """A random grid with ~25% walls, S and G far apart and G reachable."""
    while True:
        grid = np.where(rng.random((size, size)) < 0.25, WALL, OPEN).astype(np.uint8)
        grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = WALL
        grid[1, 1], grid[size - 2, size - 2] = START, GOAL
        dist, _ = bfs_parents(grid)
        if dist[size - 2, size - 2] > 0:
            return grid


def _config(
    task: str, model_type: str, criterion: str, tau: float | None, steps: float, seed: int
) -> ExperimentConfig:
    depth = round(steps) if criterion == "fixed" else None  # K of a fixed-depth run
    values = {"task": task, "model_type": model_type, "halting": criterion, "seed": seed}
    values["max_steps"] = TRAIN_STEPS
    if task == "maze":
        values["data_dir"] = f"data/{MAZE_DATASET}"
    if model_type == "universal_transformer":
        values.update(ut_max_hops=depth or 6, ut_act=criterion != "fixed")
        if criterion != "fixed":
            values["ut_act_loss_weight"] = tau
    else:
        values["time_limit"] = depth or 16
        if criterion != "fixed":
            values["time_penalty"] = tau
    return make_config(values, source=f"fixture {task} {model_type} {criterion}")


def _train_metrics(rng, task: str, criterion: str, acc: float, steps: float) -> pd.DataFrame:
    rows = []
    for step in range(0, TRAIN_STEPS + 1, 50):
        progress = 1 - np.exp(-step / 500)
        rows.append(
            {
                "step": step,
                "epoch": step // 500,
                "train/loss_total": 2.0 * (1 - progress) + 0.1 + 0.05 * rng.standard_normal(),
                "train/steps": (
                    steps
                    if criterion == "fixed"
                    else 2 + (steps - 2) * progress + 0.2 * rng.standard_normal()
                ),
            }
        )
        if step % 250 == 0 and step > 0:
            rows.append(
                {
                    "step": step,
                    "epoch": step // 500,
                    f"val/{get_task(task).headline}": min(
                        1.0, acc * progress + 0.02 * rng.random()
                    ),
                    "val/steps": steps if criterion == "fixed" else 2 + (steps - 2) * progress,
                }
            )
    return pd.DataFrame(rows)


def _per_example(rng, task: str, model_type: str, criterion: str, acc: float, steps: float, n: int):
    lo, hi = DIFFICULTY[task]
    if task == "addition":  # mean digits per input number: multiples of 1/T (T = 5)
        difficulty = rng.integers(5 * lo, 5 * hi + 1, size=n) / 5
    else:
        difficulty = rng.integers(lo, hi + 1, size=n)
    rel = (difficulty - lo) / max(hi - lo, 1)
    frames = []
    for mode, scale in (("learned", 1.0), ("max_steps", None)):
        if criterion == "fixed" or scale is None:
            s = (
                np.full(n, 16.0 if model_type == "act_rnn" else 6.0)
                if scale is None
                else np.full(n, steps)
            )
        else:
            s = np.clip(steps * (0.6 + 0.8 * rel) + rng.normal(0, 0.6, n), 1, 16)
            if model_type == "act_rnn":
                s = np.round(s)  # one halting unit per example: integer steps
        p_correct = np.clip(acc + 0.15 * (0.5 - rel), 0, 1)
        frames.append(
            pd.DataFrame(
                {
                    "example_id": np.arange(n, dtype=np.int64),
                    "mode": mode,
                    "difficulty": difficulty,
                    "correct": rng.random(n) < p_correct,
                    "steps_mean": s.astype(np.float64),
                    "steps_max": np.ceil(s + (model_type != "act_rnn")).astype(np.float64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _metrics(task: str, acc: float, steps: float) -> dict:
    out = {
        "steps_mean": steps,
        "steps_median": round(steps),
        "steps_p90": steps + 1.5,
        "steps_max": 16.0,
        "forced_halt_rate": 0.01,
        "penalty": 0.001 * steps,
    }
    if task == "maze":
        out.update(
            exact_accuracy=acc,
            accuracy=min(1.0, 0.5 + acc / 2),
            path_f1=acc,
            valid_optimal_rate=acc,
        )
    elif task == "parity":
        out.update(accuracy=acc)
    else:
        out.update(accuracy_place=min(1.0, acc + 0.05), accuracy_sequence=acc)
    return out


def _examples(rng, model_type: str, criterion: str, steps: float, k: int = 4) -> dict:
    inputs = np.stack([random_maze(rng) for _ in range(k)])
    labels = np.stack([canonical_label(g) for g in inputs])
    predictions = labels.copy()
    for i in range(1, k):  # the first example is solved exactly, the rest have a few errors
        path = np.argwhere(labels[i] == 5)
        for r, c in path[rng.choice(len(path), size=min(3, len(path)), replace=False)]:
            predictions[i, r, c] = OPEN
    if criterion == "fixed":
        per_cell = np.full(inputs.shape, steps)
    elif model_type == "universal_transformer":
        per_cell = steps + rng.normal(0, 0.5, inputs.shape) + 1.5 * (labels == 5)
    else:
        per_cell = np.ones(inputs.shape) * rng.normal(steps, 0.5, (k, 1, 1))
    return {
        "inputs": inputs.astype(np.uint8),
        "labels": labels.astype(np.uint8),
        "predictions": predictions.astype(np.uint8),
        "steps": np.clip(per_cell, 1, None).astype(np.float32),
        "example_id": np.arange(k, dtype=np.int64) * 7,
    }


def write_run(root: Path, task: str, spec: tuple, seed: int, n_examples: int = 120) -> Path:
    """One result folder `root/<task>/<experiment>/seed<seed>/`."""
    experiment, model_type, criterion, tau, acc, steps = spec
    rng = np.random.default_rng(zlib.crc32(f"{task}/{experiment}/{seed}".encode()))
    acc = float(np.clip(acc + rng.normal(0, 0.02), 0, 1))
    if criterion != "fixed":  # a fixed-depth model always takes exactly K steps
        steps = float(steps + rng.normal(0, 0.2))
    run_dir = root / task / experiment / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_json(
        run_dir / "run.json",
        _config(task, model_type, criterion, tau, steps, seed),
        experiment=experiment,
        dataset=MAZE_DATASET if task == "maze" else f"{task}-synthetic",
        maze_size=MAZE_SIZE if task == "maze" else None,
        data_manifest=MAZE_MANIFEST if task == "maze" else None,  # the manifest's JSON
        code_version="0.1.0+g1234abc",
        # the workflow may not know the training time: addition runs leave it null
        train_seconds=(
            None
            if task == "addition"
            else float(3600 * (1 + seed) * (3 if task == "maze" else 0.2))
        ),
    )
    max_steps = _metrics(task, max(0.0, acc - 0.03), 16.0)
    evaluation = {
        "task": task,
        "experiment": experiment,
        "model_type": model_type,
        "criterion": criterion,
        "tau": tau,
        "seed": seed,
        "n_examples": n_examples,
        "headline": get_task(task).headline,
        "learned": _metrics(task, acc, steps),
        "max_steps": max_steps,
    }
    (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=1))
    _train_metrics(rng, task, criterion, acc, steps).to_csv(
        run_dir / "train_metrics.csv", index=False
    )
    _per_example(rng, task, model_type, criterion, acc, steps, n_examples).to_parquet(
        run_dir / "per_example.parquet", index=False
    )
    if task == "maze":
        np.savez(run_dir / "examples.npz", **_examples(rng, model_type, criterion, steps))
    return run_dir


def write_results(
    root: str | Path, tasks=("maze", "parity", "addition"), seeds=(0, 1)
) -> list[Path]:
    """Fixture results under `root`; returns the run folders written."""
    root = Path(root)
    return [
        write_run(root, task, spec, seed)
        for task in tasks
        for spec in EXPERIMENTS[task]
        for seed in seeds
    ]


# --------------------------------------------------------------------------------------------
# Checks on written PDFs, shared by test_figures and test_report
# --------------------------------------------------------------------------------------------

PDFTOPPM = shutil.which("pdftoppm")
NO_PDFTOPPM = "pdftoppm (poppler-utils) is not installed: PDF pages are not rasterised"


def pdf_page_count(path: Path) -> int:
    """Pages of a PDF written by matplotlib (uncompressed object dictionaries)."""
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", Path(path).read_bytes()))


def assert_pdf_basics(path: Path) -> None:
    """A PDF file with embedded TrueType fonts (pdf.fonttype 42 -> /FontFile2)."""
    data = Path(path).read_bytes()
    assert data.startswith(b"%PDF-"), f"{path} is not a PDF"
    assert b"/FontFile2" in data, f"{path} has no embedded TrueType font"
    assert b"/FontFile3" not in data and b"/Type1" not in data, f"{path} uses Type 1/3 fonts"


def image_is_blank(rgb: np.ndarray) -> bool:
    """True when (almost) every pixel is the same colour as the first one (an empty page)."""
    rgb = np.asarray(rgb, dtype=float)[..., :3]
    if rgb.max() > 1.0:
        rgb = rgb / 255.0
    differs = np.abs(rgb - rgb[0, 0]).max(axis=-1) > 0.05
    return differs.mean() < 0.002


def render_pdf_pages(path: Path, out_dir: Path, dpi: int = 30) -> list[np.ndarray]:
    """Rasterise every page of `path` with pdftoppm; returns one RGB array per page."""
    import matplotlib.image

    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / Path(path).stem
    subprocess.run([PDFTOPPM, "-png", "-r", str(dpi), str(path), str(prefix)], check=True)
    pngs = sorted(out_dir.glob(f"{Path(path).stem}*.png"))
    return [matplotlib.image.imread(p) for p in pngs]
