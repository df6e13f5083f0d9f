"""The one plotting style of every paper figure: print sizes, fonts, palette and legend labels.

Figures are sized for a two-column paper (`COLUMN_WIDTH` = 3.3 in, `PAGE_WIDTH` = 6.9 in),
saved as vector PDF with TrueType fonts embedded (`pdf.fonttype` 42), and coloured with the
Okabe-Ito palette, which stays distinguishable under the common colour-vision deficiencies.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import matplotlib

from halting.config import max_ponder_of
from halting.criteria import CRITERIA
from halting.tasks import TASKS

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402

COLUMN_WIDTH = 3.3  # in: one column of a two-column paper
PAGE_WIDTH = 6.9  # in: both columns

# Okabe & Ito (2008), "Color Universal Design"; yellow is last: it is faint on white.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
PALETTE = list(OKABE_ITO.values())
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
REFERENCE_COLOUR = "#555555"

RC: dict[str, Any] = {
    "pdf.fonttype": 42,  # TrueType (Type 42) fonts, embedded: text stays text
    "ps.fonttype": 42,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib; has τ, β and ·
    "mathtext.fontset": "dejavusans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.title_fontsize": 7,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "figure.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "patch.linewidth": 0.6,
    "savefig.dpi": 300,  # only for the raster parts (maze images)
    "savefig.bbox": "standard",  # keep the exact paper width
    "figure.dpi": 100,
    "image.interpolation": "nearest",
}

MODEL_NAMES = {"act_rnn": "ACT-RNN", "universal_transformer": "UT"}
# Criteria and tasks name themselves (`display_name`, `panel_title`, `penalty_symbol`,
# `difficulty_label`); a name no longer registered is shown as it is.


@contextlib.contextmanager
def context() -> Iterator[None]:
    """Apply `RC` for the duration of a block (drawing *and* saving must happen inside)."""
    with plt.rc_context(RC):
        yield


def format_number(value: float) -> str:
    """Short, exact-looking text for a hyperparameter: 0.001, 1e-4, 0.01, 3."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)))
    if -3 <= exponent < 4:
        return f"{value:.4g}"
    mantissa = value / 10**exponent
    if math.isclose(mantissa, round(mantissa), rel_tol=1e-9):
        return f"{round(mantissa):d}e{exponent}"
    return f"{mantissa:.3g}e{exponent}"


def model_name(model_type: str) -> str:
    return MODEL_NAMES.get(model_type, model_type)


def criterion_name(criterion: str) -> str:
    cls = CRITERIA.get(criterion)
    return cls.display_name if cls else criterion


def penalty_symbol(criterion: str) -> str:
    """The penalty weight's symbol in the criterion's paper: Graves' τ, PonderNet's β."""
    cls = CRITERIA.get(criterion)
    return cls.penalty_symbol if cls and cls.penalty_symbol else "τ"


def criterion_panel_title(criterion: str) -> str:
    """A figure panel's title for one criterion ("fixed depth")."""
    cls = CRITERIA.get(criterion)
    return cls.panel_title if cls else criterion


def fixed_depth(run_meta: Mapping[str, Any]) -> int | None:
    """K of a fixed-depth run, read from its config (time_limit or ut_max_hops), else None."""
    return max_ponder_of(run_meta.get("model_type"), run_meta.get("config") or {})


def penalty_text(run_meta: Mapping[str, Any]) -> str:
    """ "τ=0.001" (ACT), "β=0.01" (PonderNet), "K=6" (fixed depth) or "" when unknown."""
    cls = CRITERIA.get(run_meta.get("criterion"))
    if cls is not None and not cls.has_halting_unit:
        k = fixed_depth(run_meta)
        return f"K={k}" if k is not None else ""
    tau = run_meta.get("tau")
    if tau is None:
        return ""
    return f"{penalty_symbol(run_meta.get('criterion'))}={format_number(tau)}"


def label_for(run_meta: Mapping[str, Any]) -> str:
    """Legend text of a run: "ACT-RNN · ACT · τ=0.001", "UT · PonderNet · β=0.01",
    "UT · fixed · K=6" (model · criterion · penalty weight or depth)."""
    parts = [model_name(run_meta["model_type"]), criterion_name(run_meta["criterion"])]
    penalty = penalty_text(run_meta)
    if penalty:
        parts.append(penalty)
    return " · ".join(parts)


def task_name(task: str) -> str:
    return TASKS[task].display_name if task in TASKS else task


def is_grid_task(task: str) -> bool:
    """Whether a task's examples are square grids (drawn as mazes)."""
    return task in TASKS and TASKS[task].input_kind == "grid"


def difficulty_label(task: str) -> str:
    """What a task's per-example `difficulty` counts (an axis label)."""
    return TASKS[task].difficulty_label if task in TASKS else "difficulty"


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """`plt.subplots` at a paper width (inches) with constrained layout."""
    kwargs.setdefault("squeeze", False)
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kwargs)
