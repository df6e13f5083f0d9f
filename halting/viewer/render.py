"""Pure helpers of the Streamlit viewer (`halting.viewer.app`): no Streamlit here, tests call them.

Maze grids become RGB images in one palette; one model run with `record_steps=True` becomes a
trace of numpy arrays (final and per-step predictions, halting weights, ponder steps); the toy
tasks' inputs are parsed from text; result folders are searched and training curves smoothed.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from halting.data import toy
from halting.data.grid import PAD, WALL, is_valid_optimal
from halting.evaluation.evaluate import unit_steps

# --- palette ---------------------------------------------------------------------------------

# Indexed by token PAD, WALL, OPEN, START, GOAL, PATH (halting.data.grid).
PALETTE = np.array(
    [
        (190, 190, 196),  # pad: grey
        (44, 48, 61),  # wall: charcoal
        (247, 245, 239),  # open: paper white
        (0, 158, 115),  # S: bluish green
        (213, 94, 0),  # G: vermillion
        (0, 114, 178),  # path: blue
    ],
    dtype=np.uint8,
)
TOKEN_NAMES = ("pad", "wall", "open", "start S", "goal G", "path")
ERROR_RGB = np.array((255, 0, 144), dtype=np.uint8)  # magenta frame around a wrong cell
LINE_RGB = np.array((214, 210, 200), dtype=np.uint8)  # thin grid lines
# Parity entries -1, 0, +1 (index value + 1).
BIT_PALETTE = np.array([(230, 159, 0), (225, 225, 230), (86, 180, 233)], dtype=np.uint8)


def hex_colour(rgb) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def cell_pixels(size: int, target: int = 480) -> int:
    """Pixels per cell so a `size`-cell side is about `target` pixels (6 to 48)."""
    return max(6, min(48, target // max(1, size)))


def square(grid: np.ndarray) -> np.ndarray:
    """A flat (L,) grid as (S, S); a 2-D grid unchanged."""
    grid = np.asarray(grid)
    if grid.ndim == 2:
        return grid
    side = math.isqrt(grid.size)
    if side * side != grid.size:
        raise ValueError(f"a grid of {grid.size} cells is not square")
    return grid.reshape(side, side)


def tiles_rgb(colours: np.ndarray, cell_px: int, errors: np.ndarray | None = None) -> np.ndarray:
    """(R, C, 3) cell colours -> (R*px, C*px, 3) uint8 image with grid lines and error frames."""
    img = np.repeat(np.repeat(colours.astype(np.uint8), cell_px, 0), cell_px, 1)
    if cell_px >= 8:  # one-pixel line on each cell's right and bottom edge
        img[cell_px - 1 :: cell_px, :] = (
            img[cell_px - 1 :: cell_px, :] * 0.55 + LINE_RGB * 0.45
        ).astype(np.uint8)
        img[:, cell_px - 1 :: cell_px] = (
            img[:, cell_px - 1 :: cell_px] * 0.55 + LINE_RGB * 0.45
        ).astype(np.uint8)
    if errors is not None:
        width = max(2, cell_px // 8)
        frame = np.zeros((cell_px, cell_px), dtype=bool)
        frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
        mask = np.kron(np.asarray(errors, dtype=bool), frame).astype(bool)
        img[mask] = ERROR_RGB
    return img


def grid_rgb(
    grid: np.ndarray, cell_px: int | None = None, errors: np.ndarray | None = None
) -> np.ndarray:
    """A maze grid of tokens (S, S) or (L,) as an RGB image; `errors` (S, S) cells get a frame."""
    grid = square(grid)
    cell_px = cell_px or cell_pixels(grid.shape[0])
    colours = PALETTE[np.clip(grid.astype(np.int64), 0, len(PALETTE) - 1)]
    return tiles_rgb(colours, cell_px, None if errors is None else square(errors))


@functools.lru_cache(maxsize=8)
def colour_table(cmap: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap."""
    import matplotlib

    rgb = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    return (rgb * 255).round().astype(np.uint8)


def heatmap_rgb(
    values: np.ndarray,
    vmin: float,
    vmax: float,
    cmap: str = "viridis",
    cell_px: int | None = None,
    dim: np.ndarray | None = None,
) -> np.ndarray:
    """Per-cell values (S, S) or (L,) as a colour-mapped image; `dim` cells (walls) darkened."""
    values = square(np.asarray(values, dtype=np.float64))
    cell_px = cell_px or cell_pixels(values.shape[0])
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip(np.round((values - vmin) / span * 255), 0, 255).astype(np.int64)
    colours = colour_table(cmap)[idx].astype(np.float64)
    if dim is not None:
        colours[square(dim)] = colours[square(dim)] * 0.45
    return tiles_rgb(colours, cell_px)


