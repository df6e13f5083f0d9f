"""What every paper figure shares: metric and experiment labels, colours, the seed-averaged
band with its Student-t 95% interval (from 3 seeds up, clipped to the quantity's range), legends,
and `NoData` (a figure with nothing to draw)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

# isort: split  (matplotlib after halting.report.style, which selects the Agg backend)
from matplotlib.figure import Figure  # noqa: E402  (after halting.report.style selected Agg)
from matplotlib.lines import Line2D  # noqa: E402

from halting.report import style
from halting.report.runs import Run
from halting.report.stats import UNBOUNDED, group_experiments, t_interval

LEVEL = 0.95  # interval level of every band and error bar
BAND_RULE = "95% CI from 3 seeds"  # caption of the interval rule (halting.report.stats.mean_ci)
ACCURACY_LIMITS = (0.0, 100.0)  # range of an accuracy in %
MAX_CURVE_POINTS = 400  # training curves are binned to at most this many points per seed
METRIC_NAMES = {
    "exact_accuracy": "exact accuracy",
    "accuracy": "accuracy",
    "accuracy_sequence": "sequence accuracy",
    "accuracy_place": "per-digit accuracy",
    "path_f1": "path F1",
    "valid_optimal_rate": "valid optimal paths",
}
STEPS_LABEL = "mean ponder steps"


class NoData(Exception):
    """A figure has nothing to draw; the message says what is missing."""


def metric_name(name: str) -> str:
    return METRIC_NAMES.get(name, name.replace("_", " "))


def experiment_labels(groups: dict[tuple[str, str], list[Run]]) -> dict[tuple[str, str], str]:
    """Legend text per experiment; two experiments that would read alike get their names added."""
    labels = {key: style.label_for(runs[0].meta) for key, runs in groups.items()}
    counts: dict[tuple[str, str], int] = {}
    for (task, _), label in labels.items():
        counts[(task, label)] = counts.get((task, label), 0) + 1
    return {
        key: f"{label} ({key[1]})" if counts[(key[0], label)] > 1 else label
        for key, label in labels.items()
    }


def experiment_styles(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Colour, line style and marker per experiment: palette first, then line styles."""
    n = len(style.PALETTE)
    return {
        key: {
            "color": style.PALETTE[i % n],
            "linestyle": style.LINESTYLES[(i // n) % len(style.LINESTYLES)],
            "marker": style.MARKERS[i % len(style.MARKERS)],
        }
        for i, key in enumerate(keys)
    }


def task_groups(runs: Sequence[Run], task: str) -> dict[tuple[str, str], list[Run]]:
    groups = group_experiments(r for r in runs if r.task == task)
    if not groups:
        raise NoData(f"no runs of task {task!r}")
    return groups


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unnamed"


def bottom_legend(fig: Figure, handles, labels, max_cols: int = 3) -> None:
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(max_cols, len(handles)))


def binned_series(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, mean of y in each bin of x) for the bins given by `edges` (the last bin
    includes its right edge); empty bins are dropped. Shared edges keep seeds aligned."""
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    sums = np.bincount(idx, weights=y, minlength=len(edges) - 1)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = counts > 0
    return centres[keep], sums[keep] / counts[keep]


def seed_band(
    series: Sequence[tuple[np.ndarray, np.ndarray]],
    max_points: int = MAX_CURVE_POINTS,
    limits: tuple[float, float] = UNBOUNDED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval over seeds of curves logged at (possibly) different steps.

    Each seed is linearly interpolated onto a common grid (the union of its steps, or
    `max_points` bins when longer) inside its own range only, so the tail of a longer seed
    is averaged over the seeds that reached it. Returns grid, mean, low, high; the interval
    (`halting.report.stats.t_interval`) is clipped to the quantity's range `limits` (an accuracy
    cannot exceed 100%, a step count lies in [1, M]) and is NaN where fewer than 3 seeds
    cover the step.
    """
    cleaned = []
    for x, y in series:
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            frame = pd.DataFrame({"x": x[ok], "y": y[ok]}).groupby("x", sort=True)["y"].mean()
            cleaned.append((frame.index.to_numpy(float), frame.to_numpy(float)))
    if not cleaned:
        empty = np.array([])
        return empty, empty, empty, empty
    grid = np.unique(np.concatenate([x for x, _ in cleaned]))
    if len(grid) > max_points:
        edges = np.linspace(grid[0], grid[-1], max_points + 1)
        cleaned = [binned_series(x, y, edges) for x, y in cleaned]
        grid = np.unique(np.concatenate([x for x, _ in cleaned]))
    values = np.full((len(cleaned), len(grid)), np.nan)
    for i, (x, y) in enumerate(cleaned):
        inside = (grid >= x[0]) & (grid <= x[-1])
        values[i, inside] = np.interp(grid[inside], x, y)
    n = np.isfinite(values).sum(axis=0)
    sd = np.full(len(grid), np.nan)
    mean = values[0].copy()
    if len(cleaned) > 1:
        mean = np.nansum(values, axis=0) / np.maximum(n, 1)
        several = n > 1
        dev = np.where(np.isfinite(values), values - mean, 0.0)
        sd[several] = np.sqrt((dev[:, several] ** 2).sum(axis=0) / (n[several] - 1))
    lo, hi = t_interval(mean, sd, n, LEVEL, limits)
    return grid, mean, lo, hi


def plot_band(ax, x, mean, lo, hi, st: dict, marker: bool = False) -> None:
    """Mean line and its interval band (drawn where the interval is finite)."""
    ax.plot(
        x,
        mean,
        color=st["color"],
        linestyle=st["linestyle"],
        marker=st["marker"] if marker else None,
        markersize=3,
    )
    band = np.isfinite(lo) & np.isfinite(hi)
    if band.any():
        ax.fill_between(x, lo, hi, where=band, color=st["color"], alpha=0.2, linewidth=0)


def legend_handle(st: dict, marker: bool = False) -> Line2D:
    return Line2D(
        [],
        [],
        color=st["color"],
        linestyle=st["linestyle"],
        marker=st["marker"] if marker else None,
    )
