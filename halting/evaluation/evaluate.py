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

import argparse
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

from halting import metrics
from halting.config import ExperimentConfig, make_config
from halting.criteria import kl_to_geometric
from halting.io import atomic_write, atomic_write_text

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


def _toy_train(config: ExperimentConfig, size: int) -> dict[str, np.ndarray]:
    """The first training batches (steps 0, 1, ...) concatenated and cut to `size` examples."""
    from halting.data import toy

    make_batch, _ = toy.toy_streams(config)  # the very stream training draws from
    parts = [make_batch(step) for step in range(-(-size // config.batch_size))]
    return {k: np.concatenate([p[k] for p in parts])[:size] for k in parts[0]}


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

    Maze: `inputs`, `labels` int64 (N, L) from `data_dir` (default: the checkpoint's data folder).
    Parity / addition: the generator's dict (`x`, `y`, ...) of the validation set (split "test")
    or of the first training batches (split "train").
    """
    if split not in ("test", "train"):
        raise EvaluationInputError(f"split must be 'test' or 'train', got {split!r}")
    if n_examples is not None and n_examples < 1:
        raise EvaluationInputError(f"n_examples must be >= 1, got {n_examples}")
    if config.task == "maze":
        from halting.data.grid import shortest_path_moves
        from halting.data.maze_format import load_maze_split

        root = data_dir or data_meta.get("data_dir") or config.data_dir
        if not root:
            raise EvaluationInputError("no maze data folder: pass data_dir (--data)")
        try:
            maze = load_maze_split(Path(root), split)
        except (OSError, ValueError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EvaluationInputError(
                f"cannot load maze split {split!r} from {root}: {first}"
            ) from None
        seq_len = data_meta.get("seq_len")
        if seq_len is not None and maze.inputs.shape[1] != int(seq_len):
            raise EvaluationInputError(
                f"{root}: mazes have {maze.inputs.shape[1]} cells, the model was trained on "
                f"{seq_len}"
            )
        n = len(maze.inputs) if n_examples is None else min(n_examples, len(maze.inputs))
        inputs = maze.inputs[:n].astype(np.int64)
        side = int(maze.size)
        difficulty = np.array(
            [shortest_path_moves(g) for g in inputs.reshape(n, side, side)], dtype=np.int64
        )
        return {
            "inputs": inputs,
            "labels": maze.labels[:n].astype(np.int64),
            "example_id": np.arange(n, dtype=np.int64),
            "difficulty": difficulty,
        }

    from halting.data import toy

    c = config
    size = c.val_size if n_examples is None else n_examples
    if split == "train":
        data = _toy_train(c, size)
    else:
        _, make_val = toy.toy_streams(c)  # the validation set training validated on
        data = make_val()
    n = len(data["y"]) if n_examples is None else min(n_examples, len(data["y"]))
    data = {k: v[:n] for k, v in data.items()}
    if c.task == "parity":
        difficulty = data["k"].astype(np.int64)
    else:
        numbers = (data["digits"] > 0).sum(axis=1)  # (N,) T, or fewer under "graves"
        difficulty = data["digits"].sum(axis=1) / np.maximum(numbers, 1)  # digits per number
    return {**data, "example_id": np.arange(n, dtype=np.int64), "difficulty": difficulty}


# --- one batch -------------------------------------------------------------------------------


def unit_steps(out, limit: int, lambda_p: float | None = None) -> dict[str, torch.Tensor]:
    """Per-example ponder statistics over the valid halting units of a HaltingOutput:
    `steps_mean`, `steps_max` (B,) float, `n_units`, `n_forced` (B,) int (units with steps >= M)
    and `expected_steps` (B,) the mean of E[n] = sum_n n p_n (PonderNet's reported steps); with
    `lambda_p` (PonderNet), `kl` (B,) the mean of KL(p || truncated geometric(lambda_p))."""
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
        "expected_steps": unit_mean(out.expected_steps.float()),
    }
    if lambda_p is not None:
        stats["kl"] = unit_mean(kl_to_geometric(out.p.double(), lambda_p))
    return stats


def task_records(task: str, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict:
    """Per-example task results of one batch (tensors or numpy, (B,) each); `correct` is the
    headline's per-example verdict (maze exact, parity correct, addition whole sequence)."""
    if task == "parity":
        return {"correct": metrics.parity_correct(logits, batch["y"])}
    if task == "addition":
        c = metrics.addition_correct(logits, batch["y"], batch["mask"])
        return {
            "correct": c["sequence"],
            "place_accuracy": c["place_correct"],
            "place_count": c["place_count"],
        }
    pred = logits.argmax(-1)  # (B, L)
    c = metrics.maze_metrics(pred, batch["labels"])
    return {
        "correct": c["exact"],
        "token_accuracy": c["token_correct"],
        "path_tp": c["path_tp"],
        "path_fp": c["path_fp"],
        "path_fn": c["path_fn"],
        "valid_optimal": metrics.valid_optimal(batch["inputs"], pred),
        "prediction": pred.to(torch.uint8),
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
    task: str, criterion: str, rec: dict[str, np.ndarray], penalty: float, limit: int
) -> dict[str, float]:
    """eval.json's metrics object of one mode from the concatenated per-example records."""
    out: dict[str, float] = {}
    if task == "maze":
        out["exact_accuracy"] = float(rec["correct"].mean())
        out["accuracy"] = float(rec["token_accuracy"].mean())
        out["path_f1"] = metrics.f1_from_counts(rec["path_tp"], rec["path_fp"], rec["path_fn"])
        out["valid_optimal_rate"] = float(rec["valid_optimal"].mean())
    elif task == "parity":
        out["accuracy"] = float(rec["correct"].mean())
    else:
        count = rec["place_count"].astype(np.float64)
        out["accuracy_place"] = float((rec["place_accuracy"] * count).sum() / max(count.sum(), 1.0))
        out["accuracy_sequence"] = float(rec["correct"].mean())
    out.update(metrics.summarise_steps(rec["steps_mean"], limit))
    # per halting unit, not per example mean (summarise_steps' rate would need every unit at M)
    out["forced_halt_rate"] = float(rec["n_forced"].sum() / max(rec["n_units"].sum(), 1))
    out["forced_halt_rate_examples"] = float((rec["n_forced"] > 0).mean())
    out["penalty"] = penalty
    if criterion == "pondernet":
        units = rec["n_units"].astype(np.float64)
        out["expected_steps_mean"] = float((rec["expected_steps"] * units).sum() / units.sum())
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
    task, limit, criterion = cfg.task, cfg.max_ponder, cfg.criterion
    lambda_p = cfg.lambda_p if criterion == "pondernet" else None  # per-example KL
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
                if out is None or criterion != "fixed":
                    out = model(
                        metrics.model_input(task, batch),
                        mask=metrics.model_mask(task, batch),
                        mode=forward_mode,
                    )
                    rec = {
                        **task_records(task, out.logits, batch),
                        **unit_steps(out, limit, lambda_p),
                    }
                penalty[mode] += float(out.ponder_cost) * size
                if mode == "learned" and task == "maze" and start < n_saved_examples:
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
        for extra in ("token_accuracy", "valid_optimal", "place_accuracy"):
            if extra in rec:
                frame[extra] = rec[extra]
        if criterion == "pondernet":
            frame["expected_steps"] = rec["expected_steps"].astype(np.float64)
            frame["kl"] = rec["kl"].astype(np.float64)
        frames.append(pd.DataFrame(frame))
    per_example = pd.concat(frames, ignore_index=True)
    examples = None
    if task == "maze":
        examples = _maze_examples(data, saved, n_saved_examples)
    return EvalResult(modes=modes, per_example=per_example, examples=examples)


def _maze_examples(data: dict[str, np.ndarray], saved: dict[str, list], k: int) -> dict:
    """examples.npz arrays of the first k examples, grids (k, S, S); the steps of a per-puzzle
    halting unit (ACT-RNN) are broadcast over the cells."""
    k = min(k, len(data["example_id"]))
    L = data["inputs"].shape[1]
    side = int(round(L**0.5))
    grid = (k, side, side)
    if k == 0:
        steps, prediction = np.zeros((0, L)), np.zeros((0, L))
    else:
        steps = np.concatenate(saved["steps"])[:k]  # (k, U)
        prediction = np.concatenate(saved["prediction"])[:k]  # (k, L)
    if steps.shape[1] not in (1, L):
        raise ValueError(f"maze steps have {steps.shape[1]} units per example: expected 1 or {L}")
    steps = np.broadcast_to(steps, (k, L))
    return {
        "inputs": data["inputs"][:k].reshape(grid).astype(np.uint8),
        "labels": data["labels"][:k].reshape(grid).astype(np.uint8),
        "predictions": prediction.reshape(grid).astype(np.uint8),
        "steps": steps.reshape(grid).astype(np.float32),
        "example_id": data["example_id"][:k].astype(np.int64),
    }


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
    from halting.config import HEADLINE
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
        "headline": HEADLINE[config.task],
        "code_version": info.get("code_version"),
        "max_ponder": config.max_ponder,
        "ema": bool(config.use_ema),
        "learned": result.modes["learned"],
        "max_steps": result.modes["max_steps"],
    }
    write_outputs(out_dir, report, result.per_example, result.examples)
    return report


# --- command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.description = (
        "Evaluate a checkpoint at its learned halting and at the maximum number of steps; write "
        "eval.json, per_example.parquet (and examples.npz for mazes) to --out. Maze token "
        "accuracy is weak (copying the input scores ~87.5% on Maze-Hard): read exact_accuracy."
    )
    parser.add_argument("ckpt", help="checkpoint file (final.ckpt, last.ckpt, ...)")
    parser.add_argument(
        "--data",
        dest="data_dir",
        default=None,
        help="maze dataset folder (default: the one the model was trained on)",
    )
    parser.add_argument("--out", dest="out_dir", required=True, help="output folder")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "gpu"))
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument(
        "--n_examples", type=int, default=None, help="evaluate only the first N examples"
    )
    parser.add_argument("--experiment", default=None, help="experiment name for eval.json")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, command: str) -> int:
    try:
        report = evaluate(
            args.ckpt,
            data_dir=args.data_dir,
            out_dir=args.out_dir,
            device=args.device,
            batch_size=args.batch_size,
            split=args.split,
            n_examples=args.n_examples,
            experiment=args.experiment,
            progress=False if args.no_progress else None,
        )
    except EvaluationInputError as exc:
        print(f"halting {command}: error: {exc}", file=sys.stderr)
        return 2
    head = report["headline"]
    print(
        f"{report['task']} {report['model_type']}/{report['criterion']}: "
        f"{head} {report['learned'][head]:.4f} at {report['learned']['steps_mean']:.2f} steps "
        f"(learned), {report['max_steps'][head]:.4f} at {report['max_ponder']} steps (max); "
        f"wrote {args.out_dir}"
    )
    return 0
