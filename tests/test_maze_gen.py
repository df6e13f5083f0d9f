"""The fast Maze-Hard generator: exact against the plain search, seeded, and on target."""

import numpy as np
import pytest

from halting.data import bitboard, grid
from halting.data import maze_gen as mg


@pytest.mark.parametrize(
    "size, min_moves, count, seed",
    [(12, 20, 800, 1), (12, 30, 1000, 2), (9, 14, 800, 3), (30, 70, 120, 4), (33, 60, 40, 5)],
)  # 33: 64-bit row words
def test_bit_parallel_search_equals_plain_search(size, min_moves, count, seed):
    """Every layout's first long pair (or none) is exactly the one-BFS-per-pair answer."""
    batch = mg.draw_batch(np.random.default_rng(seed), count, size)
    fast = mg.first_long_pair(batch, min_moves)
    plain = mg.reference_first_long_pair(batch, min_moves)
    assert (plain >= 0).sum() > 5  # the case is not vacuous
    np.testing.assert_array_equal(fast, plain)


def test_layouts_have_the_drawn_number_of_walls_uniformly_placed():
    rng = np.random.default_rng(0)
    walls = mg.random_layouts(rng, 4000, 12)
    lo, hi = mg.wall_count_range(12)
    counts = walls.sum(axis=1)
    assert (lo, hi) == (43, 72) and mg.wall_count_range(30) == (270, 450)
    assert counts.min() >= lo and counts.max() <= hi and len(np.unique(counts)) > 25
    per_cell = walls.mean(axis=0)  # each cell equally likely a wall: ~0.40 +- 0.008
    assert np.abs(per_cell - per_cell.mean()).max() < 0.04


def test_pairs_are_distinct_open_cells_uniformly_drawn():
    rng = np.random.default_rng(1)
    walls = mg.random_layouts(rng, 300, 10)
    s, g = mg.draw_pairs(rng, ~walls, 100)
    rows = np.arange(300)[:, None]
    assert (~walls[rows, s]).all() and (~walls[rows, g]).all() and (s != g).all()
    hits = np.zeros(100)  # start positions of layout 0 over many redraws cover its open cells
    for _ in range(40):
        np.add.at(hits, mg.draw_pairs(rng, ~walls[:1], 100)[0][0], 1)
    assert set(np.flatnonzero(hits)) == set(np.flatnonzero(~walls[0]))


def test_bit_boards_flood_and_distances_agree_with_grid_bfs():
    rng = np.random.default_rng(5)
    batch = mg.draw_batch(rng, 20, 30)
    free = bitboard.pack_rows(~batch.walls, 30)
    seeds = batch.s[:, 0]
    comp, ecc = bitboard.flood(free, bitboard._board_of(seeds, 30, free.dtype))
    cells = np.repeat(np.arange(900)[None], 20, axis=0)
    dist = bitboard.distances_from(
        free,
        bitboard._board_of(seeds, 30, free.dtype),
        np.repeat(np.arange(20), 900),
        cells.ravel(),
        30,
    ).reshape(20, 900)
    for i in range(20):
        maze = np.where(batch.walls[i], grid.WALL, grid.OPEN).reshape(30, 30)
        maze.flat[seeds[i]] = grid.START
        want, _ = grid.bfs_parents(maze)
        np.testing.assert_array_equal(dist[i], want.ravel())
        assert ecc[i] == want.max()
        reached = np.unpackbits(comp[i, :30].view(np.uint8), bitorder="little").reshape(30, 32)[
            :, :30
        ]
        np.testing.assert_array_equal(reached.astype(bool), want >= 0)


def test_default_min_path_moves_scales_with_size():
    assert mg.default_min_path_moves(30) == 109
    assert [mg.default_min_path_moves(s) for s in (4, 6, 8, 12, 16, 20)] == [10, 17, 25, 40, 56, 71]


def test_same_seed_same_mazes_whatever_the_workers():
    one = mg.generate_mazes(12, size=12, seed=7, workers=1)
    two = mg.generate_mazes(12, size=12, seed=7, workers=2)
    other = mg.generate_mazes(12, size=12, seed=8, workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    assert not np.array_equal(one[0], other[0])
    inputs, labels = one
    np.testing.assert_array_equal(labels, grid.canonical_labels(inputs, 12))
    assert ((labels == grid.PATH).sum(axis=1) + 1 >= 40).all()


def test_excluded_layouts_are_skipped():
    first = mg.generate_mazes(6, size=10, min_path_moves=16, seed=3, workers=1)[0]
    again = mg.generate_mazes(
        6,
        size=10,
        min_path_moves=16,
        seed=3,
        workers=1,
        exclude={mg.layout_key(first[0]), mg.layout_key(first[2])},
    )[0]
    np.testing.assert_array_equal(again[:4], first[[1, 3, 4, 5]])
    assert mg.layout_key(first[0]) not in {mg.layout_key(x) for x in again}


def test_impossible_settings_fail_clearly():
    with pytest.raises(ValueError, match="--min-path-moves 200"):
        mg.generate_mazes(1, size=12, min_path_moves=200, workers=1)
    with pytest.raises(ValueError, match="--size 70"):
        mg.generate_mazes(1, size=70, workers=1)


def test_canonical_labels_equal_the_reference_rule():
    batch = mg.draw_batch(np.random.default_rng(9), 400, 12)
    pick = mg.first_long_pair(batch, 12)
    ok = np.flatnonzero(pick >= 0)[:60]
    inputs = mg.maze_tokens(batch.walls[ok], batch.s[ok, pick[ok]], batch.g[ok, pick[ok]])
    want = np.stack([grid.canonical_label(x.reshape(12, 12)).ravel() for x in inputs])
    np.testing.assert_array_equal(grid.canonical_labels(inputs, 12), want)
    broken = inputs[:1].copy()
    broken[0, broken[0] == grid.GOAL] = grid.OPEN
    with pytest.raises(grid.GridError, match="grid 1: expected exactly one 'S' and one 'G'") as err:
        grid.canonical_labels(np.concatenate([inputs[:1], broken]), 12)
    assert isinstance(err.value, ValueError) and err.value.index == 1
