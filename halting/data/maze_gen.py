"""Fast Maze-Hard generation: the Searchformer procedure with HRM's difficulty filter.

One wall layout: no border wall; the walls are a uniformly random subset of
`randint(0.3 * cells, 0.5 * cells)` cells; then up to `PAIR_DRAWS` random ordered (S, G)
pairs of distinct open cells are drawn and the first whose shortest path has
>= `min_moves` moves makes the maze (one maze per layout; a layout with no such pair is
dropped). Only ~0.1% of 30x30 layouts yield a maze at 109 moves.

Layouts are tested in batches with bit-parallel breadth-first search
(`halting.data.bitboard`): a board is a grid as row words (bit c of word r = cell (r, c)),
and one BFS layer of thousands of boards is a handful of numpy shifts and ors. Each pair is
decided exactly, never guessed:
0. a long path has more cells than fit in a box between grid lines drawn every
   isqrt(min_moves) + 1 rows and columns: pairs off the components touching them are short;
1. rounds: flood the component of a pivot cell per layout; a pair with one end inside
   and one outside is unconnected; a pair inside is too short when the component has
   <= min_moves cells or twice the pivot's eccentricity is < min_moves (the cheap
   eccentricity prefilter); the next round floods the component of the first pair still
   undecided, until no pair is left or too few open cells remain outside the flooded
   components to hold a long path;
2. pairs inside a long component: with distances from the pivot P,
   |d(P,S) - d(P,G)| <= d(S,G) <= d(P,S) + d(P,G) decides most; the rest get their own
   BFS, stopped at G or after min_moves - 1 layers.
`reference_first_long_pair` is the plain one-pair-at-a-time search on the same draws
(the test oracle and the benchmark's baseline).
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from halting.data.bitboard import (
    _board_of,
    _cell_masks,
    board_width,
    distances_from,
    flood,
    is_long,
    pack_rows,
)
from halting.data.grid import GOAL, OPEN, START, WALL, canonical_labels, neighbour_table

PAIR_DRAWS = 100  # (S, G) draws per wall layout (Searchformer's `num_attempts`)
MAX_SIZE = 64  # a grid row must fit in one 64-bit word
HARD_MOVES_30 = 109  # HRM's filter: shortest paths of >= 110 cells on 30x30


def default_min_path_moves(size: int) -> int:
    """The Maze-Hard filter scaled to `size`, keeping ~1 in 1000 layouts accepted as at 30x30.

    A straight line through the measured 1-in-1000 thresholds, 25 moves at 8x8 and 109 at
    30x30: round(109 - 42 * (30 - size) / 11) (4 -> 10, 6 -> 17, 12 -> 40, 16 -> 56, 20 -> 71).
    """
    return max(1, round(HARD_MOVES_30 - 42 * (30 - size) / 11))


def chunk_layouts(size: int) -> int:
    """Layouts per seeded chunk, the unit of work and of determinism: 8192 (large batches
    amortise numpy's per-call cost), 1024 below 20x20 where a chunk is cheap and small builds
    need few layouts."""
    return 8192 if size >= 20 else 1024


def wall_count_range(size: int) -> tuple[int, int]:
    """Inclusive range of the number of walls of a `size` x `size` layout (30%-50% of cells)."""
    cells = size * size
    return cells * 3 // 10, cells * 5 // 10


def random_layouts(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """`count` wall layouts, (count, size*size) bool (True = wall).

    The wall count is uniform over `wall_count_range(size)` and the walls are the cells
    holding the k smallest of iid random 16-bit keys, ties at the k-th key broken at
    random: a uniformly random k-subset.
    """
    cells = size * size
    lo, hi = wall_count_range(size)
    k = rng.integers(lo, hi + 1, size=count)
    keys = rng.integers(0, 1 << 16, size=(count, cells), dtype=np.uint16)
    threshold = np.sort(keys, axis=1, kind="stable")[np.arange(count), k - 1][:, None]
    walls = keys <= threshold
    extra = walls.sum(axis=1) - k  # > 0 only where other cells share the k-th key
    for row in np.flatnonzero(extra):
        tied = np.flatnonzero(keys[row] == threshold[row])
        walls[row, rng.choice(tied, size=extra[row], replace=False)] = False
    return walls


def draw_pairs(rng: np.random.Generator, open_: np.ndarray, draws: int = PAIR_DRAWS):
    """`draws` iid ordered pairs (S, G) of distinct open cells per layout.

    open_ (B, cells) bool -> flat cell indices s, g (B, draws) int64: S uniform over the
    open cells, G uniform over the other open cells.
    """
    count, cells = open_.shape
    n_open = open_.sum(axis=1)
    flat = np.flatnonzero(open_)  # layout by layout, cells in order
    start = (np.cumsum(n_open) - n_open)[:, None]
    a = rng.integers(0, n_open[:, None], size=(count, draws))
    b = rng.integers(0, n_open[:, None] - 1, size=(count, draws))
    b += b >= a
    base = np.arange(count)[:, None] * cells
    return flat[start + a] - base, flat[start + b] - base


# ---------------------------------------------------------------- the search


@dataclass
class Draws:
    """The random draws of a batch of layouts: walls (B, cells) bool, pairs s, g (B, draws)."""

    walls: np.ndarray
    s: np.ndarray
    g: np.ndarray
    size: int


def draw_batch(rng: np.random.Generator, count: int, size: int) -> Draws:
    """`count` layouts and their `PAIR_DRAWS` (S, G) draws, consuming `rng` in a fixed order."""
    walls = random_layouts(rng, count, size)
    s, g = draw_pairs(rng, ~walls, PAIR_DRAWS)
    return Draws(walls, s, g, size)


def first_long_pair(batch: Draws, min_moves: int) -> np.ndarray:
    """Index of each layout's first pair with >= `min_moves` moves (-1: none). Exact."""
    long_ = np.zeros(batch.s.shape, dtype=bool)
    for job in _component_rounds(batch, min_moves):
        _decide_in_component(batch, job, min_moves, long_)
    return np.where(long_.any(axis=1), np.argmax(long_, axis=1), -1)


def _component_rounds(batch: Draws, min_moves: int):
    """Step 1: flood one component per layout per round and settle the pairs touching it.

    Yields the components that may hold a long pair: (pivot cells (K,), component boards
    (K, width), and for each pair inside: its component k, layout i and draw j).
    """
    size, count, draws = batch.size, *batch.s.shape
    avail = pack_rows(~batch.walls, size)  # open cells not in a flooded component yet
    width = avail.shape[1]
    # A long path has > min_moves cells, more than a box between grid lines holds: only the
    # components touching the lines can hold one.
    avail &= flood(avail, avail & _grid_lines(size, min_moves, avail.dtype))[0]
    spare = np.bitwise_count(avail).sum(axis=1, dtype=np.int64)  # cells left in avail
    # the undecided pairs, as flat lists ordered by layout then draw: both ends in avail
    p_row, p_j = np.divmod(np.arange(count * draws), draws)
    p_s, p_g = batch.s.reshape(-1), batch.g.reshape(-1)
    (sw, sm), (gw, gm) = _cell_masks(p_s, size, avail.dtype), _cell_masks(p_g, size, avail.dtype)
    words = avail.reshape(-1)
    keep = np.flatnonzero(
        (words[p_row * width + sw] & sm != 0)
        & (words[p_row * width + gw] & gm != 0)
        & (spare[p_row] > min_moves)
    )
    p_row, p_j, p_s, sw, sm, gw, gm = (a[keep] for a in (p_row, p_j, p_s, sw, sm, gw, gm))
    first = np.flatnonzero(np.diff(p_row, prepend=-1))
    rows = p_row[first]
    # first pivot: the start nearest the centre (a central pivot gives tight bounds)
    r, c = np.divmod(np.arange(size * size), size)
    centre = np.abs(2 * r - (size - 1)) + np.abs(2 * c - (size - 1))
    nearest = np.lexsort((centre[p_s], p_row))  # by layout, then distance to the centre
    pivot = p_s[nearest[first]]
    while p_row.size:
        comp, ecc = flood(avail[rows], _board_of(pivot, size, avail.dtype))
        k = np.repeat(np.arange(rows.size), np.diff(np.append(first, p_row.size)))
        words = comp.reshape(-1)
        s_in, g_in = (words[k * width + sw] & sm) != 0, (words[k * width + gw] & gm) != 0
        n_comp = np.bitwise_count(comp).sum(axis=1, dtype=np.int64)
        may_be_long = (n_comp > min_moves) & (2 * ecc >= min_moves)  # diameter <= 2 ecc
        both = s_in & g_in & may_be_long[k]
        if both.any():
            sel, pos = np.unique(k[both], return_inverse=True)
            yield pivot[sel], comp[sel], pos, p_row[both], p_j[both]
        avail[rows] ^= comp
        spare[rows] -= n_comp
        keep = np.flatnonzero(~(s_in | g_in) & (spare[p_row] > min_moves))
        p_row, p_j, p_s, sw, sm, gw, gm = (a[keep] for a in (p_row, p_j, p_s, sw, sm, gw, gm))
        first = np.flatnonzero(np.diff(p_row, prepend=-1))
        rows, pivot = p_row[first], p_s[first]


def _grid_lines(size: int, min_moves: int, dtype) -> np.ndarray:
    """Board (1, width) of every (b+1)-th row and column, b = isqrt(min_moves): the boxes
    between them have <= b*b <= min_moves cells."""
    b = math.isqrt(min_moves)
    on = np.arange(size) % (b + 1) == b
    board = np.zeros((1, board_width(size)), dtype=dtype)
    board[0, :size] = np.where(
        on, (1 << size) - 1, sum(1 << int(col) for col in np.flatnonzero(on))
    )
    return board


def _decide_in_component(batch: Draws, job, min_moves: int, long_: np.ndarray) -> None:
    """Step 2: pairs inside one component: bounds through the pivot P, then exact BFS."""
    pivots, comp, k, i, j = job
    size, s, g = batch.size, batch.s, batch.g
    ends = np.concatenate([s[i, j], g[i, j]])
    dist = distances_from(
        comp, _board_of(pivots, size, comp.dtype), np.concatenate([k, k]), ends, size
    )
    ds, dg = dist[: k.size], dist[k.size :]
    long_[i, j] = np.abs(ds - dg) >= min_moves  # |d(P,S) - d(P,G)| <= d(S,G) <= d(P,S) + d(P,G)
    todo = (ds + dg >= min_moves) & ~long_[i, j]
    if todo.any():
        k, i, j = k[todo], i[todo], j[todo]
        long_[i, j] = is_long(comp[k], s[i, j], g[i, j], size, min_moves)


def _plain_distance(open_flat: list, size: int, s: int, g: int) -> int:
    """Moves of a shortest s->g path by a plain breadth-first search (-1: unreachable)."""
    neighbours = neighbour_table(size)
    dist = {s: 0}
    queue = deque([s])
    while queue:
        cell = queue.popleft()
        for nxt in neighbours[cell]:
            if open_flat[nxt] and nxt not in dist:
                dist[nxt] = dist[cell] + 1
                if nxt == g:
                    return dist[nxt]
                queue.append(nxt)
    return -1


def reference_first_long_pair(batch: Draws, min_moves: int) -> np.ndarray:
    """`first_long_pair` the plain way: one BFS per pair, layout after layout."""
    out = np.full(len(batch.walls), -1, dtype=np.int64)
    for i, walls in enumerate(batch.walls):
        open_flat = (~walls).tolist()
        for j, (s, g) in enumerate(zip(batch.s[i].tolist(), batch.g[i].tolist())):
            if _plain_distance(open_flat, batch.size, s, g) >= min_moves:
                out[i] = j
                break
    return out


# ---------------------------------------------------------------- mazes, in parallel


def maze_tokens(walls: np.ndarray, s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """HRM input grids (m, cells) uint8 from walls (m, cells) bool and S, G cells (m,)."""
    grids = np.where(walls, WALL, OPEN).astype(np.uint8)
    grids[np.arange(len(grids)), s] = START
    grids[np.arange(len(grids)), g] = GOAL
    return grids


def search_chunk(seed: int, stream: int, index: int, size: int, min_moves: int):
    """The mazes of chunk `index` of `stream`: inputs, labels (m, cells) uint8, layout order.

    Its `chunk_layouts(size)` layouts come from SeedSequence(seed, spawn_key=(stream, index)).
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, index)))
    batch = draw_batch(rng, chunk_layouts(size), size)
    pick = first_long_pair(batch, min_moves)
    ok = np.flatnonzero(pick >= 0)
    inputs = maze_tokens(batch.walls[ok], batch.s[ok, pick[ok]], batch.g[ok, pick[ok]])
    return inputs, canonical_labels(inputs, size)


def layout_key(inputs: np.ndarray) -> bytes:
    """Identity of a maze's wall layout (S and G ignored)."""
    return np.packbits(inputs == WALL).tobytes()


def default_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generate_mazes(
    n: int,
    size: int = 30,
    min_path_moves: int | None = None,
    seed: int = 0,
    stream: int = 0,
    workers: int | None = None,
    exclude=(),
    progress: str | None = None,
    stats: dict | None = None,
):
    """`n` mazes, one per wall layout: inputs, labels (n, size*size) uint8 (HRM tokens).

    A pure function of (n, size, min_path_moves, seed, stream), whatever `workers`: chunks are
    consumed in order. Layouts whose key (`layout_key`) is in `exclude` or repeats an
    earlier one are skipped. `progress`: a tqdm bar with this label, drawn on a terminal only.
    `min_path_moves` None: `default_min_path_moves(size)`. `stats` (a dict) receives the number
    of layouts tried.
    """
    moves = default_min_path_moves(size) if min_path_moves is None else min_path_moves
    if not 2 <= size <= MAX_SIZE:
        raise ValueError(f"--size {size}: must be between 2 and {MAX_SIZE}")
    if not 1 <= moves <= size * size - wall_count_range(size)[0] - 1:
        raise ValueError(f"--min-path-moves {moves}: impossible on a {size}x{size} grid")
    max_layouts = max(10**6, 20_000 * n)  # ~20x what 30x30 at 109 moves needs
    workers = workers or default_workers()
    seen, inputs, labels, tried = set(exclude), [], [], 0
    bar = tqdm(
        total=n, desc=progress, unit="maze", leave=False, disable=True if progress is None else None
    )  # None: drawn only on a terminal
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        pending, index = deque(), 0
        while len(inputs) < n:
            if tried >= max_layouts:
                raise RuntimeError(
                    f"only {len(inputs)} of {n} mazes in {tried} layouts: "
                    f"--min-path-moves {moves} is too hard for --size {size}"
                )
            while len(pending) < (2 * workers if pool else 1):
                args = (seed, stream, index, size, moves)
                pending.append(pool.submit(search_chunk, *args) if pool else args)
                index += 1
            job = pending.popleft()
            chunk_in, chunk_lab = job.result() if pool else search_chunk(*job)
            tried += chunk_layouts(size)
            for x, y in zip(chunk_in, chunk_lab):
                key = layout_key(x)
                if key not in seen and len(inputs) < n:
                    seen.add(key)
                    inputs.append(x)
                    labels.append(y)
                    bar.update(1)
            bar.set_postfix(layouts=tried)
    finally:
        bar.close()
        if stats is not None:
            stats["layouts"] = tried
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    shape = (n, size * size)
    return np.array(inputs, dtype=np.uint8).reshape(shape), np.array(
        labels, dtype=np.uint8
    ).reshape(shape)
