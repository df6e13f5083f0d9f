"""`halting build-maze` and `halting maze-stats`: the Maze-Hard dataset commands (numpy only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STAT_ROWS = (
    ("mazes", "mazes", "{:d}"),
    ("size", "grid size", "{:d}"),
    ("wall_fraction_mean", "wall fraction mean", "{:.3f}"),
    ("wall_fraction_min", "wall fraction min", "{:.3f}"),
    ("wall_fraction_max", "wall fraction max", "{:.3f}"),
    ("path_moves_min", "path moves min", "{:d}"),
    ("path_moves_median", "path moves median", "{:.1f}"),
    ("path_moves_p90", "path moves p90", "{:.1f}"),
    ("path_moves_max", "path moves max", "{:d}"),
    ("manhattan_mean", "Manhattan S-G mean", "{:.1f}"),
)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Flags of `build-maze` (HRM's build_maze_dataset.py flags plus the generator's) or
    `maze-stats`."""
    if command == "maze-stats":
        parser.add_argument(
            "dirs", nargs="+", metavar="DIR", help="dataset folders (with train/ and/or test/)"
        )
        parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
        return
    parser.add_argument(
        "step",
        nargs="?",
        choices=["preprocess-data"],
        help="accepted for HRM's `build_maze_dataset.py preprocess-data` (no effect)",
    )
    parser.add_argument(
        "--output-dir", default="data/maze-30x30-hard-1k", help="dataset folder to create"
    )
    parser.add_argument(
        "--source",
        choices=["generate", "csv"],
        default="generate",
        help="generate (default, offline) or csv: the original train.csv/test.csv",
    )
    parser.add_argument("--csv-dir", help="folder with train.csv and test.csv (--source csv)")
    parser.add_argument(
        "--relabel",
        action="store_true",
        help="--source csv: replace answers that differ from the canonical path",
    )
    parser.add_argument(
        "--size", type=int, help="grid side (default 30; csv: taken from the files)"
    )
    parser.add_argument(
        "--n-train", type=int, default=1000, help="generated train mazes (default 1000)"
    )
    parser.add_argument(
        "--n-test", type=int, default=1000, help="generated test mazes (default 1000)"
    )
    parser.add_argument(
        "--min-path-moves",
        type=int,
        help="minimum shortest-path moves (default 109 at 30x30, scaled to keep ~1 in "
        "1000 layouts accepted: round(109 - 42*(30-size)/11), e.g. 12 -> 40)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="determines the whole dataset (default 0)"
    )
    parser.add_argument(
        "--subsample-size", type=int, help="keep a seeded subsample of this many train mazes"
    )
    parser.add_argument(
        "--aug",
        action="store_true",
        help="aug8: 8 dihedral copies of each train maze, labels recomputed",
    )
    parser.add_argument(
        "--workers", type=int, help="generator processes (default: all usable CPUs)"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --output-dir")
    parser.add_argument("--manifest", help="also write the content-hash manifest JSON to this file")
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar or messages (the bar is drawn only on a terminal)",
    )


def run(args: argparse.Namespace, command: str) -> int:
    """Run `build-maze` or `maze-stats`; errors are reported on stderr with exit status 1."""
    from halting.data import maze

    try:
        if command == "maze-stats":
            return _stats(args, maze)
        _check_flags(args)
        log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
        maze.build_dataset(
            args.output_dir,
            source=args.source,
            size=args.size,
            n_train=args.n_train,
            n_test=args.n_test,
            min_path_moves=args.min_path_moves,
            seed=args.seed,
            csv_dir=args.csv_dir,
            relabel=args.relabel,
            subsample_size=args.subsample_size,
            aug=args.aug,
            workers=args.workers,
            force=args.force,
            progress=not args.quiet,
            log=log,
        )
        if args.manifest:
            maze.write_manifest(args.output_dir, args.manifest)
        return 0
    except (ValueError, OSError, RuntimeError) as exc:  # MazeDataError is a ValueError
        print(f"halting {command}: error: {exc}", file=sys.stderr)
        return 1


def _check_flags(args: argparse.Namespace) -> None:
    """What only the command line can get wrong; build_dataset checks the values themselves."""
    if args.source == "generate" and (args.csv_dir or args.relabel):
        raise ValueError("--csv-dir/--relabel apply to --source csv only")


def _stats(args: argparse.Namespace, maze) -> int:
    columns = {}
    for folder in args.dirs:
        splits = [s for s in maze.SPLITS if (Path(folder) / s).is_dir()]
        if not splits:
            raise maze.MazeDataError(f"{folder}: no train/ or test/ split folder")
        for split in splits:
            data = maze.load_maze_split(folder, split)
            columns[f"{folder.rstrip('/')}/{split}"] = maze.maze_stats(
                data.inputs, data.labels, data.size
            )
    if args.json:
        print(json.dumps(columns, indent=2))
        return 0
    width = max(len(label) for _, label, _ in STAT_ROWS)
    col = [max(len(name), 8) for name in columns]
    print(" " * width + "".join(f"  {name:>{w}}" for name, w in zip(columns, col)))
    for key, label, fmt in STAT_ROWS:
        cells = [fmt.format(stats[key]) for stats in columns.values()]
        print(f"{label:<{width}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, col)))
    return 0
