"""`halting evaluate CKPT`: task metrics and ponder statistics of a trained model, at the learned
halting and at the maximum number of steps, side by side.

Writes to `out_dir` (see docs/interfaces.md, "Evaluation"):
- `eval.json`: the run's identity and, for each mode (`learned`: the model's own halting,
  `max_steps`: all M steps read out at step M, the numbers HRM/TRM report), the task metrics,
  the ponder-step summary and the halting criterion's penalty;
- `per_example.parquet`: one row per example per mode, so every figure can be redrawn;
- maze only, `examples.npz`: the first few examples with predictions and per-cell steps.

Metrics. Maze: `exact_accuracy` (every scored cell equals the label: the papers' headline),
token `accuracy` (weak: copying the input already scores ~87.5% of cells on Maze-Hard, because
only the path cells differ), `path_f1` (micro F1 on 'o' cells) and `valid_optimal_rate` (the
predicted 'o' cells plus S and G form one 4-connected S->G path through open cells of the BFS
shortest length: any shortest path counts, not only the canonical one). Parity: `accuracy`.
Addition: `accuracy_place` (every place of every scored step) and `accuracy_sequence` (all of
them right).

Ponder steps. Each example's steps are the mean (`steps_mean`) and max (`steps_max`) over its
halting units: one unit per example for the ACT-RNN on parity and maze, one per input step for
the ACT-RNN on addition, one per position for the Universal Transformer. `steps_mean`,
`steps_median`, `steps_p90` and `steps_max` in eval.json summarise the per-example MEAN steps.
`forced_halt_rate` is the share of halting units that reached the limit M (= the share of
examples for per-example halting); `forced_halt_rate_examples` the share of examples with at
least one such unit. At max steps every unit runs M steps, so both are 1.0 there. `penalty` is
the criterion's ponder cost (ACT: N + R of the learned halting, in both modes; PonderNet: the KL
to the geometric prior; fixed: 0), averaged over examples. PonderNet also reports
`expected_steps_mean`, the mean of E[n] = sum_n n p_n. PonderNet's p is the full M-step
distribution in both modes (the model runs the halting unit to step M, and reads out at the
halting step in `learned`), so E[n] and the KL are those training penalises, independent of the
batch: only `steps_*` and the task metrics are of the sampled/median halting step.
per_example.parquet has, for PonderNet, `expected_steps` and `kl` (KL(p || geometric(lambda_p)))
per example, each the mean over the example's halting units.

Difficulty (per_example.parquet): maze, the shortest S->G path in moves; parity, the number of
non-zero bits; addition, the mean number of digits per input number (total digits / numbers).

Data: the maze split from the dataset folder; for the toy tasks exactly the fixed validation set
training validated on (`split="test"`), or the first training batches (`split="train"`).
PonderNet's sampled halting draws from torch's RNG, seeded with the config's seed, so a run
is reproducible for a given batch size and device.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from halting.config import ExperimentConfig, make_config
from halting.criteria import Criterion
from halting.io import atomic_write, atomic_write_text
from halting.tasks import Task, get_task

MODES = {"learned": "eval", "max_steps": "max"}  # eval.json key -> model forward mode
N_SAVED_EXAMPLES = 8  # maze examples written to examples.npz


class EvaluationInputError(ValueError):
    """The checkpoint, data folder or device asked for cannot be used (one-line message)."""


# --- inputs ----------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "gpu" is an alias of "cuda" (Lightning's name)."""
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name == "gpu":
        name = "cuda"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvaluationInputError(f"device {device!r} asked for, but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise EvaluationInputError(f"unknown device {device!r}: {exc}") from None


def load_eval_data(
    config: ExperimentConfig,
    data_meta: dict[str, Any],
    *,
    data_dir: str | os.PathLike | None = None,
    split: str = "test",
    n_examples: int | None = None,
) -> dict[str, np.ndarray]:
    """The examples to evaluate, as numpy arrays with a leading example axis, plus
    `example_id` (row in the split) and `difficulty` (see the module docstring).

    The task's `eval_data`: maze `inputs`, `labels` int64 (N, L) from `data_dir` (default: the
    checkpoint's data folder); parity / addition the generator's dict (`x`, `y`, ...) of the
    validation set (split "test") or of the first training batches (split "train").
    """
    if split not in ("test", "train"):
        raise EvaluationInputError(f"split must be 'test' or 'train', got {split!r}")
    if n_examples is not None and n_examples < 1:
        raise EvaluationInputError(f"n_examples must be >= 1, got {n_examples}")
    try:
        return get_task(config.task).eval_data(config, data_meta, data_dir, split, n_examples)
    except ValueError as exc:  # a data folder that cannot be read: one line, no traceback
        raise EvaluationInputError(str(exc)) from None


# --- one batch -------------------------------------------------------------------------------


def unit_steps(out, limit: int, criterion: Criterion | None = None) -> dict[str, torch.Tensor]:
    """Per-example ponder statistics over the valid halting units of a HaltingOutput:
    `steps_mean`, `steps_max` (B,) float, `n_units`, `n_forced` (B,) int (units with steps >= M),
    and with `criterion` the mean over units of each of its `eval_columns` (PonderNet: E[n] as
    `expected_steps`, KL(p || truncated geometric(lambda_p)) as `kl`)."""
    mask = out.unit_mask.bool()  # (B, U)
    steps = out.steps.float()  # (B, U)
    n_units = mask.sum(1)  # (B,)

    def unit_mean(values: torch.Tensor) -> torch.Tensor:  # (B, U) -> (B,) over valid units
        return (values * mask).sum(1) / n_units.clamp(min=1)

    stats = {
        "steps_mean": unit_mean(steps),
        "steps_max": steps.masked_fill(~mask, 0.0).max(1).values,
        "n_units": n_units,
        "n_forced": ((steps >= limit) & mask).sum(1),
    }
    if criterion is not None:
        stats.update({k: unit_mean(v) for k, v in criterion.eval_columns(out).items()})
    return stats


def summarise_steps(steps: np.ndarray, limit: int) -> dict[str, float]:
    """Mean, median, 90th percentile and max of ponder steps over all entries of `steps`,
    and `forced_halt_rate`, the share of entries that reached the step limit M (steps >= M)."""
    flat = np.asarray(steps, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError("summarise_steps needs at least one entry")
    return {
        "steps_mean": float(flat.mean()),
        "steps_median": float(np.median(flat)),
        "steps_p90": float(np.percentile(flat, 90)),
        "steps_max": float(flat.max()),
        "forced_halt_rate": float((flat >= limit).mean()),
    }


# --- the whole set ---------------------------------------------------------------------------


@dataclass
class EvalResult:
    """What `evaluate_model` computed: eval.json's `learned`/`max_steps` objects, the
    per-example table and (maze) the saved examples."""

    modes: dict[str, dict[str, float]]
    per_example: pd.DataFrame
    examples: dict[str, np.ndarray] | None


def _summary(
    task: Task, criterion: Criterion, rec: dict[str, np.ndarray], penalty: float, limit: int
) -> dict[str, float]:
    """eval.json's metrics object of one mode from the concatenated per-example records."""
    out = task.summary(rec)
    out.update(summarise_steps(rec["steps_mean"], limit))
    # per halting unit, not per example mean (summarise_steps' rate would need every unit at M)
    out["forced_halt_rate"] = float(rec["n_forced"].sum() / max(rec["n_units"].sum(), 1))
    out["forced_halt_rate_examples"] = float((rec["n_forced"] > 0).mean())
    out["penalty"] = penalty
    out.update(criterion.eval_summary(rec))
    return out


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def evaluate_model(
    model: nn.Module,
    config: ExperimentConfig | dict[str, Any],
    data: dict[str, np.ndarray],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    progress: bool = False,
    n_saved_examples: int = N_SAVED_EXAMPLES,
) -> EvalResult:
    """Run `model` over `data` (from `load_eval_data`) in batches, once with its learned halting
    (mode "eval") and once for all M steps (mode "max"), under no_grad. A fixed-depth model
    always runs M steps, so its one forward serves both modes.

    The model is put in eval mode on `device`; the global torch RNG is seeded with the config's
    seed for the run (PonderNet's sampled halting) and restored afterwards.
    """
    from tqdm.auto import tqdm

    cfg = config if isinstance(config, ExperimentConfig) else make_config(dict(config))
    task, limit = get_task(cfg.task), cfg.max_ponder
    criterion = model.criterion  # the model's own, built once with it
    if batch_size < 1:
        raise EvaluationInputError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    model = model.to(device).eval()
    tensor_keys = [k for k in data if k not in ("example_id", "difficulty")]
    n = len(data["example_id"])
    if n == 0:
        # load_eval_data never returns none (a maze split holds >= 1 group, val_size >= 1)
        raise EvaluationInputError(
            "no examples to evaluate: data['example_id'] is empty; pass "
            "load_eval_data's output or a non-empty slice of it"
        )
    records: dict[str, dict[str, list]] = {m: {} for m in MODES}
    penalty = {m: 0.0 for m in MODES}
    saved: dict[str, list] = {"prediction": [], "steps": []}
    starts = range(0, n, batch_size)
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), torch.inference_mode():
        torch.manual_seed(cfg.seed)
        for start in tqdm(starts, desc="evaluate", unit="batch", disable=not progress):
            rows = slice(start, min(start + batch_size, n))
            batch = {
                k: torch.from_numpy(np.ascontiguousarray(data[k][rows])).to(device)
                for k in tensor_keys
            }
            size = rows.stop - rows.start
            out = None
            for mode, forward_mode in MODES.items():
                # fixed depth ignores the mode: its "max" forward would repeat the "eval" one
                if out is None or criterion.mode_matters:
                    out = model(
                        task.model_input(batch),
                        mask=task.model_mask(batch),
                        mode=forward_mode,
                    )
                    rec = {
                        **task.records(out.logits, batch),
                        **unit_steps(out, limit, criterion),
                    }
                penalty[mode] += float(out.ponder_cost) * size
                if mode == "learned" and "prediction" in rec and start < n_saved_examples:
                    saved["prediction"].append(_numpy(rec["prediction"]))
                    saved["steps"].append(_numpy(out.steps.float() * out.unit_mask))
                for key, value in rec.items():
                    if key != "prediction":  # saved above for the first examples only
                        records[mode].setdefault(key, []).append(_numpy(value))
    modes, frames = {}, []
    for mode in MODES:
        rec = {k: np.concatenate(v) for k, v in records[mode].items()}
        modes[mode] = _summary(task, criterion, rec, penalty[mode] / n, limit)
        frame = {
            "example_id": data["example_id"],
            "mode": mode,
            "difficulty": data["difficulty"],
            "correct": rec["correct"].astype(bool),
            "steps_mean": rec["steps_mean"].astype(np.float64),
            "steps_max": rec["steps_max"].astype(np.float64),
            "forced": rec["n_forced"] > 0,
        }
        for extra in task.example_columns:
            frame[extra] = rec[extra]
        for extra in criterion.example_columns:  # per unit, averaged per example
            frame[extra] = rec[extra].astype(np.float64)
        frames.append(pd.DataFrame(frame))
    per_example = pd.concat(frames, ignore_index=True)
    examples = task.examples(data, saved, n_saved_examples)
    return EvalResult(modes=modes, per_example=per_example, examples=examples)


# --- writing ---------------------------------------------------------------------------------


def write_outputs(
    out_dir: str | os.PathLike,
    report: dict[str, Any],
    per_example: pd.DataFrame,
    examples: dict[str, np.ndarray] | None = None,
) -> None:
    """Write examples.npz (if any), per_example.parquet and, last, eval.json into `out_dir`.

    A stale eval.json is removed first, so a present eval.json always belongs to the other files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").unlink(missing_ok=True)
    if examples is not None:
        atomic_write(out / "examples.npz", lambda h: np.savez(h, **examples))
    atomic_write(out / "per_example.parquet", lambda h: per_example.to_parquet(h, index=False))
    atomic_write_text(out / "eval.json", json.dumps(report, indent=1) + "\n")


def evaluate(
    ckpt: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike,
    device: str = "auto",
    batch_size: int = 256,
    split: str = "test",
    n_examples: int | None = None,
    progress: bool | None = None,
    experiment: str | None = None,
    n_saved_examples: int = N_SAVED_EXAMPLES,
) -> dict:
    """Evaluate the checkpoint `ckpt` (its EMA weights when it has them) and write eval.json,
    per_example.parquet and, for the maze, examples.npz to `out_dir`; returns eval.json's dict.

    Raises EvaluationInputError for an unreadable checkpoint, data folder or device.
    """
    from halting import load_model
    from halting.training.checkpoint import CorruptCheckpoint

    dev = resolve_device(device)
    try:
        with torch.random.fork_rng(devices=[]):  # building the model draws its (discarded) init
            model, info = load_model(ckpt, map_location="cpu")
        config = make_config(dict(info["config"]), source=f"{ckpt} config")
    except KeyError as exc:  # a torch file with state_dict and hyper_parameters, but not ours
        raise EvaluationInputError(
            f"{ckpt} is not a halting checkpoint (its hyper_parameters have no {exc})"
        ) from None
    except (FileNotFoundError, IsADirectoryError, CorruptCheckpoint, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        message = first if str(ckpt) in first else f"cannot load checkpoint {ckpt}: {first}"
        raise EvaluationInputError(message) from None
    data_meta = dict(info.get("data_meta") or {})
    data = load_eval_data(config, data_meta, data_dir=data_dir, split=split, n_examples=n_examples)
    if progress is None:
        progress = sys.stderr.isatty()
    result = evaluate_model(
        model,
        config,
        data,
        device=dev,
        batch_size=batch_size,
        progress=progress,
        n_saved_examples=n_saved_examples,
    )
    report = {
        "task": config.task,
        "experiment": experiment,
        "model_type": config.model_type,
        "criterion": config.criterion,
        "tau": config.tau,
        "seed": config.seed,
        "n_examples": int(len(data["example_id"])),
        "split": split,
        "headline": get_task(config.task).headline,
        "code_version": info.get("code_version"),
        "max_ponder": config.max_ponder,
        "ema": bool(config.use_ema),
        "learned": result.modes["learned"],
        "max_steps": result.modes["max_steps"],
    }
    write_outputs(out_dir, report, result.per_example, result.examples)
    return report
