"""The paper preset's goals, checked against a finished run: Markdown tables for docs/results.md.

    python benchmarks/paper_goals.py [--results results] [--config presets/paper-cpu.yaml]

Reads the run folders of presets/paper-cpu.yaml's experiments (results/<task>/<name>/seed<k>/:
eval.json, per_example.parquet, run.json) and prints two tables:

1. every goal of the paper-results issue: target, measured value, met or by how much it falls
   short, and the files the value comes from;
2. every experiment: seeds, headline metric (mean and each seed), mean ponder steps, Spearman rho
   of ponder steps against difficulty, training minutes;
3. with --per-difficulty NAME...: mean ponder steps and accuracy per difficulty of those runs.

Experiments whose runs are missing are listed as missing, never skipped silently.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from halting.report.runs import Run, experiment_table, load_run  # noqa: E402
from halting.report.stats import difficulty_rho, mean_ci  # noqa: E402


@dataclass(frozen=True)
class Goal:
    """One goal: `value(runs by experiment)` compared with `target` by `sense` (">=" or "<=")."""

    what: str  # the paper's finding, in a few words
    experiments: tuple[str, ...]  # runs the value is computed from
    measure: str  # what the value is
    value: Callable[[dict[str, list[Run]]], float]
    sense: str
    target: float
    unit: str = "%"  # "%": a fraction shown in percent; "": a plain number


def _head(runs: list[Run]) -> np.ndarray:
    return np.array([r.headline_value for r in runs], float)


def _learned(runs: list[Run], key: str) -> np.ndarray:
    return np.array([r.eval["learned"].get(key, math.nan) for r in runs], float)


def _rho(runs: list[Run]) -> float:
    """Mean rho over seeds, the summary's rule (`mean_ci`: NaN seeds dropped)."""
    return mean_ci([difficulty_rho(r.per_example) for r in runs])[0]


SWEEP = (
    "parity16_tau_1e-4",
    "parity16_tau_1e-3",
    "parity16_tau_3e-3",
    "parity16_tau_1e-2",
    "parity16_tau_1e-1",
)


def _sweep_ponder_falls(runs: dict[str, list[Run]]) -> float:
    """Spearman rho of tau against mean ponder steps over the sweep's runs (negative: falls)."""
    from scipy import stats

    pairs = [(r.meta["tau"], r.steps_mean) for name in SWEEP for r in runs[name]]
    return float(stats.spearmanr(*zip(*pairs)).statistic)


GOALS = [
    Goal(
        "ACT solves 16-bit parity",
        ("parity16_act",),
        "mean accuracy over seeds",
        lambda g: _head(g["parity16_act"]).mean(),
        ">=",
        0.99,
    ),
    Goal(
        "ACT solves 16-bit parity",
        ("parity16_act",),
        "lowest seed's accuracy",
        lambda g: _head(g["parity16_act"]).min(),
        ">=",
        0.97,
    ),
    Goal(
        "ponder grows with difficulty",
        ("parity16_act",),
        "Spearman rho(ponder, non-zero entries), mean over seeds",
        lambda g: _rho(g["parity16_act"]),
        ">=",
        0.9,
        "",
    ),
    Goal(
        "one step cannot",
        ("parity16_fixed1",),
        "accuracy",
        lambda g: _head(g["parity16_fixed1"]).mean(),
        "<=",
        0.60,
    ),
    Goal(
        "ponder falls as tau grows",
        SWEEP,
        "Spearman rho(tau, ponder) over the sweep",
        _sweep_ponder_falls,
        "<=",
        -0.8,
        "",
    ),
    Goal(
        "PonderNet extrapolates, ACT less",
        ("parity16_extrap_pondernet", "parity16_extrap_act"),
        "accuracy on k = 9..16: PonderNet minus ACT",
        lambda g: (
            _head(g["parity16_extrap_pondernet"]).mean() - _head(g["parity16_extrap_act"]).mean()
        ),
        ">=",
        0.10,
    ),  # "well above": 10 points
    Goal(
        "ACT solves Graves' addition",
        ("addition_graves_act",),
        "sequence accuracy",
        lambda g: _head(g["addition_graves_act"]).mean(),
        ">=",
        0.95,
    ),
    Goal(
        "ACT-RNN solves the maze",
        ("maze12_act_rnn",),
        "exact accuracy",
        lambda g: _head(g["maze12_act_rnn"]).mean(),
        ">=",
        0.90,
    ),
    Goal(
        "ACT-RNN solves the maze",
        ("maze12_act_rnn",),
        "valid-optimal rate",
        lambda g: _learned(g["maze12_act_rnn"], "valid_optimal_rate").mean(),
        ">=",
        0.90,
    ),
    Goal(
        "maze ponder grows with path length",
        ("maze12_act_rnn",),
        "Spearman rho(ponder, shortest path)",
        lambda g: _rho(g["maze12_act_rnn"]),
        ">=",
        0.5,
        "",
    ),
]


def fmt(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.1f}%" if unit == "%" else f"{value:.3f}"


