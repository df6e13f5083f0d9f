"""The paper figures, drawn from finished result folders (one figure per PDF file).

Figures per task: training curves, ponder steps against difficulty (Graves 2016, Fig. 6 style),
accuracy against ponder cost with the Pareto front, the distribution of ponder steps per
criterion. Maze only: example predictions with per-cell ponder steps, and Maze-Hard exact
accuracy against the published references. Seeds of an experiment aggregate to a mean line
with a shaded Student-t 95% interval (no band for a single seed). Every builder returns a
matplotlib Figure or raises `NoData` saying what is missing; `make_figures` writes the files.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from halting import style
from halting.io import atomic_path
from halting.runs import (
    Run,
    group_experiments,
    is_maze_hard_30,
    load_runs,
    mean_ci,
    pareto_front,
    t_quantile,
    tasks_of,
)

import matplotlib.pyplot as plt  # noqa: E402  (after halting.style selected Agg)
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

log = logging.getLogger(__name__)

LEVEL = 0.95  # interval level of every band and error bar
MAX_CURVE_POINTS = 400  # training curves are binned to at most this many points per seed
MAX_DIFFICULTY_BINS = 12  # a continuous difficulty is binned to this many equal-width bins
N_MAZE_EXAMPLES = 3
# Maze-Hard exact accuracy (%) published in the TRM paper (Jolicoeur-Martineau 2025, Table 4).
MAZE_HARD_REFERENCES = (("HRM", 74.5), ("TRM-Att", 85.3))

METRIC_NAMES = {
    "exact_accuracy": "exact accuracy",
    "accuracy": "accuracy",
    "accuracy_sequence": "sequence accuracy",
    "accuracy_place": "per-digit accuracy",
    "path_f1": "path F1",
    "valid_optimal_rate": "valid optimal paths",
}
# per_example.parquet's `difficulty`, as halting.evaluate defines it
DIFFICULTY_LABELS = {
    "parity": "non-zero input bits k",
    "addition": "mean digits per input number",
    "maze": "shortest S→G path (moves)",
}
STEPS_LABEL = "mean ponder steps"
CRITERION_PANEL_TITLES = {"act": "ACT", "pondernet": "PonderNet", "fixed": "fixed depth"}
# Maze cell colours, by token PAD, WALL, OPEN, START, GOAL, PATH (halting.data.grid).
MAZE_COLOURS = ("#FFFFFF", "#3A3A3A", "#FFFFFF", "#009E73", "#E69F00", "#0072B2")
MAZE_TOKEN_NAMES = ("", "wall", "open", "start S", "goal G", "path")
ERROR_COLOUR = "#CC79A7"


class NoData(Exception):
    """A figure has nothing to draw; the message says what is missing."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


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


def _task_groups(runs: Sequence[Run], task: str) -> dict[tuple[str, str], list[Run]]:
    groups = group_experiments(r for r in runs if r.task == task)
    if not groups:
        raise NoData(f"no runs of task {task!r}")
    return groups


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unnamed"


def _bottom_legend(fig: Figure, handles, labels, max_cols: int = 3) -> None:
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
    series: Sequence[tuple[np.ndarray, np.ndarray]], max_points: int = MAX_CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval over seeds of curves logged at (possibly) different steps.

    Each seed is linearly interpolated onto a common grid (the union of its steps, or
    `max_points` bins when longer) inside its own range only, so the tail of a longer seed
    is averaged over the seeds that reached it. Returns grid, mean, low, high; the interval
    is NaN where fewer than two seeds cover the step.
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
    quantiles = {k: t_quantile((1 + LEVEL) / 2, k - 1) for k in np.unique(n) if k > 1}
    t = np.array([quantiles.get(k, np.nan) for k in n])
    half = t * sd / np.sqrt(np.maximum(n, 1))
    return grid, mean, mean - half, mean + half


def _plot_band(
    ax,
    x,
    mean,
    lo,
    hi,
    st: dict,
    label: str | None,
    marker: bool = False,
    limits: tuple[float, float] = (-math.inf, math.inf),
) -> None:
    """Mean line and its interval band; the band is clipped to the quantity's range `limits`
    (an accuracy cannot exceed 100%, a step count cannot be negative)."""
    lo, hi = np.clip(lo, *limits), np.clip(hi, *limits)
    ax.plot(
        x,
        mean,
        color=st["color"],
        linestyle=st["linestyle"],
        marker=st["marker"] if marker else None,
        markersize=3,
        label=label,
    )
    band = np.isfinite(lo) & np.isfinite(hi)
    if band.any():
        ax.fill_between(x, lo, hi, where=band, color=st["color"], alpha=0.2, linewidth=0)


