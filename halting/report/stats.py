"""Aggregation over seeds, shared by the figures and the summary: runs grouped into
experiments in the canonical order, Student-t intervals, Spearman's rho between ponder steps and
difficulty, and the Pareto front of cost against score.

Runs with the same (task, experiment) are seeds of one experiment: they aggregate to their mean
and, from MIN_SEEDS_FOR_INTERVAL seeds up, a Student-t 95% interval clipped to the quantity's
range (FRACTION, RHO, `steps_range`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from halting.config import max_ponder_of
from halting.criteria import CRITERIA
from halting.tasks import TASKS


class Run(Protocol):
    """What the grouping reads of a run (halting.report.runs.Run, which builds on this module)."""

    meta: dict[str, Any]
    task: str
    experiment: str
    key: tuple[str, str]


MIN_SEEDS_FOR_INTERVAL = 3  # fewer seeds: no interval; the seeds' values are shown instead
FRACTION = (0.0, 1.0)  # range of accuracies, exact accuracy, path F1 and rates
RHO = (-1.0, 1.0)  # range of a rank correlation
UNBOUNDED = (-math.inf, math.inf)


def _rank(order: tuple[str, ...], name: str) -> tuple[int, str]:
    """Sort key: position in `order`, names not in it last (alphabetically)."""
    return (order.index(name) if name in order else len(order), name)


def task_rank(task: str) -> tuple[int, str]:
    """Sort key of a task: the config's order (maze, parity, addition)."""
    return _rank(tuple(TASKS), task)


def criterion_rank(criterion: str) -> tuple[int, str]:
    """Sort key of a criterion: the config's order (act, pondernet, fixed)."""
    return _rank(tuple(CRITERIA), criterion)


def run_sort_key(run: Run) -> tuple:
    """Sort key of a run: task, model, criterion, tau (none first), experiment, seed."""
    m = run.meta
    tau = -math.inf if m["tau"] is None else float(m["tau"])
    criterion = criterion_rank(m["criterion"])
    return (task_rank(run.task), m["model_type"], criterion, tau, run.experiment, m["seed"])


def group_experiments(runs: Iterable[Run]) -> dict[tuple[str, str], list[Run]]:
    """(task, experiment) -> its runs (seeds), in the canonical order of `run_sort_key` (the
    order `load_runs` returns)."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(runs, key=run_sort_key):
        groups.setdefault(run.key, []).append(run)
    return groups


def tasks_of(runs: Iterable[Run]) -> list[str]:
    """The tasks of `runs`, in the config's order."""
    return sorted({r.task for r in runs}, key=task_rank)


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with `df` degrees of freedom (scipy.stats.t.ppf)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return float(stats.t.ppf(q, df))


def steps_range(meta: dict[str, Any]) -> tuple[float, float]:
    """[1, M] for ponder steps: N >= 1, and M from run.json's config (infinite when unknown)."""
    m = max_ponder_of(meta.get("model_type"), meta.get("config") or {})
    return (1.0, math.inf if m is None else float(m))


def t_interval(
    mean: Any, sd: Any, n: Any, level: float = 0.95, limits: tuple[float, float] = UNBOUNDED
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) = mean +- t_{(1+level)/2, n-1} * sd / sqrt(n), clipped to the quantity's
    range `limits`; NaN where n < MIN_SEEDS_FOR_INTERVAL (elementwise over arrays)."""
    mean, sd, n = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (mean, sd, n)))
    shown = n >= MIN_SEEDS_FOR_INTERVAL
    t = np.full(n.shape, np.nan)
    for k in np.unique(n[shown]):
        t[n == k] = t_quantile((1.0 + level) / 2.0, k - 1)
    half = np.where(shown, t * sd / np.sqrt(np.maximum(n, 1.0)), np.nan)
    return np.clip(mean - half, *limits), np.clip(mean + half, *limits)


def finite_values(values: Iterable[float]) -> np.ndarray:
    """The finite ones of `values` as a float array (NaN and inf dropped)."""
    x = np.asarray(list(values), dtype=float)
    return x[np.isfinite(x)]


def mean_ci(
    values: Iterable[float], level: float = 0.95, limits: tuple[float, float] = UNBOUNDED
) -> tuple[float, float, float]:
    """(mean, low, high) of `values` over seeds, with the Student-t interval of `t_interval`
    (clipped to `limits`). NaNs are dropped; under MIN_SEEDS_FOR_INTERVAL values low and high
    are NaN (two seeds give t_{0.975,1} = 12.7: an interval wider than any metric's range)."""
    x = finite_values(values)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
    lo, hi = t_interval(mean, sd, x.size, level, limits)
    return (mean, float(lo), float(hi))


def seed_values(values: Iterable[float]) -> str:
    """The seeds' values as one space-separated string ("0.956 0.809"; NaN as "nan")."""
    return " ".join(f"{float(v):.6g}" for v in values)


def difficulty_rho(per_example: pd.DataFrame | None) -> float:
    """Spearman's rank correlation rho between each example's ponder steps (`steps_mean`) and
    its `difficulty`, over the rows of mode "learned" (scipy.stats.spearmanr; ties get mean
    ranks). NaN when undefined: no table, fewer than 2 finite pairs, or a constant column."""
    if per_example is None:
        return math.nan
    rows = per_example[per_example["mode"] == "learned"]
    steps = rows["steps_mean"].to_numpy(float)
    difficulty = rows["difficulty"].to_numpy(float)
    ok = np.isfinite(steps) & np.isfinite(difficulty)
    steps, difficulty = steps[ok], difficulty[ok]
    if steps.size < 2 or np.ptp(steps) == 0 or np.ptp(difficulty) == 0:
        return math.nan
    return float(stats.spearmanr(steps, difficulty).statistic)


def pareto_front(cost: Sequence[float], score: Sequence[float]) -> np.ndarray:
    """Indices of the points no other point beats (lower-or-equal cost and higher-or-equal
    score, one of them strictly), sorted by increasing cost. NaN points are never on it.
    Among exact duplicates the first index is kept.
    """
    cost = np.asarray(cost, dtype=float)
    score = np.asarray(score, dtype=float)
    if cost.shape != score.shape:
        raise ValueError(f"cost and score differ in shape: {cost.shape} vs {score.shape}")
    ok = np.flatnonzero(np.isfinite(cost) & np.isfinite(score))
    # cheapest first; at equal cost the best score first; then by index for stable ties
    order = ok[np.lexsort((ok, -score[ok], cost[ok]))]
    front: list[int] = []
    best = -math.inf
    for i in order:
        if score[i] > best:
            front.append(int(i))
            best = score[i]
    return np.asarray(front, dtype=int)
