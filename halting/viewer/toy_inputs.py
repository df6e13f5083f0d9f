"""The toy tasks' inputs as text: parity's + - 0 entries and addition's numbers parsed, encoded,
drawn at random into the editors, and their targets spelled out."""

from __future__ import annotations

import re

import numpy as np

from halting.data import toy


def parse_bits(text: str, bits: int) -> np.ndarray:
    """Parity input from text: characters + - 0 (or 1 for +1), or numbers -1 0 1 separated by
    spaces or commas; padded with 0 to `bits`. ValueError names what is wrong."""
    text = text.strip()
    if re.search(r"[\s,]", text):
        values = []
        for token in re.split(r"[\s,]+", text):
            if token.lstrip("+") not in ("-1", "0", "1"):
                raise ValueError(f"{token!r} is not one of -1, 0, 1")
            values.append(int(token))
    else:
        chars = {"+": 1, "1": 1, "-": -1, "0": 0, ".": 0}
        bad = sorted(set(text) - set(chars))
        if bad:
            raise ValueError(f"unexpected character(s) {''.join(bad)!r}: use + - 0")
        values = [chars[c] for c in text]
    if len(values) > bits:
        raise ValueError(f"{len(values)} entries, but the model takes {bits}")
    return np.array(values + [0] * (bits - len(values)), dtype=np.float32)


def format_bits(x: np.ndarray) -> str:
    return "".join({1: "+", -1: "-", 0: "0"}[int(v)] for v in np.asarray(x).round())


def parity_target(x: np.ndarray) -> int:
    return int((np.asarray(x) == 1).sum() % 2)


def parse_numbers(text: str, sequence_length: int, max_digits: int) -> list[int]:
    """Addition input: 1..T non-negative integers of at most D digits, separated by spaces,
    commas or +."""
    tokens = [t for t in re.split(r"[\s,+]+", text.strip()) if t]
    if not tokens:
        raise ValueError("type at least one number")
    bad = [t for t in tokens if not t.isdigit()]
    if bad:
        raise ValueError(f"not a non-negative integer: {bad[0]!r}")
    numbers = [int(t) for t in tokens]
    if len(numbers) > sequence_length:
        raise ValueError(f"{len(numbers)} numbers, but the model was trained on {sequence_length}")
    long = [n for n in numbers if len(str(n)) > max_digits]
    if long:
        raise ValueError(f"{long[0]} has more than {max_digits} digits")
    return numbers


def encode_numbers(numbers: list[int], max_digits: int) -> np.ndarray:
    """(T, 10 D) one-hot digits, most significant first, left-aligned (as `toy.addition_batch`)."""
    x = np.zeros((len(numbers), max_digits, 10), dtype=np.float32)
    for t, number in enumerate(numbers):
        for j, digit in enumerate(str(number)):
            x[t, j, int(digit)] = 1.0
    return x.reshape(len(numbers), 10 * max_digits)


def decode_numbers(x: np.ndarray, digits: np.ndarray) -> list[int]:
    """The numbers of an addition input (T, 10 D) with `digits` (T,) digits each."""
    onehot = np.asarray(x).reshape(len(x), -1, 10)  # (T, D, 10)
    return [int("".join(str(d) for d in row.argmax(-1)[:n])) for row, n in zip(onehot, digits)]


def addition_targets(numbers: list[int], places: int) -> np.ndarray:
    """(T, P) digit classes of the cumulative sums (least significant first, 10 = blank)."""
    return toy._sum_targets(np.cumsum(np.asarray(numbers, dtype=np.int64)), places)


def decode_places(classes: np.ndarray) -> str:
    """Digit classes (P,), least significant first, as the number they spell; a digit after
    a blank (not a number) shows the blank as '_'."""
    classes = [int(c) for c in classes]
    while classes and classes[-1] == toy.BLANK:
        classes.pop()
    return "".join("_" if c == toy.BLANK else str(c) for c in reversed(classes)) or "_"
