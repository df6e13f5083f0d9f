"""One model run with `record_steps=True` as a trace of numpy arrays (final and per-step
predictions, halting weights, ponder steps), a maze prediction's scores, and the toy tasks'
accuracy and ponder steps by difficulty. No Streamlit here: the viewer's pages cache these,
tests call them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from halting.data import toy
from halting.data.grid import PAD, WALL, is_valid_optimal
from halting.evaluation.evaluate import unit_steps
from halting.viewer.images import square

# --- running a model ---------------------------------------------------------------------------


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def forward(
    model: torch.nn.Module,
    x: torch.Tensor,
    mode: str = "eval",
    seed: int = 0,
    mask: torch.Tensor | None = None,
):
    """One no-grad forward with per-step outputs (`mask`: the units that ponder, as
    `halting.metrics.model_mask`); the RNG is seeded so PonderNet's sampled halting gives the
    same answer on every rerun of the page."""
    device = next(model.parameters()).device
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)
        mask = None if mask is None else mask.to(device)
        return model(x.to(device), mask=mask, mode=mode, record_steps=True)


def _steps_run(steps: np.ndarray, limit: int) -> int:
    return int(min(limit, max(1, math.ceil(float(np.max(steps)) - 1e-6))))


@dataclass
class MazeTrace:
    """One maze through a model: numpy arrays only (cacheable)."""

    prediction: np.ndarray  # (S, S) uint8: argmax of the final (halted) output
    step_predictions: np.ndarray  # (M, S, S) uint8: argmax of each ponder step's own output
    p: np.ndarray  # (U, M) halting distribution; U = L cells (UT) or 1 puzzle (RNN)
    halt_prob: np.ndarray  # (U, M) h_n (ACT) / lambda_n (PonderNet)
    steps: np.ndarray  # (U,) ponder steps
    steps_run: int  # ponder steps computed: the slowest unit's

    @property
    def per_cell(self) -> bool:
        """Whether every cell halts on its own (UT) rather than the whole puzzle (RNN)."""
        return self.p.shape[0] > 1

    @property
    def max_steps(self) -> int:
        return self.p.shape[1]

    def cumulative_halting(self, n: int) -> np.ndarray:
        """(U,) probability of having halted by ponder step n: sum_{i<=n} p_i."""
        return self.p[:, :n].sum(axis=1)


def run_maze(model, inputs: np.ndarray, mode: str = "eval", seed: int = 0) -> MazeTrace:
    """Trace one maze (L,) tokens through `model` (`mode` "eval" or "max")."""
    x = torch.as_tensor(np.asarray(inputs, dtype=np.int64).reshape(1, -1))
    out = forward(model, x, mode, seed)
    side = math.isqrt(x.shape[1])
    steps_pred = out.step_logits[:, 0].argmax(-1).cpu().numpy().astype(np.uint8)  # (M, L)
    steps = out.steps[0].cpu().numpy()
    return MazeTrace(
        prediction=out.logits[0].argmax(-1).cpu().numpy().astype(np.uint8).reshape(side, side),
        step_predictions=steps_pred.reshape(-1, side, side),
        p=out.p[0].cpu().numpy(),
        halt_prob=out.halt_prob[0].cpu().numpy(),
        steps=steps,
        steps_run=_steps_run(steps, out.p.shape[-1]),
    )


def mean_halting(trace: MazeTrace, cells: np.ndarray) -> np.ndarray:
    """(M,) halting distribution averaged over the chosen cells (UT) or the puzzle's (RNN)."""
    return trace.p[cells].mean(0) if trace.per_cell else trace.p[0]


