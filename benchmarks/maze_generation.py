"""Maze-Hard generation speed: the bit-parallel search against a plain one-BFS-per-draw search.

Measured in this one run: layouts/s and mazes/s of
  1. the plain baseline: one layout at a time, one breadth-first search per (S, G) draw;
  2. the bit-parallel search (`maze_gen.search_chunk`: draws, search, labels), one process;
  3. the generator as `halting build-maze` runs it (`generate_mazes`), with its processes;
and the projected time of the full default build (1000 + 1000 mazes, 30x30, >= 109 moves).
Both searches accept exactly the same layouts (tests/test_maze_gen.py), so the baseline's
mazes/s is its layouts/s times the acceptance rate measured by the fast search.

    python benchmarks/maze_generation.py [--chunks 8] [--baseline-layouts 150] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from halting.data import maze_gen as mg


def fmt_time(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds > 3600 else f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--min-path-moves", type=int, default=None)
    parser.add_argument("--chunks", type=int, default=4,
                        help="chunks (of 8192 layouts at 30x30) for the one-process run")
    parser.add_argument("--baseline-layouts", type=int, default=150, help="layouts for the plain search")
    parser.add_argument("--parallel-mazes", type=int, default=100, help="mazes for the multi-process run")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all usable CPUs)")
    parser.add_argument("--total", type=int, default=2000, help="mazes of the full build (train + test)")
    args = parser.parse_args()
    size = args.size
    moves = mg.default_min_path_moves(size) if args.min_path_moves is None else args.min_path_moves
    workers = args.workers or mg.default_workers()

    # 1. the plain baseline, single process
    batch = mg.draw_batch(np.random.default_rng(12345), args.baseline_layouts, size)
    t0 = time.perf_counter()
    mg.reference_first_long_pair(batch, moves)
    plain_lps = args.baseline_layouts / (time.perf_counter() - t0)

    # 2. the bit-parallel search, single process
    mazes, t0 = 0, time.perf_counter()
    for index in range(args.chunks):
        mazes += len(mg.search_chunk(12345, 9, index, size, moves)[0])
    fast_s = time.perf_counter() - t0
    layouts = args.chunks * mg.chunk_layouts(size)
    fast_lps, fast_mps = layouts / fast_s, mazes / fast_s
    accept = mazes / layouts

    # 3. the generator with its processes (includes the pool's start-up)
    t0 = time.perf_counter()
    mg.generate_mazes(args.parallel_mazes, size, moves, seed=12345, stream=8, workers=workers)
    par_mps = args.parallel_mazes / (time.perf_counter() - t0)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Maze-Hard generation, {size}x{size}, >= {moves} moves: {mazes} mazes in {layouts} layouts "
          f"(acceptance {100 * accept:.3f}%); {os.cpu_count()} CPUs, load average {load:.1f}")
    if accept == 0:
        print("no maze found: raise --chunks")
        return
    rows = [("plain BFS per draw, 1 process", plain_lps, plain_lps * accept),
            ("bit-parallel, 1 process", fast_lps, fast_mps),
            (f"bit-parallel, {workers} processes", par_mps / accept, par_mps)]
    print(f"{'':34}{'layouts/s':>12}{'mazes/s':>10}   full build ({args.total} mazes)")
    for name, lps, mps in rows:
        print(f"{name:34}{lps:12.0f}{mps:10.3f}   {fmt_time(args.total / mps)}")
    print(f"speed-up over the plain search: {fast_lps / plain_lps:.0f}x in one process, "
          f"{par_mps / (plain_lps * accept):.0f}x with {workers} processes")


if __name__ == "__main__":
    main()
