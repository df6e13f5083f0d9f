"""The figures drawn for every task: training curves, ponder steps against difficulty (Graves
2016, Fig. 6 style), accuracy against ponder cost with the Pareto front, and the distribution of
ponder steps per halting criterion."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

# isort: split  (matplotlib after halting.report.style, which selects the Agg backend)
from matplotlib.figure import Figure  # noqa: E402  (after halting.report.style selected Agg)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from halting.report import style
from halting.report.plots_common import (
    ACCURACY_LIMITS,
    BAND_RULE,
    STEPS_LABEL,
    NoData,
    binned_series,
    bottom_legend,
    experiment_labels,
    experiment_styles,
    legend_handle,
    metric_name,
    plot_band,
    seed_band,
    task_groups,
)
from halting.report.runs import Run
from halting.report.stats import criterion_rank, pareto_front, steps_range

MAX_DIFFICULTY_BINS = 12  # a continuous difficulty is binned to this many equal-width bins


# --------------------------------------------------------------------------------------------
# 1. Training curves
# --------------------------------------------------------------------------------------------


LOSS_LIMITS = (0.0, math.inf)
STEPS_LIMITS = None  # a steps panel's range: its experiment's [1, M] (stats.steps_range)


def _curve_panels(runs: Sequence[Run]) -> list[tuple[str, str, float, tuple | None]]:
    """(column, y label, scale, limits) of the panels: total loss, validation headline, steps."""
    columns = set()
    for r in runs:
        if r.train_metrics is not None:
            columns.update(c for c in r.train_metrics.columns if r.train_metrics[c].notna().any())
    headline = runs[0].headline
    panels = []
    if "train/loss_total" in columns:
        panels.append(
            ("train/loss_total", "training loss\n(task loss + ponder penalty)", 1.0, LOSS_LIMITS)
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
    experiment (mean over seeds, shaded 95% interval from 3 seeds up)."""
    groups = task_groups(runs, task)
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
            in_range = steps_range(group[0].meta) if limits is STEPS_LIMITS else limits
            x, mean, lo, hi = seed_band(series, limits=in_range)
            if len(x):
                plot_band(ax, x, mean, lo, hi, styles[key])
                drawn = True
        if drawn:
            handles.append(legend_handle(styles[key]))
            names.append(f"{labels[key]} (n={len(group)})")
    for ax, (_, ylabel, _, _) in zip(axes[0], panels):
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    fig.suptitle(f"{style.task_name(task)}: training curves (mean over n seeds, {BAND_RULE})")
    bottom_legend(fig, handles, names)
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
    per-seed means, then the mean over seeds with a 95% interval from 3 seeds up."""
    groups = task_groups(runs, task)
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
            series.append((x, y))
        steps_limits = steps_range(pairs[0][0].meta)
        x, mean, lo, hi = seed_band(series, limits=steps_limits)  # averages repeated x per seed
        plot_band(ax, x, mean, lo, hi, styles[key], marker=True)
        handles.append(legend_handle(styles[key], marker=True))
        names.append(f"{labels[key]} (n={len(pairs)})")
    xlabel = style.difficulty_label(task)
    if edges is not None:
        xlabel += f", {len(edges) - 1} bins"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{STEPS_LABEL} (learned halting)")
    ax.set_title(
        f"{style.task_name(task)}: ponder steps vs difficulty\n(mean over seeds, {BAND_RULE})"
    )
    bottom_legend(fig, handles, names, max_cols=1)
    return fig


# --------------------------------------------------------------------------------------------
# 3. Accuracy against ponder cost
# --------------------------------------------------------------------------------------------


def accuracy_vs_ponder(runs: Sequence[Run], task: str) -> Figure:
    """One point per run: mean ponder steps (x) against the task's headline metric (y), with
    the Pareto front (fewest steps, highest accuracy) as a step line."""
    groups = task_groups(runs, task)
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
    bottom_legend(fig, handles, names, max_cols=1)
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
    groups = task_groups(runs, task)
    data = {}
    for key, g in groups.items():
        frames = [d for d in (_learned_rows(r) for r in g) if d is not None]
        if frames:
            data[key] = np.concatenate([d["steps_mean"].to_numpy(float) for d in frames])
    if not data:
        raise NoData(f"{task}: no per_example.parquet with mode == 'learned' rows")
    criteria = sorted({groups[k][0].meta["criterion"] for k in data}, key=criterion_rank)
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
        ax.set_title(style.criterion_panel_title(criterion))
        ax.set_xlabel(f"{STEPS_LABEL} per example")
    axes[0, 0].set_ylabel("examples (%)")
    fig.suptitle(f"{style.task_name(task)}: distribution of ponder steps (learned halting)")
    bottom_legend(fig, handles, names, max_cols=2 if len(criteria) > 1 else 1)
    return fig
