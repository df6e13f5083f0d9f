"""The paper figures, drawn from finished result folders (one figure per PDF file).

Figures per task (halting.plots_task): training curves, ponder steps against difficulty
(Graves 2016, Fig. 6 style), accuracy against ponder cost with the Pareto front, the
distribution of ponder steps per criterion. Maze only (halting.plots_maze): example predictions
with per-cell ponder steps, and Maze-Hard exact accuracy against the published references.
Seeds of an experiment aggregate to a mean line with a shaded Student-t 95% interval, clipped to
the quantity's range (no band under 3 seeds; halting.plots_common). Every builder returns a matplotlib Figure or raises
`NoData` saying what is missing; this module orders them (`iter_figures`), writes the files
(`make_figures`) and is the `halting figures` command.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from halting import style
from halting.io import atomic_path
from halting.plots_common import NoData, safe_name
from halting.plots_maze import maze_examples, maze_hard_accuracy
from halting.plots_sweep import tau_sweep
from halting.plots_task import (
    accuracy_vs_ponder,
    ponder_distribution,
    ponder_vs_difficulty,
    training_curves,
)
from halting.runs import (
    Run,
    add_run_arguments,
    group_experiments,
    load_runs,
    run_on_results,
    tasks_of,
)

import matplotlib.pyplot as plt  # noqa: E402  (after halting.style selected Agg)
from matplotlib.figure import Figure  # noqa: E402

log = logging.getLogger(__name__)


def iter_figures(runs: Sequence[Run]) -> Iterator[tuple[str, Figure]]:
    """(file stem, figure) of every figure the runs have data for, in the paper's order.
    Figures without data are skipped with an INFO log line saying why. Close each figure."""
    tasks = tasks_of(runs)
    builders = [
        *[(f"training_{t}", training_curves, (t,)) for t in tasks],
        *[(f"ponder_vs_difficulty_{t}", ponder_vs_difficulty, (t,)) for t in tasks],
        *[(f"accuracy_vs_ponder_{t}", accuracy_vs_ponder, (t,)) for t in tasks],
        *[(f"tau_sweep_{t}", tau_sweep, (t,)) for t in tasks],
        *[(f"ponder_distribution_{t}", ponder_distribution, (t,)) for t in tasks],
        *[
            (f"maze_examples_{safe_name(exp)}", maze_examples, (exp,))
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
    add_run_arguments(parser)
    parser.add_argument("--out", default="results/figures", help="output folder for the PDFs")


def run(args, command: str) -> int:
    paths = run_on_results(command, lambda: make_figures(args.results, args.out, args.runs))
    if paths is None:
        return 2
    for p in paths:
        print(p)
    return 0