def colourbar_rgb(cmap: str = "viridis", width: int = 256, height: int = 14) -> np.ndarray:
    """A horizontal colour scale strip (height, width, 3) for a heatmap's legend."""
    table = colour_table(cmap)[np.linspace(0, 255, width).round().astype(np.int64)]
    return np.repeat(table[None], height, axis=0)


def bits_rgb(bits: np.ndarray, cell_px: int = 26) -> np.ndarray:
    """A parity input vector in {-1, 0, +1} as one row of coloured cells."""
    idx = np.clip(np.asarray(bits).round().astype(np.int64) + 1, 0, 2)
    return tiles_rgb(BIT_PALETTE[idx][None], cell_px)


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


def parse_bits(text: str, bits: int) -> np.ndarray:
    """Parity input from text: characters + - 0 (or 1 for +1), or numbers -1 0 1 separated by
    spaces or commas; padded with 0 to `bits`. ValueError names what is wrong."""
    text = text.strip()
    if re.search(r"[\s,]", text):
        values = []
        for token in re.split(r"[\s,]+", text):
            if token.lstrip("+") not in ("-1", "0", "1"):
                raise ValueError(f"{token!r} is not one of -1, 0, 1")
            values.append(int(token))
    else:
        chars = {"+": 1, "1": 1, "-": -1, "0": 0, ".": 0}
        bad = sorted(set(text) - set(chars))
        if bad:
            raise ValueError(f"unexpected character(s) {''.join(bad)!r}: use + - 0")
        values = [chars[c] for c in text]
    if len(values) > bits:
        raise ValueError(f"{len(values)} entries, but the model takes {bits}")
    return np.array(values + [0] * (bits - len(values)), dtype=np.float32)


def format_bits(x: np.ndarray) -> str:
    return "".join({1: "+", -1: "-", 0: "0"}[int(v)] for v in np.asarray(x).round())


def parity_target(x: np.ndarray) -> int:
    return int((np.asarray(x) == 1).sum() % 2)


def parse_numbers(text: str, sequence_length: int, max_digits: int) -> list[int]:
    """Addition input: 1..T non-negative integers of at most D digits, separated by spaces,
    commas or +."""
    tokens = [t for t in re.split(r"[\s,+]+", text.strip()) if t]
    if not tokens:
        raise ValueError("type at least one number")
    bad = [t for t in tokens if not t.isdigit()]
    if bad:
        raise ValueError(f"not a non-negative integer: {bad[0]!r}")
    numbers = [int(t) for t in tokens]
    if len(numbers) > sequence_length:
        raise ValueError(f"{len(numbers)} numbers, but the model was trained on {sequence_length}")
    long = [n for n in numbers if len(str(n)) > max_digits]
    if long:
        raise ValueError(f"{long[0]} has more than {max_digits} digits")
    return numbers


def encode_numbers(numbers: list[int], max_digits: int) -> np.ndarray:
    """(T, 10 D) one-hot digits, most significant first, left-aligned (as `toy.addition_batch`)."""
    x = np.zeros((len(numbers), max_digits, 10), dtype=np.float32)
    for t, number in enumerate(numbers):
        for j, digit in enumerate(str(number)):
            x[t, j, int(digit)] = 1.0
    return x.reshape(len(numbers), 10 * max_digits)


def decode_numbers(x: np.ndarray, digits: np.ndarray) -> list[int]:
    """The numbers of an addition input (T, 10 D) with `digits` (T,) digits each."""
    onehot = np.asarray(x).reshape(len(x), -1, 10)  # (T, D, 10)
    return [int("".join(str(d) for d in row.argmax(-1)[:n])) for row, n in zip(onehot, digits)]


def addition_targets(numbers: list[int], places: int) -> np.ndarray:
    """(T, P) digit classes of the cumulative sums (least significant first, 10 = blank)."""
    return toy._sum_targets(np.cumsum(np.asarray(numbers, dtype=np.int64)), places)


def decode_places(classes: np.ndarray) -> str:
    """Digit classes (P,), least significant first, as the number they spell; a digit after
    a blank (not a number) shows the blank as '_'."""
    classes = [int(c) for c in classes]
    while classes and classes[-1] == toy.BLANK:
        classes.pop()
    return "".join("_" if c == toy.BLANK else str(c) for c in reversed(classes)) or "_"


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


# --- runs and training curves ------------------------------------------------------------------

SKIP_DIRS = {"logs", "tensorboard", "figures", "__pycache__"}


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