def verdict(goal: Goal, value: float, measured: bool = True) -> str:
    """ "met", or the shortfall: "short by 3.2 points" / "short by 0.041"; "not measured"
    without the runs. A rank correlation of runs that exist is undefined (NaN) only when the
    ponder steps (or the difficulty) do not vary: no growth with difficulty, so short."""
    if not measured:
        return "not measured"
    if not math.isfinite(value):
        return "short: undefined, the ponder steps (or the difficulty) do not vary"
    gap = goal.target - value if goal.sense == ">=" else value - goal.target
    if gap <= 0:
        return "met"
    return f"short by {100 * gap:.1f} points" if goal.unit == "%" else f"short by {gap:.3f}"


def load_preset_runs(results: Path, preset: dict) -> tuple[dict[str, list[Run]], list[str]]:
    """Runs of each of the preset's experiments (seed order) and the run folders missing."""
    runs, missing = {}, []
    for name in preset.get("run_experiments") or preset["experiments"]:
        block = preset["experiments"][name]
        runs[name] = []
        for seed in block["seeds"]:
            run_dir = results / block["task"] / name / f"seed{seed}"
            if (run_dir / "eval.json").is_file():
                runs[name].append(load_run(run_dir))
            else:
                missing.append(str(run_dir))
    return runs, missing


def goals_table(runs: dict[str, list[Run]]) -> list[str]:
    lines = [
        "| finding | experiment | measure | goal | measured | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for goal in GOALS:
        have = all(runs.get(n) for n in goal.experiments)
        value = goal.value(runs) if have else math.nan
        target = f"{goal.sense} {fmt(goal.target, goal.unit)}"
        lines.append(
            f"| {goal.what} | {', '.join(goal.experiments)} | {goal.measure} | {target} "
            f"| {fmt(value, goal.unit)} | {verdict(goal, value, have)} |"
        )
    return lines


def experiments_table(runs: dict[str, list[Run]]) -> list[str]:
    lines = [
        "| experiment | seeds | headline | mean (seeds) | ponder | rho(ponder, difficulty) "
        "| train min | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # the summary's own per-experiment numbers (results/summary.csv)
    table = experiment_table([r for rs in runs.values() for r in rs]).set_index("experiment")
    for name, rs in runs.items():
        if not rs:
            lines.append(f"| {name} | 0 | missing | | | | | |")
            continue
        row = table.loc[name]
        seeds = ", ".join(f"{100 * v:.1f}" for v in _head(rs))
        minutes = row["train_seconds_mean"] / 60
        train = f"{minutes:.1f}" if math.isfinite(minutes) else "n/a"
        source = f"results/{rs[0].task}/{name}/seed*/eval.json"
        lines.append(
            f"| {name} | {len(rs)} | {row['headline']} | {100 * row['headline_mean']:.1f}% "
            f"({seeds}) | {row['steps_mean']:.2f} | {row['rho_mean']:.3f} | {train} | `{source}` |"
        )
    return lines


def difficulty_table(runs: list[Run], bins: int = 8) -> list[str]:
    """Mean ponder steps and accuracy per difficulty value over all seeds' learned rows (a
    difficulty with more than 16 values is cut into `bins` equal-width bins): the evidence
    behind a rho."""
    import pandas as pd

    rows = pd.concat(
        [
            r.per_example[r.per_example["mode"] == "learned"]
            for r in runs
            if r.per_example is not None
        ]
    )
    key = rows["difficulty"]
    if key.nunique() > 16:
        key = pd.cut(key, bins).map(lambda iv: f"{iv.left:.0f}-{iv.right:.0f}")
    table = rows.groupby(key, observed=True).agg(
        steps=("steps_mean", "mean"), correct=("correct", "mean"), n=("correct", "size")
    )
    lines = [
        "| difficulty | " + " | ".join(str(k) for k in table.index) + " |",
        "|---|" + "---|" * len(table),
    ]
    lines.append("| mean ponder | " + " | ".join(f"{v:.2f}" for v in table["steps"]) + " |")
    lines.append("| accuracy | " + " | ".join(f"{100 * v:.0f}%" for v in table["correct"]) + " |")
    lines.append("| examples | " + " | ".join(str(v) for v in table["n"]) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--results", default="results", help="the workflow's results folder")
    ap.add_argument("--config", default="presets/paper-cpu.yaml", help="the paper preset")
    ap.add_argument(
        "--per-difficulty",
        nargs="+",
        default=[],
        metavar="EXPERIMENT",
        help="also print ponder and accuracy per difficulty of these experiments",
    )
    args = ap.parse_args(argv)
    preset = yaml.safe_load(Path(args.config).read_text())
    results = Path(args.results)
    runs, missing = load_preset_runs(results, preset)
    print("\n".join(goals_table(runs)))
    print()
    print("\n".join(experiments_table(runs)))
    for name in args.per_difficulty:
        if runs.get(name):
            print(f"\n{name} (all seeds):\n" + "\n".join(difficulty_table(runs[name])))
    if missing:
        print("\nmissing run folders: " + ", ".join(missing))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