def _legend_handle(st: dict, marker: bool = False) -> Line2D:
    return Line2D(
        [],
        [],
        color=st["color"],
        linestyle=st["linestyle"],
        marker=st["marker"] if marker else None,
    )


# --------------------------------------------------------------------------------------------
# 1. Training curves
# --------------------------------------------------------------------------------------------


ACCURACY_LIMITS = (0.0, 100.0)
STEPS_LIMITS = (0.0, math.inf)


def _curve_panels(runs: Sequence[Run]) -> list[tuple[str, str, float, tuple[float, float]]]:
    """(column, y label, scale, limits) of the panels: total loss, validation headline, steps."""
    columns = set()
    for r in runs:
        if r.train_metrics is not None:
            columns.update(c for c in r.train_metrics.columns if r.train_metrics[c].notna().any())
    headline = runs[0].headline
    panels = []
    if "train/loss_total" in columns:
        panels.append(
            ("train/loss_total", "training loss\n(task loss + ponder penalty)", 1.0, STEPS_LIMITS)
        )  # cross-entropy plus a positive penalty: >= 0
    for col in (f"val/{headline}", "val/accuracy"):
        if col in columns:
            panels.append((col, f"validation\n{metric_name(col[4:])} (%)", 100.0, ACCURACY_LIMITS))
            break
    for col, where in (("train/steps", "train"), ("val/steps", "validation")):
        if col in columns:
            panels.append(
                (
                    col,
                    (
                        f"{STEPS_LABEL}\n({where} batches)"
                        if where == "train"
                        else f"{STEPS_LABEL}\n(validation)"
                    ),
                    1.0,
                    STEPS_LIMITS,
                )
            )
            break
    return panels


def training_curves(runs: Sequence[Run], task: str) -> Figure:
    """Loss, validation accuracy and mean ponder steps against training step, one line per
    experiment (mean over seeds, shaded 95% interval)."""
    groups = _task_groups(runs, task)
    with_metrics = [r for g in groups.values() for r in g if r.train_metrics is not None]
    if not with_metrics:
        raise NoData(f"{task}: no run has train_metrics.csv")
    panels = _curve_panels(with_metrics)
    if not panels:
        raise NoData(f"{task}: train_metrics.csv has none of train/loss_total, val/*, */steps")
    labels, styles = experiment_labels(groups), experiment_styles(list(groups))
    fig, axes = style.new_figure(style.PAGE_WIDTH, 2.5, 1, len(panels))
    handles, names = [], []
    for key, group in groups.items():
        drawn = False
        for ax, (col, _, scale, limits) in zip(axes[0], panels):
            series = [
                (r.train_metrics["step"].to_numpy(), r.train_metrics[col].to_numpy() * scale)
                for r in group
                if r.train_metrics is not None and col in r.train_metrics
            ]
            x, mean, lo, hi = seed_band(series)
            if len(x):
                _plot_band(ax, x, mean, lo, hi, styles[key], None, limits=limits)
                drawn = True
        if drawn:
            handles.append(_legend_handle(styles[key]))
            names.append(f"{labels[key]} (n={len(group)})")
    for ax, (_, ylabel, _, _) in zip(axes[0], panels):
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    fig.suptitle(f"{style.task_name(task)}: training curves (mean over n seeds, 95% CI)")
    _bottom_legend(fig, handles, names)
    return fig


# --------------------------------------------------------------------------------------------
# 2. Ponder steps against difficulty
# --------------------------------------------------------------------------------------------


def _learned_rows(run: Run) -> pd.DataFrame | None:
    if run.per_example is None:
        return None
    rows = run.per_example[run.per_example["mode"] == "learned"]
    return rows if len(rows) else None


def _difficulty_bins(values: np.ndarray) -> np.ndarray | None:
    """Edges of equal-width bins when the difficulty takes too many values to show one by one."""
    unique = np.unique(values[np.isfinite(values)])
    if len(unique) <= 2 * MAX_DIFFICULTY_BINS:
        return None
    return np.linspace(unique[0], unique[-1], MAX_DIFFICULTY_BINS + 1)


