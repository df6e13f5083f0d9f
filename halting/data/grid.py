"""Maze grids: the HRM token alphabet, breadth-first search and path checks.

A grid is a (size, size) integer array of tokens. These are the single-maze reference
functions; `halting.data.maze` has the batched generator built on the same rule.
"""

from __future__ import annotations

from collections import deque
from functools import cache

import numpy as np

# HRM's tokens (dataset/build_maze_dataset.py): pad 0, then the characters "# SGo".
PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
CHARSET = "# SGo"  # token = CHARSET.index(char) + 1
VOCAB_SIZE = 6

# Canonical BFS expansion order: down, left, right, up (reproduces every Maze-Hard label).
MOVES = ((1, 0), (0, -1), (0, 1), (-1, 0))


class GridError(ValueError):
    """A grid of a batch has no canonical label; `index` is its position in the batch."""

    def __init__(self, index: int, reason: str):
        super().__init__(f"grid {index}: {reason}")
        self.index, self.reason = index, reason


def find_token(grid: np.ndarray, token: int) -> tuple[int, int]:
    """(row, col) of the single cell holding `token`; ValueError if not exactly one."""
    rows, cols = np.nonzero(grid == token)
    if len(rows) != 1:
        raise ValueError(f"expected exactly one {CHARSET[token - 1]!r} cell, found {len(rows)}")
    return int(rows[0]), int(cols[0])


def bfs_parents(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BFS from S over non-wall cells in MOVES order.

    Returns dist (size, size) int32 (-1 = unreachable) and parent (size, size) int32
    holding the flat index of each cell's first-found parent (-1 for S and unreached).
    """
    size = grid.shape[0]
    passable = grid != WALL
    dist = np.full(grid.shape, -1, dtype=np.int32)
    parent = np.full(grid.shape, -1, dtype=np.int32)
    s = find_token(grid, START)
    dist[s] = 0
    queue = deque([s])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < size and 0 <= nc < size and passable[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                parent[nr, nc] = r * size + c
                queue.append((nr, nc))
    return dist, parent


def shortest_path_moves(grid: np.ndarray) -> int:
    """Number of moves of a shortest S->G path (-1 if G is unreachable)."""
    dist, _ = bfs_parents(grid)
    return int(dist[find_token(grid, GOAL)])


def path_moves(labels: np.ndarray) -> np.ndarray:
    """(N,) moves of each label's S->G path: its PATH cells + 1; labels (N, ...) of any shape."""
    labels = np.asarray(labels)
    return (labels.reshape(len(labels), -1) == PATH).sum(axis=1) + 1


def canonical_label(grid: np.ndarray) -> np.ndarray:
    """The label HRM stores: `grid` with the interior of the canonical shortest path set to PATH.

    The path is traced back from G through first-found BFS parents (MOVES order).
    """
    dist, parent = bfs_parents(grid)
    g = find_token(grid, GOAL)
    if dist[g] < 0:
        raise ValueError("G is not reachable from S")
    label = grid.copy()
    cell = int(parent[g])
    while grid.flat[cell] != START:
        label.flat[cell] = PATH
        cell = int(parent.flat[cell])
    return label


def is_valid_optimal(grid: np.ndarray, prediction: np.ndarray) -> bool:
    """True when the predicted PATH cells plus S and G form one simple 4-connected S->G path
    through open cells whose length equals the BFS shortest distance.

    `grid` is the input maze, `prediction` a predicted label grid (any token values).
    """
    path = prediction == PATH
    if np.any(path & (grid != OPEN)):
        return False  # a path cell on a wall, on S/G, or on padding
    moves = shortest_path_moves(grid)
    if moves < 0 or int(path.sum()) != moves - 1:
        return False
    # Walk from S: every step must have exactly one unvisited path/G neighbour.
    size = grid.shape[0]
    on_path = path.copy()
    g = find_token(grid, GOAL)
    on_path[g] = True
    r, c = find_token(grid, START)
    for _ in range(moves):
        nxt = [
            (r + dr, c + dc)
            for dr, dc in MOVES
            if 0 <= r + dr < size and 0 <= c + dc < size and on_path[r + dr, c + dc]
        ]
        if len(nxt) != 1:
            return False
        on_path[r, c] = False
        r, c = nxt[0]
    return (r, c) == g


@cache
def neighbour_table(size: int) -> tuple[tuple[int, ...], ...]:
    """For each flat cell of a (size, size) grid, its in-grid neighbours' flat indices in
    MOVES order (the shared adjacency of the flat-list searches)."""
    return tuple(
        tuple(
            (r + dr) * size + c + dc
            for dr, dc in MOVES
            if 0 <= r + dr < size and 0 <= c + dc < size
        )
        for r, c in (divmod(cell, size) for cell in range(size * size))
    )


def canonical_labels(inputs: np.ndarray, size: int) -> np.ndarray:
    """`canonical_label` of many flattened grids: (N, size*size) -> (N, size*size) uint8.

    Same rule (BFS from S in MOVES order, first-found parents, traced back from G), run on
    flat Python lists, which is several times faster than the per-grid reference.
    """
    labels = np.array(inputs, dtype=np.uint8, copy=True).reshape(len(inputs), size * size)
    neighbours = neighbour_table(size)
    for n, row in enumerate(labels):
        cells = row.tolist()
        if cells.count(START) != 1 or cells.count(GOAL) != 1:
            raise GridError(n, "expected exactly one 'S' and one 'G'")
        start, goal = cells.index(START), cells.index(GOAL)
        parent = [-1] * len(cells)
        parent[start] = start
        queue = deque([start])
        while queue and parent[goal] < 0:
            cell = queue.popleft()
            for nxt in neighbours[cell]:
                if parent[nxt] < 0 and cells[nxt] != WALL:
                    parent[nxt] = cell
                    queue.append(nxt)
        if parent[goal] < 0:
            raise GridError(n, "G is not reachable from S")
        cell = parent[goal]
        while cell != start:
            row[cell] = PATH
            cell = parent[cell]
    return labels
