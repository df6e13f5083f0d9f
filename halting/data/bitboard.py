"""Bit boards: a grid as row words (bit c of word r = cell (r, c)), and breadth-first search
over thousands of boards at once, one BFS layer being a handful of numpy shifts and ors (the
maze generator's search, `halting.data.maze_gen`, is built on them).

A board is (width,) row words; the words past the last row stay zero, so a stack of
boards is shifted as one flat array without rows of neighbouring boards mixing.
"""

from __future__ import annotations

import numpy as np


def board_width(size: int) -> int:
    """Words per board: the rows plus at least one zero word, rounded up to even."""
    return size + 1 + (size + 1) % 2


def pack_rows(cells: np.ndarray, size: int) -> np.ndarray:
    """(B, size*size) bool -> (B, board_width(size)) boards (uint32, or uint64 above 32)."""
    nbytes = 4 if size <= 32 else 8
    packed = np.packbits(cells.reshape(-1, size, size), axis=-1, bitorder="little")
    words = np.zeros((packed.shape[0], board_width(size), nbytes), dtype=np.uint8)
    words[:, :size, : packed.shape[-1]] = packed
    return words.view(f"<u{nbytes}")[..., 0].astype(f"=u{nbytes}")


def _cell_masks(cell: np.ndarray, size: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(row word index, bit mask) of flat cells on a board."""
    return cell // size, dtype.type(1) << (cell % size).astype(dtype)


def _board_of(cell: np.ndarray, size: int, dtype) -> np.ndarray:
    """Boards (len(cell), width) each holding the one cell cell[i] (flat index)."""
    board = np.zeros((len(cell), board_width(size)), dtype=dtype)
    row, mask = _cell_masks(cell, size, dtype)
    board[np.arange(len(cell)), row] = mask
    return board


def _bit_of(board: np.ndarray, k: np.ndarray, cell: np.ndarray, size: int) -> np.ndarray:
    """Whether board[k[i]] holds cell[i]: (len(cell),) bool."""
    row, mask = _cell_masks(cell, size, board.dtype)
    return (board[k, row] & mask) != 0


def _nonempty(board: np.ndarray) -> np.ndarray:
    """(M,) whether each board holds any cell."""
    return board.view(np.uint64).any(axis=1)


def _advance(front: np.ndarray, rest: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """One BFS layer of all boards (flat arrays): out = the cells of `rest` next to `front`,
    which are then removed from `rest`."""
    np.left_shift(front, 1, out=out)
    np.right_shift(front, 1, out=tmp)
    out |= tmp
    out |= front
    out[1:] |= front[:-1]
    out[:-1] |= front[1:]
    out &= rest
    rest ^= out


def flood(free: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BFS of each board from its `seed` cells through its `free` cells: (M, width) each.

    Returns the reached boards and the seeds' eccentricity (M,) (BFS layers after the seed).
    """
    rest = free & ~seed
    ecc = np.zeros(len(free), dtype=np.int64)
    act, front, rest_a = np.arange(len(free)), seed.copy(), rest.copy()
    out, tmp, step = np.empty_like(front), np.empty_like(front), 0
    while act.size:
        step += 1
        _advance(front.ravel(), rest_a.ravel(), out.ravel(), tmp.ravel())
        front, out = out, front
        alive = _nonempty(front)
        ecc[act[alive]] = step
        if alive.sum() < 0.8 * act.size:  # drop finished boards
            rest[act] = rest_a
            act, front, rest_a = act[alive], front[alive], rest_a[alive]
            out, tmp = np.empty_like(front), np.empty_like(front)
    rest[act] = rest_a
    return free & ~rest, ecc


def distances_from(free: np.ndarray, seed: np.ndarray, k: np.ndarray, cell: np.ndarray, size: int):
    """BFS distance (Q,) from the seed of board k[i] to cell[i] (-1: unreached).

    Keeps each layer's unvisited board and binary-searches the layer a query cell leaves it.
    """
    rest = [free & ~seed]
    front, out, tmp = seed.copy(), np.empty_like(seed), np.empty_like(seed)
    while True:
        nxt = rest[-1].copy()
        _advance(front.ravel(), nxt.ravel(), out.ravel(), tmp.ravel())
        if not out.any():
            break
        rest.append(nxt)
        front, out = out, front
    flat = np.stack(rest).reshape(-1)  # layer t: the cells not reached within t layers
    row, mask = _cell_masks(cell, size, free.dtype)
    word = k * free.shape[1] + row

    def unvisited(t):
        return (flat[t * free.size + word] & mask) != 0

    lo = np.zeros(len(cell), dtype=np.int64)  # the cell is unvisited after layer lo ...
    hi = np.full(len(cell), len(rest), dtype=np.int64)  # ... and visited by layer hi
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        up = unvisited(mid)
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    dist = np.where(unvisited(lo) & (hi < len(rest)), hi, -1)
    return np.where(_bit_of(seed, k, cell, size), 0, dist)


def is_long(
    free: np.ndarray, s: np.ndarray, g: np.ndarray, size: int, min_moves: int
) -> np.ndarray:
    """(M,) whether d(s[i], g[i]) >= min_moves on board free[i], where G is reachable from S.

    BFS from S, stopped at G or after min_moves - 1 layers.
    """
    front = _board_of(s, size, free.dtype)
    rest = free & ~front
    g_row, g_bit = _cell_masks(g, size, free.dtype)
    long_ = np.ones(len(free), dtype=bool)
    act, out, tmp = np.arange(len(free)), np.empty_like(front), np.empty_like(front)
    for _ in range(min_moves - 1):
        if not act.size:
            break
        _advance(front.ravel(), rest.ravel(), out.ravel(), tmp.ravel())
        front, out = out, front
        hit = (front[np.arange(act.size), g_row] & g_bit) != 0
        long_[act[hit]] = False
        if hit.sum() > 0.2 * act.size:
            keep = ~hit
            act, front, rest, g_row, g_bit = (
                act[keep],
                front[keep],
                rest[keep],
                g_row[keep],
                g_bit[keep],
            )
            out, tmp = np.empty_like(front), np.empty_like(front)
    return long_
