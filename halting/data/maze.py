"""Maze-Hard datasets in HRM's on-disk format: build a dataset folder, describe one
(statistics, content hash, manifest).

The format (writing and validated reading of a split) is in `halting.data.maze_format`, the
original CSV files in `halting.data.maze_csv`, aug8 in `halting.data.maze_augment`, the
generator in `halting.data.maze_gen`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from halting.data.grid import GOAL, START, WALL, GridError, canonical_labels, path_moves
from halting.data.maze_augment import DIHEDRAL, augment_dihedral
from halting.data.maze_csv import read_maze_csv
from halting.data.maze_format import SPLITS, MazeDataError, load_maze_split, write_split
from halting.data.maze_gen import default_min_path_moves, generate_mazes, layout_key
from halting.io import atomic_dir, atomic_write_text

# ---------------------------------------------------------------- building


def build_dataset(
    output_dir: str | os.PathLike,
    *,
    source: str = "generate",
    size: int | None = None,
    n_train: int = 1000,
    n_test: int = 1000,
    min_path_moves: int | None = None,
    seed: int = 0,
    csv_dir: str | os.PathLike | None = None,
    relabel: bool = False,
    subsample_size: int | None = None,
    aug: bool = False,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    log=print,
) -> dict:
    """Build a dataset folder atomically (`halting.io.atomic_dir`: a hidden sibling folder,
    synced, renamed at the end).

    source "generate": `n_train` + `n_test` mazes with disjoint layouts, from `seed`; "csv":
    `csv_dir`/{train,test}.csv (`relabel`: replace non-canonical answers). Then an optional
    seeded subsample of train and the aug8 augmentation of train. Returns a summary dict.
    """
    for flag, value in (("subsample-size", subsample_size), ("workers", workers)):
        if value is not None and value < 1:  # checked before anything is generated or written
            raise ValueError(f"--{flag} {value}: expected a positive integer")
    out = Path(output_dir)
    if out.exists() and not force:
        raise FileExistsError(f"--output-dir {out}: already exists (use --force to replace it)")
    started = time.perf_counter()
    if source == "generate":
        _check_subsample(subsample_size, n_train, f"--n-train {n_train}")  # before generating
        size, train, test = _generated(
            size, n_train, n_test, min_path_moves, seed, workers, progress, log
        )
    elif source == "csv":
        size, train, test = _from_csv(csv_dir, size, relabel, log)
        _check_subsample(subsample_size, len(train[0]), f"{Path(csv_dir) / 'train.csv'}")
    else:
        raise ValueError(f"--source {source!r}: expected 'generate' or 'csv'")
    if subsample_size is not None and subsample_size < len(train[0]):
        pick = np.sort(
            np.random.default_rng([seed, 2]).choice(len(train[0]), subsample_size, replace=False)
        )
        train = (train[0][pick], train[1][pick])
    group = len(DIHEDRAL) if aug else 1
    if aug:
        augmented = augment_dihedral(train[0], size)
        replaced = int((augmented[1][::group] != train[1]).any(axis=1).sum())  # identity copies
        if replaced:  # only kept CSV answers can differ from the canonical path
            raise MazeDataError(
                f"{Path(csv_dir) / 'train.csv'}: {replaced} answers differ from "
                f"the canonical path and --aug recomputes every label: add "
                f"--relabel to train on canonical paths, or build without --aug"
            )
        train = augmented
    with atomic_dir(out) as tmp:
        write_split(tmp / "train", *train, group_size=group)
        write_split(tmp / "test", *test)
        (tmp / "identifiers.json").write_text(json.dumps(["<blank>"]))
    summary = {
        "output_dir": str(out),
        "size": size,
        "train_examples": len(train[0]),
        "train_groups": len(train[0]) // group,
        "test_examples": len(test[0]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(
        f"wrote {out}: {summary['train_examples']} train examples in "
        f"{summary['train_groups']} groups, "
        f"{summary['test_examples']} test examples ({summary['seconds']} s)"
    )
    return summary


def _check_subsample(subsample_size: int | None, pool: int, where: str) -> None:
    """Refuse a subsample larger than the train set it is drawn from (it would be ignored)."""
    if subsample_size is not None and subsample_size > pool:
        raise ValueError(
            f"--subsample-size {subsample_size}: more than the {pool} train mazes "
            f"to draw from ({where})"
        )


def _generated(size, n_train, n_test, min_path_moves, seed, workers, progress, log):
    size = 30 if size is None else size
    moves = default_min_path_moves(size) if min_path_moves is None else min_path_moves
    if n_train < 1 or n_test < 1:
        raise ValueError(f"--n-train {n_train} / --n-test {n_test}: expected >= 1")
    log(f"generating {n_train} + {n_test} mazes, {size}x{size}, >= {moves} moves, seed {seed}")
    started, tried = time.perf_counter(), [{}, {}]
    train = generate_mazes(
        n_train,
        size,
        moves,
        seed,
        0,
        workers,
        progress="train" if progress else None,
        stats=tried[0],
    )
    keys = {layout_key(x) for x in train[0]}  # test layouts differ from every train layout
    test = generate_mazes(
        n_test,
        size,
        moves,
        seed,
        1,
        workers,
        keys,
        progress="test" if progress else None,
        stats=tried[1],
    )
    layouts = tried[0]["layouts"] + tried[1]["layouts"]
    log(
        f"tested {layouts} layouts ({100 * (n_train + n_test) / layouts:.3f}% yield a maze) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return size, train, test


def _from_csv(csv_dir, size, relabel, log):
    if csv_dir is None:
        raise ValueError("--source csv needs --csv-dir DIR (holding train.csv and test.csv)")
    train, test = (read_maze_csv(Path(csv_dir) / f"{split}.csv") for split in SPLITS)
    cells = train[0].shape[1]
    if test[0].shape[1] != cells or (size is not None and size * size != cells):
        raise MazeDataError(
            f"{csv_dir}: grids of {cells} (train.csv) and {test[0].shape[1]} (test.csv) "
            f"cells" + ("" if size is None else f", expected --size {size}")
        )
    size, fixed = math.isqrt(cells), []
    for split, (x, y) in zip(SPLITS, (train, test)):
        try:
            canonical = canonical_labels(x, size)
        except GridError as exc:  # after read_maze_csv's checks: G is not reachable from S
            raise MazeDataError(
                f"{Path(csv_dir) / f'{split}.csv'}: line {exc.index + 2}: {exc.reason}, "
                f"expected a path from S to G"
            ) from exc
        differ = int((canonical != y).any(axis=1).sum())
        log(
            f"{split}.csv: {len(x)} mazes; {differ} answers differ from the canonical path"
            + (
                ""
                if not differ
                else " (replaced)"
                if relabel
                else " (kept; --relabel replaces them)"
            )
        )
        fixed.append((x, canonical if relabel else y))
    return size, *fixed


# ---------------------------------------------------------------- statistics and hashes


def maze_stats(inputs: np.ndarray, labels: np.ndarray, size: int) -> dict:
    """The Maze-Hard statistics of a set: wall fraction, path moves, Manhattan S-G distance."""
    walls = (inputs == WALL).mean(axis=1)
    moves = path_moves(labels)
    s, g = np.argmax(inputs == START, axis=1), np.argmax(inputs == GOAL, axis=1)
    manhattan = np.abs(s // size - g // size) + np.abs(s % size - g % size)
    return {
        "mazes": len(inputs),
        "size": size,
        "wall_fraction_mean": float(walls.mean()),
        "wall_fraction_min": float(walls.min()),
        "wall_fraction_max": float(walls.max()),
        "path_moves_min": int(moves.min()),
        "path_moves_median": float(np.median(moves)),
        "path_moves_p90": float(np.percentile(moves, 90)),
        "path_moves_max": int(moves.max()),
        "manhattan_mean": float(manhattan.mean()),
    }


def content_hash(root: str | os.PathLike) -> str:
    """sha256 over the relative names, sizes and bytes of every file under `root`, except
    hidden ones and a top-level `manifest.json` (a manifest may be kept in the folder)."""
    return _hashes(Path(root))[0]


def _hashes(root: Path) -> tuple[str, dict[str, str]]:
    """`content_hash` of `root` and the sha256 of each file it covers, in one read."""
    digest, files = hashlib.sha256(), {}
    for rel, path in _data_files(root):
        digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
        own = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                own.update(block)
        files[rel] = own.hexdigest()
    return digest.hexdigest(), files


def _data_files(root: Path) -> list[tuple[str, Path]]:
    files = [p for p in root.rglob("*") if p.is_file()]
    rel = [(p.relative_to(root).as_posix(), p) for p in files]
    return sorted(
        (r, p)
        for r, p in rel
        if r != "manifest.json" and not any(part.startswith(".") for part in r.split("/"))
    )


def write_manifest(root: str | os.PathLike, path: str | os.PathLike) -> dict:
    """Write the dataset's manifest JSON (atomically): name, content hash, per-file sha256,
    grid size and example counts. Validates both splits first."""
    root, path = Path(root), Path(path)
    splits = {split: load_maze_split(root, split) for split in SPLITS}
    content, files = _hashes(root)
    manifest = {
        "dataset": root.name,
        "sha256": content,
        "files": files,
        "size": splits["train"].size,
        "n_train": len(splits["train"].inputs),
        "n_test": len(splits["test"].inputs),
    }
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return manifest
