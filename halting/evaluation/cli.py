"""`halting evaluate CKPT --out DIR`: the command line of `halting.evaluation.evaluate`."""

from __future__ import annotations

import argparse
import sys

from halting.evaluation.evaluate import EvaluationInputError, evaluate


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.description = (
        "Evaluate a checkpoint at its learned halting and at the maximum number of steps; write "
        "eval.json, per_example.parquet (and examples.npz for mazes) to --out. Maze token "
        "accuracy is weak (copying the input scores ~87.5% on Maze-Hard): read exact_accuracy."
    )
    parser.add_argument("ckpt", help="checkpoint file (final.ckpt, last.ckpt, ...)")
    parser.add_argument(
        "--data",
        dest="data_dir",
        default=None,
        help="maze dataset folder (default: the one the model was trained on)",
    )
    parser.add_argument("--out", dest="out_dir", required=True, help="output folder")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "gpu"))
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument(
        "--n_examples", type=int, default=None, help="evaluate only the first N examples"
    )
    parser.add_argument("--experiment", default=None, help="experiment name for eval.json")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, command: str) -> int:
    try:
        report = evaluate(
            args.ckpt,
            data_dir=args.data_dir,
            out_dir=args.out_dir,
            device=args.device,
            batch_size=args.batch_size,
            split=args.split,
            n_examples=args.n_examples,
            experiment=args.experiment,
            progress=False if args.no_progress else None,
        )
    except EvaluationInputError as exc:
        print(f"halting {command}: error: {exc}", file=sys.stderr)
        return 2
    head = report["headline"]
    print(
        f"{report['task']} {report['model_type']}/{report['criterion']}: "
        f"{head} {report['learned'][head]:.4f} at {report['learned']['steps_mean']:.2f} steps "
        f"(learned), {report['max_steps'][head]:.4f} at {report['max_ponder']} steps (max); "
        f"wrote {args.out_dir}"
    )
    return 0
