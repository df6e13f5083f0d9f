"""Maze-Hard datasets in HRM's on-disk format: build, augment, read (validating), describe.

A dataset folder holds `identifiers.json` and `train/`, `test/`, each with `dataset.json`
and `all__{inputs,labels,puzzle_identifiers,puzzle_indices,group_indices}.npy`, exactly as
HRM's `dataset/build_maze_dataset.py` writes them (plus TRM's `total_puzzles` key), so the
HRM and TRM loaders read our folders unchanged. Tokens: pad 0, then "# SGo" as 1..5.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halting.data.grid import (
    CHARSET,
    GOAL,
    OPEN,
    PATH,
    START,
    VOCAB_SIZE,
    WALL,
    GridError,
    canonical_labels,
    path_moves,
)
from halting.data.maze_gen import default_min_path_moves, generate_mazes, layout_key
from halting.io import atomic_dir, atomic_path, atomic_write_text

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
CSV_HEADER = ("source", "question", "answer", "rating")  # the original Maze-Hard CSV files
DIHEDRAL = (
    "identity",
    "rot90",
    "rot180",
    "rot270",
    "flip_lr",
    "flip_ud",
    "transpose",
    "anti_transpose",
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


# ---------------------------------------------------------------- augmentation


_DIHEDRAL_OPS = (  # on grids (..., S, S), in DIHEDRAL's order
    lambda x: x,
    lambda x: np.rot90(x, 1, (-2, -1)),
    lambda x: np.rot90(x, 2, (-2, -1)),
    lambda x: np.rot90(x, 3, (-2, -1)),
    lambda x: np.flip(x, -1),
    lambda x: np.flip(x, -2),
    lambda x: np.swapaxes(x, -1, -2),
    lambda x: np.flip(np.rot90(x, 1, (-2, -1)), -1),
)


def dihedral(grids: np.ndarray, index: int) -> np.ndarray:
    """Symmetry `DIHEDRAL[index]` of grids (..., S, S), in HRM/TRM's order."""
    return _DIHEDRAL_OPS[index](grids)


def augment_dihedral(inputs: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """aug8: the 8 symmetric copies of each maze, consecutive (N*8, size*size); each label is
    recomputed as the canonical path of the transformed maze (a rotated path is not)."""
    grids = inputs.reshape(-1, size, size)
    copies = np.stack([dihedral(grids, k) for k in range(len(DIHEDRAL))], axis=1)
    aug_inputs = np.ascontiguousarray(copies).reshape(-1, size * size)
    return aug_inputs, canonical_labels(aug_inputs, size)


# ---------------------------------------------------------------- CSV


def read_maze_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Questions and answers of an original-format CSV (header `source,question,answer,rating`;
    columns found by name) as token arrays (N, L); validated."""
    if not path.is_file():
        raise MazeDataError(f"{path}: missing")
    lut = np.zeros(256, dtype=np.uint8)
    lut[[ord(ch) for ch in CHARSET]] = np.arange(1, len(CHARSET) + 1)
    questions, answers, length = [], [], None
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's BOM
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in ("question", "answer") if name not in header]
        if missing:
            raise MazeDataError(
                f"{path}: line 1: the header {','.join(header) or '(empty)'} lacks "
                f"column(s) {', '.join(missing)}; expected the header "
                f"{','.join(CSV_HEADER)}"
            )
        iq, ia = header.index("question"), header.index("answer")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise MazeDataError(
                    f"{path}: line {line}: {len(row)} fields, but the header has "
                    f"{len(header)} ({','.join(header)})"
                )
            q, a = row[iq], row[ia]
            length = len(q) if length is None else length
            if math.isqrt(length) ** 2 != length:
                raise MazeDataError(
                    f"{path}: line {line}: {length} characters is not a square grid"
                )
            if len(q) != length or len(a) != length:
                raise MazeDataError(
                    f"{path}: line {line}: question/answer of {len(q)}/{len(a)} "
                    f"characters, expected {length}"
                )
            odd = set(q + a) - set(CHARSET)
            if odd or "o" in q:
                raise MazeDataError(
                    f"{path}: line {line}: characters {sorted(odd or {'o'})} not allowed "
                    f"(question over '# SG', answer over '# SGo')"
                )
            questions.append(lut[np.frombuffer(q.encode("ascii"), dtype=np.uint8)])
            answers.append(lut[np.frombuffer(a.encode("ascii"), dtype=np.uint8)])
    if not questions:
        raise MazeDataError(f"{path}: no mazes after the header")
    inputs, labels = np.stack(questions), np.stack(answers)
    check_mazes(inputs, labels, str(path), first_line=2)
    return inputs, labels


def write_maze_csv(
    path: Path, inputs: np.ndarray, labels: np.ndarray, source: str = "halting"
) -> None:
    """Write mazes in the original CSV format (source, question, answer, rating), atomically."""
    chars = np.array([""] + list(CHARSET))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for x, y in zip(inputs, labels):
            writer.writerow([source, "".join(chars[x]), "".join(chars[y]), 0])


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
