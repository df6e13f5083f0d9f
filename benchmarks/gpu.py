"""Every experiment of config.yaml at its full size on one CUDA GPU, for a few training steps:
step time, examples/s, peak GPU memory (torch.cuda.max_memory_allocated), the size of a real
resumable checkpoint (weights, AdamW state, EMA when on), and the projected time of an epoch and
of the full run (max_epochs x steps per epoch, or max_steps) in 4-hour Slurm jobs.

    python benchmarks/gpu.py [--steps 10] [--precision 32-true bf16-mixed] [--experiments ...]

Without a CUDA GPU it says so and exits 0 (`make gpu-check` runs `halting doctor --accelerator
gpu` first, which fails there). The maze experiments use the reference copy of
maze-30x30-hard-1k next to the checkout when present, else a generated 30x30 set.
"""

from __future__ import annotations

import gc
import logging
import sys
import time

import torch
from _fullsize import (
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

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def bench(
    config: dict, name: str, precision: str, *, steps: int, warmup: int, keep: int
) -> dict[str, str]:
    """One row of the table: experiment `name` at full size on cuda:0 under `precision`."""
    spec = dataset_spec(config, name)
    data_dir = spec and maze_data_dir(
        spec, config["experiments"][name]["batch_size"], log=lambda m: print(m, file=sys.stderr)
    )
    cfg = experiment_config(config, name, data_dir)
    measured = measure(cfg, accelerator="gpu", precision=precision, steps=steps, warmup=warmup)
    plan = schedule(cfg, spec, config["execution"])
    r = {**measured, **plan, **project(measured, plan, keep)}
    return row(
        r, keep, {"experiment": name, "precision": precision}, ("peak mem", r["peak_cuda_bytes"])
    )


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, steps=10, warmup=2)
    ap.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"], choices=PRECISIONS)
    args = ap.parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no per-run banners
    if not torch.cuda.is_available():
        print(
            f"no CUDA GPU: skipped (torch {torch.__version__}; run `halting doctor "
            f"--accelerator gpu` to see why)"
        )
        return 0
    config = load_config()
    try:
        names = select(config, args.experiments)
    except ValueError as exc:
        ap.error(str(exc))
    props = torch.cuda.get_device_properties(0)
    print(
        f"{props.name}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}; {args.warmup} warm-up + {args.steps} timed steps; "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    rows, failed = [], []
    for name in names:
        for precision in args.precision:
            print(f"  {name} {precision} ...", file=sys.stderr, flush=True)
            try:
                rows.append(
                    bench(
                        config,
                        name,
                        precision,
                        steps=args.steps,
                        warmup=args.warmup,
                        keep=args.keep,
                    )
                )
            except Exception as exc:  # one line per failure; the other runs go on
                first = (str(exc).strip().splitlines() or [""])[0]
                failed.append(f"{name} {precision}: {type(exc).__name__}: {first}")
            gc.collect()
            torch.cuda.empty_cache()
    if rows:
        print(table(rows))
    print(f"{LEGEND} peak mem: torch.cuda.max_memory_allocated while training.")
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
