"""Maze-Hard datasets in HRM's on-disk format: the split files, writing and validated reading.

A dataset folder holds `identifiers.json` and `train/`, `test/`, each with `dataset.json`
and `all__{inputs,labels,puzzle_identifiers,puzzle_indices,group_indices}.npy`, exactly as
HRM's `dataset/build_maze_dataset.py` writes them (plus TRM's `total_puzzles` key), so the
HRM and TRM loaders read our folders unchanged. Tokens: pad 0, then "# SGo" as 1..5.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halting.data.grid import GOAL, OPEN, PATH, START, VOCAB_SIZE, WALL

SPLITS = ("train", "test")
FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
META_KEYS = (
    "pad_id",
    "ignore_label_id",
    "blank_identifier_id",
    "vocab_size",
    "seq_len",
    "num_puzzle_identifiers",
    "total_groups",
    "mean_puzzle_examples",
    "sets",
)


class MazeDataError(ValueError):
    """A dataset file or input is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class MazeSplit:
    """One validated split: inputs, labels (N, size*size) uint8, group_indices (G+1,) int32."""

    inputs: np.ndarray
    labels: np.ndarray
    size: int
    meta: dict
    group_indices: np.ndarray


# ---------------------------------------------------------------- writing


def split_meta(n_groups: int, seq_len: int) -> dict:
    """dataset.json of one split: HRM's keys in HRM's order, plus TRM's `total_puzzles`
    (TRM's own maze builder sets it to the number of groups)."""
    return {
        "pad_id": 0,
        "ignore_label_id": 0,
        "blank_identifier_id": 0,
        "vocab_size": VOCAB_SIZE,
        "seq_len": seq_len,
        "num_puzzle_identifiers": 1,
        "total_groups": n_groups,
        "mean_puzzle_examples": 1.0,
        "total_puzzles": n_groups,
        "sets": ["all"],
    }


def write_split(folder: Path, inputs: np.ndarray, labels: np.ndarray, group_size: int = 1) -> None:
    """Write one split (HRM's files): one puzzle per example, groups of `group_size` consecutive
    puzzles (8 for aug8)."""
    n, seq_len = inputs.shape
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "inputs": inputs.astype(np.uint8),
        "labels": labels.astype(np.uint8),
        "puzzle_identifiers": np.zeros(n, dtype=np.int32),
        "puzzle_indices": np.arange(n + 1, dtype=np.int32),
        "group_indices": np.arange(0, n + 1, group_size, dtype=np.int32),
    }
    for field, array in arrays.items():
        np.save(folder / f"all__{field}.npy", np.ascontiguousarray(array))
    meta = split_meta(n // group_size, seq_len)
    (folder / "dataset.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- reading


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MazeDataError(f"{path}: missing")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise MazeDataError(f"{path}: not a readable .npy array ({exc})") from exc


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        raise MazeDataError(f"{path}: missing")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise MazeDataError(f"{path}: not valid JSON ({exc})") from exc
    missing = [key for key in META_KEYS if key not in (meta if isinstance(meta, dict) else {})]
    if missing:
        raise MazeDataError(f"{path}: missing keys {missing}")
    for key in ("seq_len", "total_groups"):
        if not isinstance(meta[key], int) or meta[key] < 1:
            raise MazeDataError(f"{path}: {key} {meta[key]!r} is not a positive integer")
    if math.isqrt(meta["seq_len"]) ** 2 != meta["seq_len"]:
        raise MazeDataError(f"{path}: seq_len {meta['seq_len']!r} is not the square of a grid size")
    if meta["vocab_size"] != VOCAB_SIZE or "all" not in meta["sets"]:
        raise MazeDataError(
            f"{path}: expected vocab_size {VOCAB_SIZE} and sets ['all'], "
            f"got {meta['vocab_size']!r} and {meta['sets']!r}"
        )
    return meta


def check_mazes(
    inputs: np.ndarray, labels: np.ndarray, where: str, first_line: int | None = None
) -> None:
    """Raise MazeDataError (prefixed by `where`) unless every maze has tokens in range,
    exactly one S and one G, and a label equal to its input except open cells marked 'o'.
    Mazes are named by index, or by CSV line counting from `first_line`."""

    def name(i):
        return f"maze {i}" if first_line is None else f"line {i + first_line}"

    bad = np.flatnonzero(((inputs < WALL) | (inputs > GOAL)).any(axis=1))
    if bad.size:
        raise MazeDataError(f"{where}: {name(bad[0])}: input holds tokens outside 1-4 ('# SG')")
    for token, char in ((START, "S"), (GOAL, "G")):
        bad = np.flatnonzero((inputs == token).sum(axis=1) != 1)
        if bad.size:
            raise MazeDataError(
                f"{where}: {name(bad[0])}: {(inputs[bad[0]] == token).sum()} "
                f"{char!r} cells, expected exactly one"
            )
    consistent = (labels == inputs) | ((inputs == OPEN) & (labels == PATH))
    bad = np.flatnonzero(~consistent.all(axis=1))
    if bad.size:
        raise MazeDataError(
            f"{where}: {name(bad[0])}: the label is not the input with open cells marked 'o'"
        )


def load_maze_split(root: str | os.PathLike, split: str) -> MazeSplit:
    """Load and validate `root/split` (files, dtypes, shapes against dataset.json, tokens,
    one S and G per maze, labels consistent with inputs); MazeDataError names the file."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise MazeDataError(f"{folder}: missing split folder")
    meta = _read_meta(folder / "dataset.json")
    arrays = {field: _load_npy(folder / f"all__{field}.npy") for field in FIELDS}
    n = arrays["inputs"].shape[0] if arrays["inputs"].ndim else 0
    rows = arrays["labels"].shape[0] if arrays["labels"].ndim else 0
    if rows != n:  # neither file is known to be the wrong one: name both
        raise MazeDataError(
            f"{folder}: all__inputs.npy and all__labels.npy disagree: {n} inputs vs {rows} labels"
        )
    expected = {
        "inputs": (np.uint8, (n, meta["seq_len"])),
        "labels": (np.uint8, (n, meta["seq_len"])),
        "puzzle_identifiers": (np.int32, (n,)),
        "puzzle_indices": (np.int32, (n + 1,)),
        "group_indices": (np.int32, (meta["total_groups"] + 1,)),
    }
    for field, (dtype, shape) in expected.items():
        array, path = arrays[field], folder / f"all__{field}.npy"
        if array.dtype != dtype or array.shape != shape:
            raise MazeDataError(
                f"{path}: expected {np.dtype(dtype).name} {shape} "
                f"(dataset.json and all__inputs.npy), got {array.dtype} {array.shape}"
            )
    if not np.array_equal(arrays["puzzle_indices"], np.arange(n + 1)):
        raise MazeDataError(
            f"{folder / 'all__puzzle_indices.npy'}: expected 0..{n} (one example per puzzle)"
        )
    groups = arrays["group_indices"]
    if groups[0] != 0 or groups[-1] != n or np.any(np.diff(groups) <= 0):
        raise MazeDataError(
            f"{folder / 'all__group_indices.npy'}: expected increasing from 0 to {n}"
        )
    check_mazes(arrays["inputs"], arrays["labels"], str(folder / "all__{inputs,labels}.npy"))
    return MazeSplit(arrays["inputs"], arrays["labels"], math.isqrt(meta["seq_len"]), meta, groups)
