"""The maze figures: example predictions with per-cell ponder steps, and Maze-Hard exact
accuracy against the published references."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# isort: split  (matplotlib after halting.report.style, which selects the Agg backend)
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402  (after halting.report.style)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from halting.report import style
from halting.report.plots_common import (
    ACCURACY_LIMITS,
    BAND_RULE,
    LEVEL,
    NoData,
    experiment_labels,
    experiment_styles,
)
from halting.report.runs import Run, is_maze_hard_30
from halting.report.stats import group_experiments, mean_ci

N_MAZE_EXAMPLES = 3
# Maze-Hard exact accuracy (%) published in the TRM paper (Jolicoeur-Martineau 2025, Table 4).
MAZE_HARD_REFERENCES = (("HRM", 74.5), ("TRM-Att", 85.3))
# Maze cell colours, by token PAD, WALL, OPEN, START, GOAL, PATH (halting.data.grid).
MAZE_COLOURS = ("#FFFFFF", "#3A3A3A", "#FFFFFF", "#009E73", "#E69F00", "#0072B2")
MAZE_TOKEN_NAMES = ("", "wall", "open", "start S", "goal G", "path")
ERROR_COLOUR = "#CC79A7"


# --------------------------------------------------------------------------------------------
# 1. Maze examples
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
    mine = [r for r in runs if style.is_grid_task(r.task) and r.experiment == experiment]
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
# 2. Maze-Hard exact accuracy against the published references
# --------------------------------------------------------------------------------------------


def maze_hard_accuracy(runs: Sequence[Run]) -> Figure:
    """Exact accuracy of each Maze-Hard 30x30 experiment (bars: mean; error bars: 95% CI from 3
    seeds up, clipped to [0, 100]; dots: seeds) with the HRM and TRM-Att reference lines (TRM
    paper, Table 4)."""
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
        mean, lo, hi = mean_ci(values, LEVEL, ACCURACY_LIMITS)
        st = styles[key]
        ax.bar(i, mean, width=0.62, color=st["color"], alpha=0.85, zorder=2)
        if math.isfinite(lo):
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
        Line2D([], [], color="black", linewidth=0.8, marker="_", markersize=5, label=BAND_RULE),
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
    fig.legend(handles=key, loc="outside lower center", ncol=2)
    return fig
