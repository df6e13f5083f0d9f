"""Task metrics, per example: training aggregates them per batch on device, evaluation per set.

Maze (HRM/TRM): `exact` is the papers' headline (every cell right). Token accuracy is a weak
signal: copying the input already scores 87.50% of cells on Maze-Hard's test split (87.44% on
train), because only the path cells differ (measured in tests/test_metrics.py). The path F1 on
'o' cells and `valid_optimal` (any shortest path, not only the canonical one) are more telling.
Cells whose label is PAD (HRM's ignore_label_id 0) are never scored.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from halting.data.grid import PAD, PATH, is_valid_optimal


def model_input(task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The tensor a model consumes: parity/addition `x`, maze `inputs`. Here, not in
    `halting.training.system`, so that evaluation reads batches the same way without Lightning."""
    return batch["inputs"] if task == "maze" else batch["x"]


def model_mask(task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The units a model ponders for (B, T): addition's `present` input steps (False on the
    padding of a shorter sequence: no steps, no cost); None (all units) for the other tasks."""
    return batch.get("present") if task == "addition" else None


# --- maze ------------------------------------------------------------------------------------


def maze_metrics(pred: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
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


def f1_on_device(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    """`f1_from_counts` of count tensors as a 0-dim float32 tensor on their device, without a
    device->host sync (training logs it every step). The same float32 value as
    torch.tensor(f1_from_counts(...)) while the sums stay below 2**24 (exact in float32)."""
    tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), 1.0)


def valid_optimal(inputs: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
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


# --- parity and addition (Graves 2016) -------------------------------------------------------


def parity_correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) bool: argmax of the (B, 2) logits equals the parity target."""
    return logits.argmax(dim=-1) == y


def addition_correct(
    logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-example addition accuracy over the scored steps (mask True).

    `place_correct` (B,) float: share of right places among the P places of every scored
    step, blank-target places included (what `accuracy_place` averages, weighted by
    `place_count` (B,) int64). `sequence` (B,) bool: every place of every scored step right.
    An example with no scored step (T = 1) has place_correct 0 and sequence False.
    """
    right = logits.argmax(dim=-1) == y  # (B, T, P)
    scored = mask.unsqueeze(-1).expand_as(right)  # (B, T, P)
    n_right = (right & scored).sum(dim=(1, 2))  # (B,)
    place_count = scored.sum(dim=(1, 2))  # (B,)
    return {
        "place_correct": n_right.float() / place_count.clamp(min=1).float(),
        "place_count": place_count,
        "sequence": (n_right == place_count) & (place_count > 0),
    }


# --- ponder steps ----------------------------------------------------------------------------


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
