"""Scale rehearsal on the CPU: every experiment of config.yaml at its exact size (30x30 mazes,
hidden 512, batch 128, the UT's sizes) trains a few steps, and the table says what the full runs
will need: step time, peak memory, checkpoint size, the checkpoint disk under the retention
policy, and the 4-hour Slurm jobs (230 minutes of training each) at that step time.

    python benchmarks/scale.py [--steps 3] [--experiments maze_ut parity_act] [--keep 2]

Each experiment runs in a process of its own, so its peak RSS (ru_maxrss) is its own. Step time
is the median of the timed steps after one warm-up step, data loading included; the projections
add one validation batch's time per validation batch of the run. Maze data: the reference copy
of maze-30x30-hard-1k next to the checkout when present, else a generated 30x30 set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _fullsize import (
    CONFIG,
    LEGEND,
    dataset_spec,
    experiment_config,
    load_config,
    maze_data_dir,
    measure,
    parser,
    project,
    row,
    schedule,
    select,
    table,
)


def rehearse(
    name: str,
    *,
    config: dict[str, Any] | None = None,
    data_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    steps: int = 3,
    warmup: int = 1,
    keep: int = 2,
) -> dict[str, Any]:
    """Train experiment `name` of `config` (default config.yaml) at its size (plus `overrides`)
    for `warmup + steps` steps on the CPU; its measurements and projections."""
    config = config or load_config()
    spec = dataset_spec(config, name)
    if spec is not None and data_dir is None:
        data_dir = maze_data_dir(spec, config["experiments"][name]["batch_size"])
    cfg = experiment_config(config, name, data_dir, overrides)
    measured = measure(cfg, accelerator="cpu", steps=steps, warmup=warmup)
    plan = schedule(cfg, spec, config["execution"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {
        "experiment": name,
        **measured,
        **plan,
        **project(measured, plan, keep),
        "peak_rss_bytes": rss,
    }


def _worker(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    result = rehearse(
        args.worker,
        config=load_config(args.config),
        data_dir=args.data,
        steps=args.steps,
        warmup=args.warmup,
        keep=args.keep,
    )
    Path(args.result).write_text(json.dumps(result))
    return 0


def _run_one(name: str, args: argparse.Namespace, data_dir: Path | None) -> dict[str, Any]:
    """rehearse(name) in a fresh process; its result, or {"experiment", "error"}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--result",
            str(out),
            "--config",
            str(args.config),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--keep",
            str(args.keep),
        ]
        command += ["--threads", str(args.threads)] if args.threads else []
        command += ["--data", str(data_dir)] if data_dir else []
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0 and out.is_file():
            return json.loads(out.read_text())
        lines = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
        killed = done.returncode < 0 and f"killed by signal {-done.returncode} (out of memory?)"
        return {"experiment": name, "error": killed or lines[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, steps=3, warmup=1)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--data", type=Path, help="maze folder for every maze experiment")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one experiment, this process
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _worker(args)
    config = load_config(args.config)
    try:
        names = select(config, args.experiments)
    except ValueError as exc:
        ap.error(str(exc))
    data_dirs: dict[str, Path | None] = {}
    for name in names:  # build any missing maze folder once, before the workers start
        spec = dataset_spec(config, name)
        data_dirs[name] = args.data or (
            spec
            and maze_data_dir(
                spec,
                config["experiments"][name]["batch_size"],
                log=lambda m: print(m, file=sys.stderr),
            )
        )
    threads = args.threads or torch.get_num_threads()
    print(
        f"scale rehearsal on the CPU: torch {torch.__version__}, {threads} threads of "
        f"{os.cpu_count()} CPUs; {args.warmup} warm-up + {args.steps} timed steps; "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    rows, failed = [], []
    for name in names:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        result = _run_one(name, args, data_dirs[name])
        if "error" in result:
            failed.append(f"{name}: {result['error']}")
            continue
        rows.append(
            row(result, args.keep, {"experiment": name}, ("peak RSS", result["peak_rss_bytes"]))
        )
    if rows:
        print(table(rows))
    print(LEGEND)
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
