"""`halting` command line: one subcommand per pipeline step.

Subcommand modules are imported only when their command runs, so `halting --help`
(and the numpy-only data commands) never pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module defines `add_arguments(parser, command)` and
# `run(args, command) -> int` (exit status).
COMMANDS: dict[str, tuple[str, str]] = {
    "build-maze": ("halting.data.cli", "build a Maze-Hard dataset folder (HRM/TRM format)"),
    "maze-stats": (
        "halting.data.cli",
        "print statistics of maze dataset folders side by side",
    ),
    "train": ("halting.training.cli", "train a model (the runbook's train.py / tasks/*.py flags)"),
    "evaluate": (
        "halting.evaluation.cli",
        "evaluate a checkpoint: eval.json + per_example.parquet",
    ),
    "figures": ("halting.report.cli", "draw the paper figures from finished runs"),
    "summary": ("halting.report.cli", "write summary.pdf / .csv / .tex from finished runs"),
    "view": ("halting.viewer.cli", "start the Streamlit inference viewer"),
    "doctor": ("halting.doctor", "check torch, CUDA, the GPU and the Slurm job (runbook step 3)"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    return argparse.ArgumentParser(
        prog="halting",
        description="Adaptive-computation (halting) networks: data, training, evaluation, figures.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun `halting COMMAND --help` for its flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `halting` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    top.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    if argv[0] not in COMMANDS:
        top.error(f"unknown command {argv[0]!r}; choose from: {', '.join(COMMANDS)}")
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[command][0])
    parser = argparse.ArgumentParser(prog=f"halting {command}", description=COMMANDS[command][1])
    module.add_arguments(parser, command)
    args = parser.parse_args(rest)
    return int(module.run(args, command) or 0)


if __name__ == "__main__":
    sys.exit(main())
