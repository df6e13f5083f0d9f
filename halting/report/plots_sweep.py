"""Accuracy and ponder steps against the time penalty tau (Graves 2016, Sec. 3.1: on parity,
ponder time falls as tau grows, and accuracy holds until tau is too large).

A sweep is a set of experiments of one task and one criterion with a penalty (ACT's tau,
PonderNet's beta) whose configs are equal apart from that weight (and the seed), over at least
`MIN_SWEEP_TAUS` distinct values: e.g. presets/paper-cpu.yaml's parity16_tau_* together with
parity16_act.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

# isort: split  (matplotlib after halting.report.style, which selects the Agg backend)
from matplotlib.figure import Figure  # noqa: E402  (after halting.report.style selected Agg)
from matplotlib.lines import Line2D  # noqa: E402

from halting.config import RUNBOOK_NAMES, canonical_json
from halting.criteria import CRITERIA
from halting.report import style
from halting.report.plots_common import (
    STEPS_LABEL,
    NoData,
    bottom_legend,
    experiment_styles,
    metric_name,
)
from halting.report.runs import Run

MIN_SWEEP_TAUS = 3  # fewer distinct tau values draw no sweep
# Config fields a sweep may vary: the seed and tau under each backbone's name.
SWEPT_FIELDS = ("seed", *(names["tau"] for names in RUNBOOK_NAMES.values()))


def _sweep_key(run: Run) -> str | None:
    """The run's config without the swept fields, as canonical JSON (None: a criterion without
    a penalty, or no config recorded)."""
    config = run.meta.get("config")
    cls = CRITERIA.get(run.meta["criterion"])
    if cls is None or not cls.has_halting_unit or not isinstance(config, dict):
        return None
    if run.meta["tau"] is None:  # a run.json without its tau
        return None
    return canonical_json({k: v for k, v in config.items() if k not in SWEPT_FIELDS})


def tau_sweeps(runs: Sequence[Run], task: str) -> list[dict[float, list[Run]]]:
    """Every sweep of `task`: {tau: runs at that tau}, tau ascending, in the order the sweeps'
    first runs appear; only sweeps with at least MIN_SWEEP_TAUS distinct tau values."""
    groups: dict[str, dict[float, list[Run]]] = {}
    for r in runs:
        key = _sweep_key(r) if r.task == task else None
        if key is not None:
            groups.setdefault(key, {}).setdefault(float(r.meta["tau"]), []).append(r)
    return [dict(sorted(g.items())) for g in groups.values() if len(g) >= MIN_SWEEP_TAUS]


def _criterion(sweep: dict[float, list[Run]]) -> str:
    """The criterion of a sweep's runs (one: it is part of the config they share)."""
    return next(iter(sweep.values()))[0].meta["criterion"]


def _common_prefix(names: list[str]) -> str:
    """ "parity16_tau_*" for parity16_tau_1e-4, parity16_tau_1e-3, ...; a single name as it is."""
    prefix = os.path.commonprefix(names)
    return names[0] if len(names) == 1 else f"{prefix}*"


def tau_sweep(runs: Sequence[Run], task: str) -> Figure:
    """Two panels against tau (log axis): the headline metric and the mean ponder steps of each
    run (small markers) and their mean over seeds (line), one line per sweep."""
    sweeps = tau_sweeps(runs, task)
    if not sweeps:
        raise NoData(f"{task}: no {MIN_SWEEP_TAUS} experiments that differ only in tau")
    tau = "/".join(sorted({style.penalty_symbol(_criterion(s)) for s in sweeps}))  # τ, β
    fig, axes = style.new_figure(style.PAGE_WIDTH, 2.6, ncols=2)
    styles = experiment_styles([(task, str(i)) for i in range(len(sweeps))])
    handles, names = [], []
    for i, sweep in enumerate(sweeps):
        st = styles[(task, str(i))]
        taus = np.array(list(sweep))
        for ax, value in (
            (axes[0, 0], lambda r: 100.0 * r.headline_value),
            (axes[0, 1], lambda r: r.steps_mean),
        ):
            per_tau = [np.array([value(r) for r in sweep[t]], float) for t in taus]
            for t, ys in zip(taus, per_tau):
                ax.scatter(
                    np.full(len(ys), t),
                    ys,
                    s=9,
                    color=st["color"],
                    alpha=0.5,
                    edgecolor="none",
                    zorder=2,
                )
            means = np.array(
                [np.nanmean(ys) if np.isfinite(ys).any() else np.nan for ys in per_tau]
            )
            ax.plot(
                taus,
                means,
                color=st["color"],
                linestyle=st["linestyle"],
                marker=st["marker"],
                markersize=3.5,
                linewidth=1.0,
                zorder=3,
            )
        experiments = sorted({r.experiment for rs in sweep.values() for r in rs})
        seeds = max(len(rs) for rs in sweep.values())
        handles.append(
            Line2D(
                [],
                [],
                color=st["color"],
                linestyle=st["linestyle"],
                marker=st["marker"],
                markersize=3.5,
            )
        )
        names.append(
            f"{_common_prefix(experiments)} ({len(experiments)} experiments, "
            f"up to {seeds} seeds per {tau})"
        )
    headline = sweeps[0][next(iter(sweeps[0]))][0].headline
    axes[0, 0].set_ylabel(f"{metric_name(headline)} (%)")
    axes[0, 1].set_ylabel(STEPS_LABEL)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xlabel(f"time penalty {tau}")
        ax.margins(y=0.08)
    fig.suptitle(
        f"{style.task_name(task)}: accuracy and ponder steps vs {tau}\n"
        "(line: mean over seeds; points: seeds)"
    )
    bottom_legend(fig, handles, names, max_cols=1)
    return fig