def ponder_vs_difficulty(runs: Sequence[Run], task: str) -> Figure:
    """Mean ponder steps (learned halting) against example difficulty, one line per experiment:
    per-seed means, then the mean over seeds with a 95% interval."""
    groups = _task_groups(runs, task)
    rows = {key: [(r, _learned_rows(r)) for r in g] for key, g in groups.items()}
    rows = {k: [(r, d) for r, d in v if d is not None] for k, v in rows.items()}
    rows = {k: v for k, v in rows.items() if v}
    if not rows:
        raise NoData(f"{task}: no per_example.parquet with mode == 'learned' rows")
    all_difficulty = np.concatenate(
        [d["difficulty"].to_numpy(float) for v in rows.values() for _, d in v]
    )
    edges = _difficulty_bins(all_difficulty)
    labels, styles = experiment_labels(groups), experiment_styles(list(groups))
    fig, axes = style.new_figure(style.COLUMN_WIDTH, 3.0)
    ax = axes[0, 0]
    handles, names = [], []
    for key, pairs in rows.items():
        series = []
        for _, d in pairs:
            x, y = d["difficulty"].to_numpy(float), d["steps_mean"].to_numpy(float)
            if edges is not None:
                x, y = binned_series(x, y, edges)
            else:
                per = pd.DataFrame({"x": x, "y": y}).groupby("x")["y"].mean()
                x, y = per.index.to_numpy(float), per.to_numpy(float)
            series.append((x, y))
        grid = np.unique(np.concatenate([x for x, _ in series]))
        x, mean, lo, hi = seed_band(series, max_points=max(len(grid), 1))
        _plot_band(ax, x, mean, lo, hi, styles[key], None, marker=True, limits=STEPS_LIMITS)
        handles.append(_legend_handle(styles[key], marker=True))
        names.append(f"{labels[key]} (n={len(pairs)})")
    xlabel = DIFFICULTY_LABELS.get(task, "difficulty")
    if edges is not None:
        xlabel += f", {len(edges) - 1} bins"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{STEPS_LABEL} (learned halting)")
    ax.set_title(f"{style.task_name(task)}: ponder steps vs difficulty")
    _bottom_legend(fig, handles, names, max_cols=1)
    return fig


# --------------------------------------------------------------------------------------------
# 3. Accuracy against ponder cost
# --------------------------------------------------------------------------------------------


def accuracy_vs_ponder(runs: Sequence[Run], task: str) -> Figure:
    """One point per run: mean ponder steps (x) against the task's headline metric (y), with
    the Pareto front (fewest steps, highest accuracy) as a step line."""
    groups = _task_groups(runs, task)
    labels, styles = experiment_labels(groups), experiment_styles(list(groups))
    points = [(key, r.steps_mean, 100.0 * r.headline_value) for key, g in groups.items() for r in g]
    points = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2])]
    if not points:
        raise NoData(f"{task}: no run has a finite headline metric and steps_mean")
    fig, axes = style.new_figure(style.COLUMN_WIDTH, 3.0)
    ax = axes[0, 0]
    xs = np.array([p[1] for p in points])
    ys = np.array([p[2] for p in points])
    front = pareto_front(xs, ys)
    ax.step(xs[front], ys[front], where="post", color="#7F7F7F", linewidth=0.9, zorder=1)
    ax.scatter(
        xs[front], ys[front], s=60, facecolor="none", edgecolor="#7F7F7F", linewidth=0.8, zorder=2
    )
    handles, names = [], []
    for key in groups:
        mine = [(x, y) for k, x, y in points if k == key]
        if not mine:
            continue
        st = styles[key]
        ax.scatter(
            [x for x, _ in mine],
            [y for _, y in mine],
            color=st["color"],
            marker=st["marker"],
            s=22,
            edgecolor="white",
            linewidth=0.4,
            zorder=3,
        )
        handles.append(Line2D([], [], color=st["color"], marker=st["marker"], linestyle=""))
        names.append(f"{labels[key]} (n={len(mine)})")
    handles.append(
        Line2D(
            [],
            [],
            color="#7F7F7F",
            linewidth=0.9,
            marker="o",
            markersize=7,
            markerfacecolor="none",
            markeredgewidth=0.8,
        )
    )
    names.append("Pareto front (fewest steps, highest accuracy)")
    headline = groups[next(iter(groups))][0].headline
    ax.set_xlabel(f"{STEPS_LABEL} per example (learned halting)")
    ax.set_ylabel(f"{metric_name(headline)} (%)")
    ax.set_title(f"{style.task_name(task)}: accuracy vs ponder cost")
    ax.margins(x=0.08, y=0.08)
    _bottom_legend(fig, handles, names, max_cols=1)
    return fig


