"""Maze-Hard (HRM/TRM): mark the shortest S->G path ('o' cells) of a square maze.

Metrics. `exact_accuracy` is the papers' headline (every scored cell right). Token accuracy is a
weak signal: copying the input already scores 87.50% of cells on Maze-Hard's test split (87.44%
on train), because only the path cells differ (measured in tests/test_metrics.py). The path F1
on 'o' cells and `valid_optimal` (any shortest path, not only the canonical one) are more
telling. Cells whose label is PAD (HRM's ignore_label_id 0) are never scored. The loss is the
per-cell cross-entropy averaged over cells and batch (a per-puzzle ponder cost is then weighed
against a per-cell loss: tau is chosen for that). Difficulty: the shortest path's moves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from halting.data.grid import PAD, PATH, is_valid_optimal


class Maze:
    name = "maze"
    display_name = "Maze"
    headline = "exact_accuracy"
    difficulty_label = "shortest S→G path (moves)"
    input_kind = "grid"
    counts_epochs = True  # epochs over a fixed training set (max_epochs, lr_warmup_epochs)
    fields = ("data_dir", "rnn_encoder", "lr_warmup_epochs")  # the toy tasks count steps
    example_columns = ("token_accuracy", "valid_optimal")

    def check(self, config) -> None:
        if not config.data_dir:
            raise ValueError("config field 'data_dir' is required for task 'maze'")

    def io_shapes(self, config, data_meta: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
        """(cells L, (vocab,)): one output per cell."""
        return int(data_meta["seq_len"]), (int(data_meta["vocab_size"]),)

    def model_input(self, batch):
        return batch["inputs"]

    def model_mask(self, batch):
        return None

    def output_weights(self, p):
        return p

    def unit_loss(self, logits, batch):
        """Cross-entropy per cell (B, L)."""
        return F.cross_entropy(logits.transpose(1, 2), batch["labels"], reduction="none")

    def reduce_loss(self, unit_loss):
        return unit_loss.mean()

    def batch_metrics(self, logits, batch):
        c = maze_metrics(logits.argmax(-1), batch["labels"])
        return {
            "accuracy": c["token_correct"].mean(),
            "exact_accuracy": c["exact"].float().mean(),
            "path_f1": f1_on_device(c["path_tp"], c["path_fp"], c["path_fn"]),
        }

    def records(self, logits, batch):
        pred = logits.argmax(-1)  # (B, L)
        c = maze_metrics(pred, batch["labels"])
        return {
            "correct": c["exact"],
            "token_accuracy": c["token_correct"],
            "path_tp": c["path_tp"],
            "path_fp": c["path_fp"],
            "path_fn": c["path_fn"],
            "valid_optimal": valid_optimal(batch["inputs"], pred),
            "prediction": pred.to(torch.uint8),
        }

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        r = records
        return {
            "exact_accuracy": float(r["correct"].mean()),
            "accuracy": float(r["token_accuracy"].mean()),
            "path_f1": f1_from_counts(r["path_tp"], r["path_fp"], r["path_fn"]),
            "valid_optimal_rate": float(r["valid_optimal"].mean()),
        }

    def examples(self, data: dict[str, np.ndarray], saved: dict[str, list], k: int) -> dict:
        """examples.npz arrays of the first k examples, grids (k, S, S); the steps of a
        per-puzzle halting unit (ACT-RNN) are broadcast over the cells."""
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
            raise ValueError(
                f"maze steps have {steps.shape[1]} units per example: expected 1 or {L}"
            )
        steps = np.broadcast_to(steps, (k, L))
        return {
            "inputs": data["inputs"][:k].reshape(grid).astype(np.uint8),
            "labels": data["labels"][:k].reshape(grid).astype(np.uint8),
            "predictions": prediction.reshape(grid).astype(np.uint8),
            "steps": steps.reshape(grid).astype(np.float32),
            "example_id": data["example_id"][:k].astype(np.int64),
        }

    def datamodule(self, config, data_workers: int = 0):
        from halting.data.modules import MazeDataModule

        return MazeDataModule(config, data_workers)

    def eval_data(self, config, data_meta, data_dir, split, n_examples) -> dict[str, np.ndarray]:
        """`inputs`, `labels` int64 (N, L) from `data_dir` (default: the checkpoint's)."""
        from halting.data.grid import shortest_path_moves
        from halting.data.maze import load_maze_split

        root = data_dir or data_meta.get("data_dir") or config.data_dir
        if not root:
            raise ValueError("no maze data folder: pass data_dir (--data)")
        try:
            maze = load_maze_split(Path(root), split)
        except (OSError, ValueError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"cannot load maze split {split!r} from {root}: {first}") from None
        seq_len = data_meta.get("seq_len")
        if seq_len is not None and maze.inputs.shape[1] != int(seq_len):
            raise ValueError(
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


# --- metrics ---------------------------------------------------------------------------------


def maze_metrics(pred, labels) -> dict:
    """Per-example `exact` (B,) bool, `token_correct` (B,) float (share of scored cells right)
    and path-cell counts `path_tp`, `path_fp`, `path_fn` (B,) int64 on 'o' (PATH) cells."""
    scored = labels != PAD  # (B, L)
    right = (pred == labels) & scored  # (B, L)
    n_scored = scored.sum(dim=1)  # (B,)
    pred_path, label_path = pred == PATH, labels == PATH  # (B, L)
    return {
        "exact": right.sum(dim=1) == n_scored,
        "token_correct": right.sum(dim=1).float() / n_scored.clamp(min=1).float(),
        "path_tp": (pred_path & label_path).sum(dim=1),
        "path_fp": (pred_path & ~label_path & scored).sum(dim=1),
        "path_fn": (~pred_path & label_path).sum(dim=1),
    }


def f1_from_counts(tp, fp, fn) -> float:
    """Micro-averaged F1 = 2 TP / (2 TP + FP + FN) over a set of per-example counts;
    1.0 when neither labels nor predictions hold a path cell (nothing to get wrong)."""
    tp, fp, fn = (float(torch.as_tensor(c).sum()) for c in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return 1.0 if denominator == 0 else 2 * tp / denominator


def f1_on_device(tp, fp, fn):
    """`f1_from_counts` of count tensors as a 0-dim float32 tensor on their device, without a
    device->host sync (training logs it every step). The same float32 value as
    torch.tensor(f1_from_counts(...)) while the sums stay below 2**24 (exact in float32)."""
    tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), 1.0)


def valid_optimal(inputs, pred) -> np.ndarray:
    """(B,) bool: the predicted 'o' cells form a shortest S->G path of the input maze
    (`halting.data.grid.is_valid_optimal`, on CPU, one maze at a time)."""
    inputs_np = torch.as_tensor(inputs).detach().cpu().numpy()  # (B, L)
    pred_np = torch.as_tensor(pred).detach().cpu().numpy()  # (B, L)
    side = math.isqrt(inputs_np.shape[1])
    if side * side != inputs_np.shape[1]:
        raise ValueError(f"maze length {inputs_np.shape[1]} is not a square")
    grids = inputs_np.reshape(-1, side, side)
    preds = pred_np.reshape(-1, side, side)
    return np.array([is_valid_optimal(g, p) for g, p in zip(grids, preds)], dtype=bool)