def cell_errors(labels: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(S, S) bool: the scored (non-pad) cells where `prediction` differs from `labels`."""
    labels = square(labels)
    return (square(prediction) != labels) & (labels != PAD)


def maze_scores(inputs: np.ndarray, labels: np.ndarray, prediction: np.ndarray) -> dict:
    """Badges of one maze: `exact`, `valid_optimal` (a shortest S-G path, any one),
    `cell_accuracy` over scored cells, and `errors` (S, S) bool (wrong scored cells)."""
    inputs, labels, prediction = square(inputs), square(labels), square(prediction)
    scored = labels != PAD
    errors = cell_errors(labels, prediction)
    return {
        "exact": not bool(errors.any()),
        "valid_optimal": bool(is_valid_optimal(inputs, prediction)),
        "cell_accuracy": float(1.0 - errors.sum() / max(1, scored.sum())),
        "errors": errors,
    }


def step_accuracy(step_predictions: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per ponder step n: `cell accuracy` and `exact` of that step's own output."""
    labels = square(labels)
    scored = labels != PAD
    right = (step_predictions == labels[None]) | ~scored[None]  # (M, S, S)
    n = np.arange(1, len(step_predictions) + 1)
    return pd.DataFrame(
        {
            "cell accuracy": right.reshape(len(n), -1)[:, scored.ravel()].mean(1),
            "exact": right.reshape(len(n), -1).all(1).astype(float),
        },
        index=pd.Index(n, name="ponder step n"),
    )


def wall_mask(inputs: np.ndarray) -> np.ndarray:
    return square(inputs) == WALL


# --- toy tasks ---------------------------------------------------------------------------------


@dataclass
class ToyTrace:
    logits: np.ndarray  # parity (2,), addition (T, P, 11)
    p: np.ndarray  # (U, M)
    halt_prob: np.ndarray  # (U, M)
    steps: np.ndarray  # (U,)


def run_toy(model, x: np.ndarray, mode: str = "eval", seed: int = 0) -> ToyTrace:
    """Trace one parity (bits,) or addition (T, 10D) input through `model`."""
    out = forward(model, torch.as_tensor(np.asarray(x, dtype=np.float32))[None], mode, seed)
    return ToyTrace(
        logits=out.logits[0].cpu().numpy(),
        p=out.p[0].cpu().numpy(),
        halt_prob=out.halt_prob[0].cpu().numpy(),
        steps=out.steps[0].cpu().numpy(),
    )


def example_steps(out) -> torch.Tensor:
    """(B,) mean ponder steps over each example's halting units (as evaluate and training)."""
    return unit_steps(out, out.p.shape[-1])["steps_mean"]


def parity_by_difficulty(
    model, config: dict, per_level: int = 64, seed: int = 0, mode: str = "eval"
) -> pd.DataFrame:
    """Accuracy and mean ponder steps per number k of non-zero entries, `per_level` random
    inputs at each k = 1..bits."""
    bits = int(config["bits"])
    layout = config.get("parity_layout", "random")
    parts = [
        toy.parity_batch(seed, k, per_level, bits, layout, k_min=k, k_max=k)
        for k in range(1, bits + 1)
    ]
    x = np.concatenate([b["x"] for b in parts])
    y, k = np.concatenate([b["y"] for b in parts]), np.concatenate([b["k"] for b in parts])
    out = forward(model, torch.from_numpy(x), mode, seed)
    frame = pd.DataFrame(
        {
            "k": k,
            "correct": (out.logits.argmax(-1).cpu().numpy() == y),
            "steps": example_steps(out).cpu().numpy(),
        }
    )
    return _group(frame, "k", "non-zero entries k")


def addition_by_difficulty(
    model, config: dict, size: int = 256, seed: int = 0, mode: str = "eval"
) -> pd.DataFrame:
    """Per input step t >= 2 of `size` random sequences, grouped by the digits of the number
    added at t: share of steps whose sum is right in every place, and mean ponder steps there."""
    batch = toy.addition_batch(
        seed,
        0,
        size,
        int(config["sequence_length"]),
        int(config["max_digits"]),
        config.get("addition_distribution", "fixed"),
    )
    present = torch.from_numpy(batch["present"])  # (B, T): False past a shorter sequence's end
    out = forward(model, torch.from_numpy(batch["x"]), mode, seed, mask=present)
    right = (out.logits.argmax(-1).cpu().numpy() == batch["y"]).all(-1)  # (B, T)
    steps = out.steps.cpu().numpy()  # (B, T): one unit per input step for both backbones
    scored = batch["mask"]
    frame = pd.DataFrame(
        {"digits": batch["digits"][scored], "correct": right[scored], "steps": steps[scored]}
    )
    return _group(frame, "digits", "digits of the added number")


def _group(frame: pd.DataFrame, key: str, label: str) -> pd.DataFrame:
    table = frame.groupby(key).agg(
        examples=("correct", "size"), accuracy=("correct", "mean"), mean_steps=("steps", "mean")
    )
    table.index.name = label
    return table.rename(columns={"mean_steps": "mean steps"})