# --------------------------------------------------------------------------------------------
# 4. Distribution of ponder steps
# --------------------------------------------------------------------------------------------


def _bin_edges(values: np.ndarray) -> np.ndarray:
    """Unit-wide bins centred on whole step counts (N is an integer per halting unit, and a
    mean over units is binned to the nearest count), or 30 bins for a very wide range."""
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi - lo <= 40:
        return np.arange(math.floor(lo + 0.5) - 0.5, math.floor(hi + 0.5) + 1.0, 1.0)
    return np.linspace(lo, hi, 31)


def ponder_distribution(runs: Sequence[Run], task: str) -> Figure:
    """Histogram of per-example mean ponder steps (learned halting, seeds pooled), one panel
    per halting criterion, one outline per experiment."""
    groups = _task_groups(runs, task)
    data = {}
    for key, g in groups.items():
        frames = [d for d in (_learned_rows(r) for r in g) if d is not None]
        if frames:
            data[key] = np.concatenate([d["steps_mean"].to_numpy(float) for d in frames])
    if not data:
        raise NoData(f"{task}: no per_example.parquet with mode == 'learned' rows")
    criteria = sorted(
        {groups[k][0].meta["criterion"] for k in data},
        key=lambda c: list(style.CRITERION_NAMES).index(c) if c in style.CRITERION_NAMES else 99,
    )
    labels, styles = experiment_labels(groups), experiment_styles(list(groups))
    width = style.COLUMN_WIDTH if len(criteria) == 1 else style.PAGE_WIDTH
    fig, axes = style.new_figure(width, 2.6, 1, len(criteria), sharey=True)
    edges = _bin_edges(np.concatenate([v[np.isfinite(v)] for v in data.values()]))
    handles, names = [], []
    for ax, criterion in zip(axes[0], criteria):
        for key, values in data.items():
            if groups[key][0].meta["criterion"] != criterion:
                continue
            values = values[np.isfinite(values)]
            weights = np.full(len(values), 100.0 / max(len(values), 1))
            st = styles[key]
            ax.hist(
                values,
                bins=edges,
                weights=weights,
                histtype="step",
                color=st["color"],
                linestyle=st["linestyle"],
                linewidth=1.2,
            )
            ax.hist(
                values,
                bins=edges,
                weights=weights,
                histtype="stepfilled",
                color=st["color"],
                alpha=0.12,
            )
            handles.append(
                Patch(
                    facecolor=st["color"] + "33", edgecolor=st["color"], linestyle=st["linestyle"]
                )
            )
            names.append(f"{labels[key]} (n={len(groups[key])} seeds)")
        ax.set_title(CRITERION_PANEL_TITLES.get(criterion, style.criterion_name(criterion)))
        ax.set_xlabel(f"{STEPS_LABEL} per example")
    axes[0, 0].set_ylabel("examples (%)")
    fig.suptitle(f"{style.task_name(task)}: distribution of ponder steps (learned halting)")
    _bottom_legend(fig, handles, names, max_cols=2 if len(criteria) > 1 else 1)
    return fig


# --------------------------------------------------------------------------------------------
# 5. Maze examples
# --------------------------------------------------------------------------------------------


def _cell_steps_vary(steps: np.ndarray) -> bool:
    """True when some maze has different ponder steps in different cells (a per-cell model)."""
    flat = steps.reshape(len(steps), -1)
    return bool(np.any(np.nanmax(flat, axis=1) - np.nanmin(flat, axis=1) > 1e-6))


def _maze_axes_off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.4)


