"""`halting figures` and `halting summary`: the report's command line (flags, exit codes)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from halting.report.figures import FORMATS, PNG_DPI, make_figures
from halting.report.runs import RunFormatError
from halting.report.summary import write_summary
from halting.training.runlog import unfinished_runs


def add_run_arguments(parser) -> None:
    """The flags `halting figures` and `halting summary` share."""
    parser.add_argument(
        "--results",
        default="results",
        help="results root: every folder below it with a run.json, such as "
        "<task>/<experiment>/seed<k>/ or a `halting train` run folder (default: results)",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        metavar="DIR",
        default=None,
        help="explicit run folders (overrides the search under --results)",
    )


T = TypeVar("T")


def run_on_results(command: str, action: Callable[[], T]) -> T | None:
    """Run `action` for `halting <command>` with halting's INFO lines on stderr; a missing or
    malformed results folder prints `halting <command>: error: ...` and gives None."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("halting").setLevel(logging.INFO)
    try:
        return action()
    except (RunFormatError, FileNotFoundError, ValueError) as err:
        print(f"halting {command}: error: {err}", file=sys.stderr)
        return None


def _figures_arguments(parser) -> None:
    parser.add_argument("--out", default="results/figures", help="output folder for the files")
    parser.add_argument(
        "--format",
        default="pdf",
        choices=FORMATS,
        help="pdf (vector, default) or png (for web pages such as docs/)",
    )
    parser.add_argument("--dpi", type=int, default=PNG_DPI, help="resolution of a png")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="only these figures (file stems, e.g. tau_sweep_parity)",
    )


def _figures(args, command: str) -> int:
    paths = run_on_results(
        command,
        lambda: make_figures(
            args.results, args.out, args.runs, fmt=args.format, only=args.only, dpi=args.dpi
        ),
    )
    if paths is None:
        return 2
    for p in paths:
        print(p)
    return 0


def _summary_arguments(parser) -> None:
    parser.add_argument(
        "--out",
        default="results/summary.pdf",
        help="summary PDF; .csv and .tex are written next to it",
    )


def report_unfinished(results_root: str | Path) -> list[str]:
    """One line per unfinished run of the workflow (paused, failed, killed, running), printed
    on stderr: a summary must not pass over a run that died."""
    lines = [f"unfinished: {folder}: {status}" for folder, status in unfinished_runs(results_root)]
    for line in lines:
        print(line, file=sys.stderr)
    return lines


def _summary(args, command: str) -> int:
    unfinished = report_unfinished(args.results) if args.runs is None else []
    table = run_on_results(command, lambda: write_summary(args.results, args.out, args.runs))
    if table is None:
        return 2
    print(
        f"{args.out}: {len(table)} experiment(s)"
        + (f"; {len(unfinished)} unfinished run(s) not in it" if unfinished else "")
    )
    return 0


def add_arguments(parser, command: str) -> None:
    add_run_arguments(parser)
    {"figures": _figures_arguments, "summary": _summary_arguments}[command](parser)


def run(args, command: str) -> int:
    return {"figures": _figures, "summary": _summary}[command](args, command)
