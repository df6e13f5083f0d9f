"""The paper figures, drawn from finished result folders (one figure per PDF file).

Figures per task (halting.report.plots_task): training curves, ponder steps against difficulty
(Graves 2016, Fig. 6 style), accuracy against ponder cost with the Pareto front, the
distribution of ponder steps per criterion. Maze only (report.plots_maze): example predictions
with per-cell ponder steps, and Maze-Hard exact accuracy against the published references.
Seeds of an experiment aggregate to a mean line with a shaded Student-t 95% interval, clipped to
the quantity's range (no band under 3 seeds; halting.report.plots_common). Every builder returns a
matplotlib Figure or raises `NoData` saying what is missing; this module orders them
(`iter_figures`), writes the files (`make_figures`) and is the `halting figures` command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

# isort: split  (matplotlib after halting.report.style, which selects the Agg backend)
import matplotlib.pyplot as plt  # noqa: E402  (after halting.report.style selected Agg)
from matplotlib.figure import Figure  # noqa: E402

from halting.io import atomic_path
from halting.report import style
from halting.report.plots_common import NoData, safe_name
from halting.report.plots_maze import maze_examples, maze_hard_accuracy
from halting.report.plots_sweep import tau_sweep
from halting.report.plots_task import (
    accuracy_vs_ponder,
    ponder_distribution,
    ponder_vs_difficulty,
    training_curves,
)
from halting.report.runs import Run, load_runs
from halting.report.stats import group_experiments, tasks_of

log = logging.getLogger(__name__)


def _builders(runs: Sequence[Run]) -> list[tuple[str, Callable[..., Figure], tuple]]:
    """(file stem, builder, its arguments after `runs`) of every figure the runs may have, in
    the paper's order."""
    tasks = tasks_of(runs)
    return [
        *[(f"training_{t}", training_curves, (t,)) for t in tasks],
        *[(f"ponder_vs_difficulty_{t}", ponder_vs_difficulty, (t,)) for t in tasks],
        *[(f"accuracy_vs_ponder_{t}", accuracy_vs_ponder, (t,)) for t in tasks],
        *[(f"tau_sweep_{t}", tau_sweep, (t,)) for t in tasks],
        *[(f"ponder_distribution_{t}", ponder_distribution, (t,)) for t in tasks],
        *[
            (f"maze_examples_{safe_name(exp)}", maze_examples, (exp,))
            for (task, exp) in group_experiments(runs)
            if style.is_grid_task(task)
        ],
        ("maze_hard_accuracy", maze_hard_accuracy, ()),
    ]


def iter_figures(
    runs: Sequence[Run], only: Collection[str] | None = None
) -> Iterator[tuple[str, Figure]]:
    """(file stem, figure) of every figure the runs have data for (`only`: of these stems), in
    the paper's order. Figures without data are skipped with an INFO log line saying why; the
    ones not asked for are not drawn. Close each figure."""
    for name, build, args in _builders(runs):
        if only is not None and name not in only:
            continue
        try:
            fig = build(runs, *args)
        except NoData as why:
            log.info("skipping figure %s: %s", name, why)
            continue
        yield name, fig


FORMATS = ("pdf", "png")  # vector PDF for papers and the summary; PNG for web pages (docs/)
PNG_DPI = 150  # default resolution of a PNG


def save_figure(fig: Figure, path: str | Path, dpi: int = PNG_DPI) -> Path:
    """Write `fig` atomically (temp file + rename) in the format of `path`'s suffix (`FORMATS`):
    a one-page vector PDF, or a PNG at `dpi`; fixed metadata (no creation date, no software
    version) so unchanged data give an identical file."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    metadata = {"CreationDate": None, "Creator": "halting"} if fmt == "pdf" else {"Software": None}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata=metadata, dpi=dpi)
    return path


def make_figures(
    results_root: str | Path | None,
    out_dir: str | Path,
    run_dirs: Sequence[str | Path] | None = None,
    fmt: str = "pdf",
    only: Sequence[str] | None = None,
    dpi: int = PNG_DPI,
) -> list[Path]:
    """Draw every figure of the runs under `results_root` (or exactly `run_dirs`) into
    `out_dir/<name>.<fmt>` (`only`: just the figures of these names, each of which must have
    data); returns the written paths."""
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    runs = load_runs(results_root, run_dirs)
    names = [name for name, _, _ in _builders(runs)]
    unknown = [n for n in only or () if n not in names]
    if unknown:
        raise ValueError(
            f"--only: no figure {', '.join(unknown)} was drawn: not a figure of these runs "
            f"(theirs: {', '.join(names)})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # exists even when no figure has data
    written = []
    with style.context():
        for name, fig in iter_figures(runs, only):
            try:
                written.append(save_figure(fig, out_dir / f"{name}.{fmt}", dpi=dpi))
            finally:
                plt.close(fig)
    no_data = [n for n in only or () if out_dir / f"{n}.{fmt}" not in written]
    if no_data:
        raise ValueError(
            f"--only: no figure {', '.join(no_data)} was drawn: no data (the INFO lines say "
            "what is missing)"
        )
    log.info("wrote %d figure(s) to %s", len(written), out_dir)
    return written