def maze_examples(runs: Sequence[Run], experiment: str) -> Figure:
    """Input, label, prediction (wrong cells filled) and, for per-cell halting (UT), the
    ponder-steps heatmap of a few test mazes of one experiment (its lowest seed that saved
    examples.npz). A per-maze model (ACT-RNN) gives its step count in the prediction title."""
    mine = [r for r in runs if r.task == "maze" and r.experiment == experiment]
    with_examples = [r for r in mine if r.examples is not None]
    if not with_examples:
        raise NoData(f"maze/{experiment}: no examples.npz")
    run = min(with_examples, key=lambda r: r.meta["seed"])
    ex = run.examples
    k = min(N_MAZE_EXAMPLES, len(ex["inputs"]))
    if k == 0:
        raise NoData(f"{run.path / 'examples.npz'}: holds no examples")
    steps = ex["steps"][:k].astype(float)
    per_cell = _cell_steps_vary(steps)
    ncols = 4 if per_cell else 3
    cmap = ListedColormap(MAZE_COLOURS)
    norm = BoundaryNorm(np.arange(-0.5, len(MAZE_COLOURS) + 0.5), cmap.N)
    error_cmap = ListedColormap([ERROR_COLOUR])
    fig, axes = style.new_figure(style.PAGE_WIDTH, 1.62 * k + 0.7, k, ncols)
    image = None
    for i in range(k):
        wrong = ex["predictions"][i] != ex["labels"][i]
        n_wrong = int(wrong.sum())
        verdict = "exact" if n_wrong == 0 else f"{n_wrong} wrong cell{'s' * (n_wrong != 1)}"
        if not per_cell:
            verdict += f", {np.nanmean(steps[i]):.1f} steps"
        cells = [
            (ex["inputs"][i], "input"),
            (ex["labels"][i], "label"),
            (ex["predictions"][i], f"prediction: {verdict}"),
        ]
        for j, (grid, title) in enumerate(cells):
            axes[i, j].imshow(grid, cmap=cmap, norm=norm)
            axes[i, j].set_title(title, fontsize=7)
        if n_wrong:
            axes[i, 2].imshow(np.ma.masked_where(~wrong, np.ones(wrong.shape)), cmap=error_cmap)
        if per_cell:
            image = axes[i, 3].imshow(
                steps[i], cmap="viridis", vmin=np.nanmin(steps), vmax=np.nanmax(steps)
            )
            axes[i, 3].set_title(f"ponder steps, mean {np.nanmean(steps[i]):.2f}", fontsize=7)
        axes[i, 0].set_ylabel(f"test maze {int(ex['example_id'][i])}", fontsize=7)
        for ax in axes[i]:
            _maze_axes_off(ax)
    if image is not None:
        bar = fig.colorbar(image, ax=axes[:, 3], shrink=0.85, aspect=30, pad=0.02)
        bar.set_label("ponder steps per cell")
    legend = [
        Patch(facecolor=c, edgecolor="#999999", label=name)
        for c, name in zip(MAZE_COLOURS[1:], MAZE_TOKEN_NAMES[1:])
    ]
    legend.append(Patch(facecolor=ERROR_COLOUR, edgecolor="#999999", label="wrong cell"))
    fig.legend(handles=legend, loc="outside lower center", ncol=len(legend))
    fig.suptitle(f"Maze examples: {style.label_for(run.meta)} (seed {run.meta['seed']})")
    return fig


# --------------------------------------------------------------------------------------------
# 6. Maze-Hard exact accuracy against the published references
# --------------------------------------------------------------------------------------------


