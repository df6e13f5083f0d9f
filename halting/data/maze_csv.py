"""The original Maze-Hard CSV files (`source,question,answer,rating`): read (validating)
and write."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from halting.data.grid import CHARSET
from halting.data.maze_format import MazeDataError, check_mazes
from halting.io import atomic_path

CSV_HEADER = ("source", "question", "answer", "rating")  # the original Maze-Hard CSV files


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
