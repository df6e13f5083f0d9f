"""Maze-Hard generation speed: the bit-parallel search against a plain one-BFS-per-draw search.

Measured in this one run: layouts/s and mazes/s of
  1. the plain baseline: one layout at a time, one breadth-first search per (S, G) draw;
  2. the bit-parallel search (`maze_gen.search_chunk`: draws, search, labels), one process;
  3. the generator as `halting build-maze` runs it (`generate_mazes`), with its processes;
and the projected time of the full default build (1000 + 1000 mazes, 30x30, >= 109 moves).
Both searches accept exactly the same layouts (tests/test_maze_gen.py), so the baseline's
mazes/s is its layouts/s times the acceptance rate measured by the fast search.

    python benchmarks/maze_generation.py [--chunks 4] [--baseline-layouts 150] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from halting.data import maze_gen as mg


def fmt_time(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds > 3600 else f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--min-path-moves", type=int, default=None)
    parser.add_argument(
        "--chunks",
        type=int,
        default=4,
        help="chunks (of 8192 layouts at 30x30) for the one-process run",
    )
    parser.add_argument(
        "--baseline-layouts", type=int, default=150, help="layouts for the plain search"
    )
    parser.add_argument(
        "--parallel-mazes", type=int, default=200, help="mazes for the multi-process run"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: all usable CPUs)"
    )
    parser.add_argument(
        "--total", type=int, default=2000, help="mazes of the full build (train + test)"
    )
    args = parser.parse_args()
    size = args.size
    moves = mg.default_min_path_moves(size) if args.min_path_moves is None else args.min_path_moves
    workers = args.workers or mg.default_workers()

    # 1. the plain baseline, single process
    batch = mg.draw_batch(np.random.default_rng(12345), args.baseline_layouts, size)
    wall, cpu = clocks()
    mg.reference_first_long_pair(batch, moves)
    plain = rates(args.baseline_layouts, 0, wall, cpu)

    # 2. the bit-parallel search, single process
    mazes, (wall, cpu) = 0, clocks()
    for index in range(args.chunks):
        mazes += len(mg.search_chunk(12345, 9, index, size, moves)[0])
    layouts = args.chunks * mg.chunk_layouts(size)
    fast = rates(layouts, mazes, wall, cpu)
    accept = mazes / layouts

    # 3. the generator with its processes (pool start-up included; CPU of the workers too)
    tried, (wall, cpu) = {}, clocks()
    mg.generate_mazes(
        args.parallel_mazes, size, moves, seed=12345, stream=8, workers=workers, stats=tried
    )
    par = rates(tried["layouts"], args.parallel_mazes, wall, cpu)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Maze-Hard generation, {size}x{size}, >= {moves} moves: {mazes} mazes in {layouts} "
        "layouts "
        f"(acceptance {100 * accept:.3f}%); {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    if accept == 0:
        print("no maze found: raise --chunks")
        return
    plain = (plain[0], plain[0] * accept, plain[2], plain[2] * accept)
    print(
        f"{'':32}{'layouts/s':>10}{'mazes/s':>9}{'CPU us/layout':>15}"
        f"   full build ({args.total} mazes): wall, CPU"
    )
    rows = (
        ("plain BFS per draw, 1 process", plain),
        ("bit-parallel, 1 process", fast),
        (f"bit-parallel, {workers} processes", par),
    )
    for name, (lps, mps, lpc, mpc) in rows:
        print(
            f"{name:32}{lps:10.0f}{mps:9.3f}{1e6 / lpc:15.1f}   "
            f"{fmt_time(args.total / mps):>8}, {fmt_time(args.total / mpc)}"
        )
    print(
        f"speed-up over the plain search: {fast[0] / plain[0]:.0f}x in one process, "
        f"{par[1] / plain[1]:.0f}x with {workers} processes"
    )
    print(
        f"projected full build on {workers} idle CPUs: {fmt_time(args.total / fast[3] / workers)} "
        f"(one-process CPU time / {workers}); wall times depend on the machine's load"
    )


def clocks() -> tuple[float, float]:
    """Wall time and CPU time of this process and its finished children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return time.perf_counter(), own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def rates(layouts: int, mazes: int, wall0: float, cpu0: float) -> tuple[float, float, float, float]:
    """(layouts/s, mazes/s) per wall second and per CPU second since (wall0, cpu0)."""
    wall, cpu = clocks()
    return (
        layouts / (wall - wall0),
        mazes / (wall - wall0),
        layouts / (cpu - cpu0),
        mazes / (cpu - cpu0),
    )


if __name__ == "__main__":
    main()