def maze_hard_accuracy(runs: Sequence[Run]) -> Figure:
    """Exact accuracy of each Maze-Hard 30x30 experiment (bars: mean; error bars: 95% CI; dots:
    seeds) with the HRM and TRM-Att reference lines (TRM paper, Table 4)."""
    hard = [r for r in runs if is_maze_hard_30(r.meta)]
    if not hard:
        raise NoData("no maze run on 30x30 hard data (maze_size == 30 and 'hard' in dataset)")
    groups = group_experiments(hard)
    labels, styles = experiment_labels(groups), experiment_styles(list(groups))
    width = style.COLUMN_WIDTH if len(groups) <= 4 else style.PAGE_WIDTH
    fig, axes = style.new_figure(width, 2.8)
    ax = axes[0, 0]
    for i, (key, group) in enumerate(groups.items()):
        values = np.array([100.0 * r.metric("exact_accuracy") for r in group])
        mean, lo, hi = mean_ci(values, LEVEL)
        st = styles[key]
        ax.bar(i, mean, width=0.62, color=st["color"], alpha=0.85, zorder=2)
        if len(group) > 1 and math.isfinite(lo):
            ax.errorbar(
                i,
                mean,
                yerr=[[mean - lo], [hi - mean]],
                color="black",
                capsize=2.5,
                linewidth=0.8,
                zorder=3,
            )
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(
            i + jitter, values, s=7, color="white", edgecolor="black", linewidth=0.5, zorder=4
        )
    for name, value in MAZE_HARD_REFERENCES:
        ax.axhline(value, color=style.REFERENCE_COLOUR, linestyle="--", linewidth=0.8, zorder=1)
        ax.annotate(
            f"{name} {value:.1f}",
            xy=(1.0, value),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 1.5),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=6.5,
            color=style.REFERENCE_COLOUR,
        )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([labels[k].replace(" · ", "\n", 1) for k in groups], fontsize=6.5)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("test exact accuracy (%)")
    ax.set_xlabel("model · halting criterion · penalty")
    ax.grid(axis="x", visible=False)
    ax.set_title("Maze-Hard 30×30")
    key = [
        Patch(facecolor="#BBBBBB", label="mean"),
        Line2D([], [], color="black", linewidth=0.8, marker="_", markersize=5, label="95% CI"),
        Line2D(
            [],
            [],
            color="black",
            marker="o",
            markerfacecolor="white",
            markersize=3,
            markeredgewidth=0.5,
            linestyle="",
            label="seed",
        ),
        Line2D(
            [], [], color=style.REFERENCE_COLOUR, linestyle="--", linewidth=0.8, label="published"
        ),
    ]
    fig.legend(handles=key, loc="outside lower center", ncol=4)
    return fig


# --------------------------------------------------------------------------------------------
# All figures, files and CLI
# --------------------------------------------------------------------------------------------


def iter_figures(runs: Sequence[Run]) -> Iterator[tuple[str, Figure]]:
    """(file stem, figure) of every figure the runs have data for, in the paper's order.
    Figures without data are skipped with an INFO log line saying why. Close each figure."""
    tasks = tasks_of(runs)
    builders = [
        *[(f"training_{t}", training_curves, (t,)) for t in tasks],
        *[(f"ponder_vs_difficulty_{t}", ponder_vs_difficulty, (t,)) for t in tasks],
        *[(f"accuracy_vs_ponder_{t}", accuracy_vs_ponder, (t,)) for t in tasks],
        *[(f"ponder_distribution_{t}", ponder_distribution, (t,)) for t in tasks],
        *[
            (f"maze_examples_{_safe_name(exp)}", maze_examples, (exp,))
            for (task, exp) in group_experiments(runs)
            if task == "maze"
        ],
        ("maze_hard_accuracy", maze_hard_accuracy, ()),
    ]
    for name, build, args in builders:
        try:
            fig = build(runs, *args)
        except NoData as why:
            log.info("skipping figure %s: %s", name, why)
            continue
        yield name, fig


def save_pdf(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a one-page vector PDF, atomically (temp file + rename); fixed metadata
    (no creation date) so unchanged data give an identical file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": "halting"})
    return path


def make_figures(
    results_root: str | Path | None,
    out_dir: str | Path,
    run_dirs: Sequence[str | Path] | None = None,
) -> list[Path]:
    """Draw every figure of the runs under `results_root` (or exactly `run_dirs`) into
    `out_dir/<name>.pdf`; returns the written paths."""
    runs = load_runs(results_root, run_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # exists even when no figure has data
    written = []
    with style.context():
        for name, fig in iter_figures(runs):
            try:
                written.append(save_pdf(fig, out_dir / f"{name}.pdf"))
            finally:
                plt.close(fig)
    log.info("wrote %d figure(s) to %s", len(written), out_dir)
    return written


def add_arguments(parser, command: str) -> None:
    from halting.runs import add_run_arguments

    add_run_arguments(parser)
    parser.add_argument("--out", default="results/figures", help="output folder for the PDFs")


def run(args, command: str) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("halting").setLevel(logging.INFO)
    from halting.runs import RunFormatError

    try:
        paths = make_figures(args.results, args.out, args.runs)
    except (RunFormatError, FileNotFoundError, ValueError) as err:
        print(f"halting figures: error: {err}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0
