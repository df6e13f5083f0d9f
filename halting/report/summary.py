"""`results/summary.{pdf,csv,tex}`: the run table of every experiment, then every figure.

One row per (task, experiment): model, criterion, penalty weight, number of seeds, the task's
headline test metric under learned halting as the mean over seeds with its 95% interval (from 3
seeds up, clipped to [0, 100]%; under 3 seeds the seeds' values instead), mean ponder steps,
Spearman's rho between ponder steps and difficulty (same rule, clipped to [-1, 1]), mean
training time per seed, code version and data manifest hash. The PDF opens with that table
(`ROWS_PER_PAGE` rows a page) and continues with the figures of `report.figures`, one a page.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

# isort: split  (matplotlib after halting.report.style, which selects the Agg backend)
import matplotlib.pyplot as plt  # noqa: E402  (after halting.report.style selected Agg)
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.table import Table  # noqa: E402

from halting.io import atomic_path, atomic_write_text
from halting.report import style
from halting.report.figures import iter_figures
from halting.report.plots_common import metric_name
from halting.report.runs import experiment_table, load_runs
from halting.report.stats import MIN_SEEDS_FOR_INTERVAL

log = logging.getLogger(__name__)

ROWS_PER_PAGE = 24  # table rows on one landscape A4 page
TABLE_PAGE_SIZE = (11.69, 8.27)  # in: A4 landscape
PDF_METADATA = {"CreationDate": None, "Creator": "halting", "Title": "halting: summary of runs"}
COLUMNS = (  # (key of format_table's rows, header of the PDF table, header of the LaTeX table)
    ("task", "task", "Task"),
    ("experiment", "experiment", "Experiment"),
    ("model", "model", "Model"),
    ("criterion", "criterion", "Criterion"),
    ("penalty", "τ / β / K", r"$\tau$ / $\beta$ / $K$"),
    ("seeds", "seeds", "Seeds"),
    ("metric", "headline metric", "Metric"),
    ("value", "mean (%) [95% CI]", r"Mean (\%) [95\% CI]"),
    ("steps", "mean steps", "Steps"),
    ("rho", "ρ steps~difficulty", r"$\rho$"),
    ("time", "train time / seed", "Time"),
    ("code", "code version", "Code"),
    ("data", "data manifest", "Data"),
)
NUMERIC = {"seeds", "value", "steps", "rho", "time"}  # right-aligned columns
INTERVAL_RULE = (
    f"[95% Student-t interval over seeds, clipped to the metric's range] from "
    f"{MIN_SEEDS_FOR_INTERVAL} seeds up; (each seed's value) with fewer seeds"
)


def table_pages(n_rows: int) -> int:
    """Pages the run table of `n_rows` experiments takes (at least one)."""
    return max(1, math.ceil(n_rows / ROWS_PER_PAGE))


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _short(text: str | None, n: int) -> str:
    if not text:
        return "–"
    return text if len(text) <= n else text[: n - 1] + "…"


def format_estimate(
    mean: float, low: float, high: float, seed_values: str, scale: float = 1.0, digits: int = 2
) -> str:
    """A mean over seeds with what backs it: "88.3 [80.1, 96.5]" (its interval, from
    MIN_SEEDS_FOR_INTERVAL seeds up), "88.3 (95.6, 80.9)" (fewer seeds: each seed's value, in
    seed order), "88.3" (one seed), "–" (no finite value). Values times `scale`."""
    if not math.isfinite(mean):
        return "–"
    text = f"{scale * mean:.{digits}f}"
    if math.isfinite(low) and math.isfinite(high):
        return f"{text} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"
    values = [float(v) for v in str(seed_values).split()]
    if len(values) > 1:
        shown = (f"{scale * v:.{digits}f}" if math.isfinite(v) else "–" for v in values)
        return f"{text} ({', '.join(shown)})"
    return text


def format_table(table: pd.DataFrame) -> list[dict[str, str]]:
    """Display strings of `experiment_table` rows (accuracies in %)."""
    rows = []
    for r in table.itertuples(index=False):
        value = format_estimate(
            r.headline_mean, r.headline_ci_low, r.headline_ci_high, r.headline_seed_values, 100, 1
        )
        rho = format_estimate(r.rho_mean, r.rho_ci_low, r.rho_ci_high, r.rho_seed_values)
        rows.append(
            {
                "task": style.task_name(r.task),
                "experiment": r.experiment,
                "model": style.model_name(r.model_type),
                "criterion": style.criterion_name(r.criterion),
                "penalty": r.penalty or "–",
                "seeds": str(r.seeds),
                "metric": metric_name(r.headline),
                "value": value,
                "steps": f"{r.steps_mean:.2f}" if math.isfinite(r.steps_mean) else "–",
                "rho": rho,
                "time": format_seconds(r.train_seconds_mean),
                "code": _short(r.code_version, 18),
                "data": _short(r.data_manifest, 11),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# PDF table pages
# --------------------------------------------------------------------------------------------


def _table(ax, rows: list[dict[str, str]]) -> Table:
    """A matplotlib Table of `rows` under a bold header; numbers right-aligned, rules only."""
    table = Table(ax, loc="upper center")
    height = 1.0 / (ROWS_PER_PAGE + 1)  # axes fraction: a full page fills the axes
    for c, (key, header, _) in enumerate(COLUMNS):
        loc = "right" if key in NUMERIC else "left"
        cell = table.add_cell(0, c, width=0.1, height=height, text=header, loc=loc)
        cell.set_text_props(weight="bold")
        for r, row in enumerate(rows, start=1):
            table.add_cell(r, c, width=0.1, height=height, text=row[key], loc=loc)
    for (r, _), cell in table.get_celld().items():
        cell.PAD = 0.08  # fraction of the cell width kept free on each side
        cell.visible_edges = "B" if r in (0, len(rows)) else ""
        cell.set_linewidth(0.6 if r in (0, len(rows)) else 0.3)
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.auto_set_column_width(list(range(len(COLUMNS))))
    return table


def table_figures(rows: list[dict[str, str]], n_runs: int) -> list:
    """The run table as landscape pages (matplotlib figures), `ROWS_PER_PAGE` rows each."""
    pages = table_pages(len(rows))
    figures = []
    for page in range(pages):
        chunk = rows[page * ROWS_PER_PAGE : (page + 1) * ROWS_PER_PAGE]
        fig = plt.figure(figsize=TABLE_PAGE_SIZE)
        ax = fig.add_axes((0.03, 0.1, 0.94, 0.8))
        ax.axis("off")
        suffix = f" (page {page + 1} of {pages})" if pages > 1 else ""
        fig.text(
            0.03,
            0.95,
            f"Summary of {len(rows)} experiments, {n_runs} runs{suffix}",
            fontsize=12,
            weight="bold",
            va="top",
        )
        if chunk:
            ax.add_table(_table(ax, chunk))
        else:
            ax.text(0.5, 0.5, "no runs", ha="center", va="center", fontsize=12)
        fig.text(
            0.03,
            0.015,
            "Headline metric on the evaluation set with learned halting (maze: exact accuracy; "
            "parity: accuracy; addition: sequence accuracy), mean over seeds in %:\n"
            f"{INTERVAL_RULE}.\n"
            "Mean steps: ponder steps per example (mean over its halting units), averaged over "
            "examples and seeds. Train time: mean wall-clock training time per seed.\n"
            "ρ: Spearman rank correlation between an example's ponder steps and its difficulty "
            "(parity: non-zero bits; addition: digits; maze: shortest path length) in each run,\n"
            "then its mean over seeds with the same rule (range [-1, 1]). "
            "τ: ACT time penalty, β: PonderNet KL weight, K: fixed depth.",
            fontsize=7.5,
            va="bottom",
            color="#333333",
        )
        figures.append(fig)
    return figures


# --------------------------------------------------------------------------------------------
# LaTeX
# --------------------------------------------------------------------------------------------

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    """Text safe for LaTeX (special characters escaped; ±, τ, β, –, … as commands)."""
    out = "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in (
        ("±", r"$\pm$"),
        ("ρ", r"$\rho$"),
        ("τ", r"$\tau$"),
        ("β", r"$\beta$"),
        ("–", "--"),
        ("…", r"\ldots{}"),
        ("·", r"$\cdot$"),
    ):
        out = out.replace(uni, tex)
    return out


def _tex_penalty(text: str) -> str:
    """ "τ=1e-4" -> "$\\tau=10^{-4}$"; "τ=0.001" -> "$\\tau=0.001$"; "K=6" -> "$K=6$"."""
    if text in ("", "–"):
        return "--"
    name, _, value = text.partition("=")
    symbol = {"τ": r"\tau", "β": r"\beta"}.get(name, name)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)e(-?\d+)", value)
    if m:
        mantissa, exponent = m.groups()
        value = f"10^{{{exponent}}}" if mantissa == "1" else f"{mantissa}\\times 10^{{{exponent}}}"
    return f"${symbol}={value}$"


def to_latex(rows: list[dict[str, str]]) -> str:
    """A booktabs `tabular` of the run table, ready to `\\input` (needs \\usepackage{booktabs})."""
    spec = "".join("r" if key in NUMERIC else "l" for key, _, _ in COLUMNS)
    lines = [
        "% halting run table: \\input{summary.tex} inside a table float; needs booktabs.",
        f"% Mean over seeds; {INTERVAL_RULE}.",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(tex for _, _, tex in COLUMNS) + " \\\\",
        "\\midrule",
    ]
    previous_task = None
    for row in rows:
        if previous_task is not None and row["task"] != previous_task:
            lines.append("\\midrule")
        previous_task = row["task"]
        cells = [
            _tex_penalty(row[key]) if key == "penalty" else tex_escape(row[key])
            for key, _, _ in COLUMNS
        ]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_summary(
    results_root: str | Path | None,
    out_pdf: str | Path,
    run_dirs: Sequence[str | Path] | None = None,
) -> pd.DataFrame:
    """Write `out_pdf` (table pages, then one page per figure) and the same table as .csv and
    .tex next to it, each atomically. Returns the table (one row per experiment)."""
    runs = load_runs(results_root, run_dirs)
    if not runs:
        if run_dirs is None:
            where = f"{results_root} (expected <task>/<experiment>/seed<k>/run.json)"
        else:
            where = "the given run folders"
        raise ValueError(f"no runs found in {where}")
    out_pdf = Path(out_pdf)
    table = experiment_table(runs)
    rows = format_table(table)
    with style.context():
        n_figures = 0
        with atomic_path(out_pdf) as tmp, PdfPages(tmp, metadata=PDF_METADATA) as pdf:
            for fig in table_figures(rows, len(runs)):
                pdf.savefig(fig)
                plt.close(fig)
            for _, fig in iter_figures(runs):
                try:
                    pdf.savefig(fig)
                    n_figures += 1
                finally:
                    plt.close(fig)
    atomic_write_text(out_pdf.with_suffix(".csv"), table.to_csv(index=False))
    atomic_write_text(out_pdf.with_suffix(".tex"), to_latex(rows))
    log.info(
        "wrote %s (%d table page(s), %d figure(s)) and its .csv/.tex",
        out_pdf,
        table_pages(len(rows)),
        n_figures,
    )
    return table
