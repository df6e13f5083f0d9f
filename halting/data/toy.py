"""The ACT toy tasks (Graves 2016, sections 3.1 and 3.3): pure, seeded numpy generators.

The training batch at step g is a pure function of (seed, g); each validation set is drawn from
its own stream, which no training step uses. Every draw goes through `_rng(seed, stream, index)`.
"""

from __future__ import annotations

import numpy as np

ADDITION_DISTRIBUTIONS = ("fixed", "graves")  # number counts and digits: see addition_batch
# Random streams: (seed, stream, index) seeds one numpy Generator. Distinct per task and split.
_PARITY_TRAIN, _PARITY_VAL, _ADDITION_TRAIN, _ADDITION_VAL = 1, 2, 3, 4

BLANK = 10  # addition target class for a place beyond the sum's last digit
ADDITION_CLASSES = 11
_MAX_PLACES = 18  # cumulative sums are computed in int64: 10**18 < 2**63


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """One Generator per (seed, stream, index); SeedSequence keeps the streams independent."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and step must be >= 0, got seed={seed}, step={index}")
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


# --- parity (Graves 3.1) ---------------------------------------------------------------------


def parity_k_range(bits: int, extrapolate: bool, split: str) -> tuple[int, int]:
    """(k_min, k_max) of non-zero entries: 1..bits, or with `extrapolate` (PonderNet 3.1)
    train on 1..bits//2 and validate on bits//2+1..bits."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if not extrapolate:
        return 1, bits
    if bits < 2:
        raise ValueError(f"parity extrapolation needs bits >= 2, got {bits}")
    half = bits // 2
    return (1, half) if split == "train" else (half + 1, bits)


def _parity(
    rng: np.random.Generator, n: int, bits: int, layout: str, k_min: int, k_max: int | None
) -> dict[str, np.ndarray]:
    k_max = bits if k_max is None else k_max
    if layout not in ("random", "prefix"):
        raise ValueError(f"parity layout must be 'random' or 'prefix', got {layout!r}")
    if not 1 <= k_min <= k_max <= bits:
        raise ValueError(f"need 1 <= k_min <= k_max <= bits, got {k_min}, {k_max}, {bits}")
    k = rng.integers(k_min, k_max + 1, size=n)  # (B,)
    if layout == "prefix":
        rank = np.broadcast_to(np.arange(bits), (n, bits))  # the first k entries
    else:
        rank = np.argsort(np.argsort(rng.random((n, bits)), axis=1), axis=1)  # random order
    chosen = rank < k[:, None]  # (B, bits): exactly k entries per row
    sign = np.where(rng.random((n, bits)) < 0.5, -1.0, 1.0)
    x = np.where(chosen, sign, 0.0).astype(np.float32)  # (B, bits) in {-1, 0, +1}
    y = ((x == 1.0).sum(axis=1) % 2).astype(np.int64)  # parity of the number of +1 entries
    return {"x": x, "y": y, "k": k.astype(np.int64)}


def parity_batch(
    seed: int,
    step: int,
    batch_size: int,
    bits: int,
    layout: str = "random",
    k_min: int = 1,
    k_max: int | None = None,
) -> dict[str, np.ndarray]:
    """Training batch `step`: k ~ U{k_min..k_max} entries set to +-1 (at random positions, or
    the first k with layout "prefix"), the rest 0; y = parity of the number of +1 entries."""
    return _parity(_rng(seed, _PARITY_TRAIN, step), batch_size, bits, layout, k_min, k_max)


def parity_val_set(
    seed: int, size: int, bits: int, layout: str = "random", extrapolate: bool = False
) -> dict[str, np.ndarray]:
    """The fixed validation set (its own stream); k > bits//2 when `extrapolate`."""
    k_min, k_max = parity_k_range(bits, extrapolate, "val")
    return _parity(_rng(seed, _PARITY_VAL, 0), size, bits, layout, k_min, k_max)


# --- addition (Graves 3.3) -------------------------------------------------------------------


def addition_places(sequence_length: int, max_digits: int) -> int:
    """P = D + ceil(log10(T)): a sum of T numbers below 10**D is below T * 10**D <= 10**P."""
    extra = 0
    while 10**extra < sequence_length:  # smallest e with 10**e >= T, exact in integers
        extra += 1
    return max_digits + extra


def _sum_targets(total: np.ndarray, places: int) -> np.ndarray:
    """Digit classes of non-negative int64 sums, least significant first, BLANK past the last
    digit (0 is "0"); ValueError if a sum needs more than `places` digits."""
    scale = 10 ** np.arange(places, dtype=np.int64)  # (P,) place p is the 10**p digit
    if np.any(total >= scale[-1] * 10):
        raise ValueError(f"a cumulative sum does not fit in {places} places")
    digit = (total[..., None] // scale) % 10  # (..., P)
    width = np.maximum(1, (total[..., None] >= scale).sum(axis=-1))  # digits of the sum
    return np.where(np.arange(places) < width[..., None], digit, BLANK).astype(np.int64)


def _addition(
    rng: np.random.Generator,
    n: int,
    sequence_length: int,
    max_digits: int,
    distribution: str = "fixed",
) -> dict[str, np.ndarray]:
    t, d = sequence_length, max_digits
    places = addition_places(t, d)
    if t < 1 or d < 1 or places > _MAX_PLACES:
        raise ValueError(f"need T >= 1, 1 <= D and D + ceil(log10 T) <= {_MAX_PLACES}")
    if distribution not in ADDITION_DISTRIBUTIONS:
        raise ValueError(
            f"addition distribution must be one of {', '.join(ADDITION_DISTRIBUTIONS)}"
            f"; got {distribution!r}"
        )
    n_digits = rng.integers(1, d + 1, size=(n, t))  # (B, T) D_i ~ U{1..D}
    digit = rng.integers(0, 10, size=(n, t, d))  # (B, T, D) most significant first
    if distribution == "fixed":
        leading = rng.integers(1, 10, size=(n, t))  # no leading zero unless the number is 1 digit
        digit[..., 0] = np.where(n_digits > 1, leading, digit[..., 0])
        present = np.ones((n, t), dtype=bool)
    else:  # Graves 3.3: every digit uniform (leading zeros allowed), 1..T numbers
        length = rng.integers(1, t + 1, size=n)  # (B,)
        present = np.arange(t) < length[:, None]  # (B, T): the steps past the length are padding
        n_digits = np.where(present, n_digits, 0)
    used = np.arange(d) < n_digits[..., None]  # (B, T, D)
    digit = np.where(used, digit, 0)
    # value = sum_j digit_j * 10**(D_i - 1 - j) over the used positions j < D_i
    power = np.where(used, n_digits[..., None] - 1 - np.arange(d), 0)
    value = (digit * 10**power).sum(axis=2)  # (B, T) int64; unused slots hold digit 0
    onehot = (digit[..., None] == np.arange(10)) & used[..., None]  # (B, T, D, 10)
    x = onehot.reshape(n, t, 10 * d).astype(np.float32)

    y = _sum_targets(np.cumsum(value, axis=1), places)  # (B, T, P)
    mask = (np.arange(t) > 0) & present  # no target at t = 0, nor on padding
    return {"x": x, "y": y, "mask": mask, "present": present, "digits": n_digits.astype(np.int64)}


def addition_batch(
    seed: int,
    step: int,
    batch_size: int,
    sequence_length: int,
    max_digits: int,
    distribution: str = "fixed",
) -> dict[str, np.ndarray]:
    """Training batch `step` of Graves' addition task.

    x (B, T, 10*D): T numbers of D_i ~ U{1..D} digits, one-hot, most significant digit first,
    left-aligned (slots j >= D_i all zero). y (B, T, P): the digits of the cumulative sum up to t,
    LEAST significant first (place p holds the 10**p digit), then BLANK (10) for every place
    past the sum's last digit (a sum of 0 is "0" then blanks). mask (B, T) is False at t = 0
    (Graves asks no output before the second number; y there is still the first number).
    `distribution` "fixed": every sequence has T numbers, none with a leading zero. "graves"
    (Graves 3.3): each sequence has 1..T numbers (uniform) and every digit is uniform 0-9;
    the steps past a sequence's length are padding: present (B, T) False, x 0, mask False.
    """
    return _addition(
        _rng(seed, _ADDITION_TRAIN, step), batch_size, sequence_length, max_digits, distribution
    )


def addition_val_set(
    seed: int, size: int, sequence_length: int, max_digits: int, distribution: str = "fixed"
) -> dict[str, np.ndarray]:
    """The fixed addition validation set, drawn from its own stream (see `addition_batch`)."""
    return _addition(_rng(seed, _ADDITION_VAL, 0), size, sequence_length, max_digits, distribution)


# --- the streams of a config -----------------------------------------------------------------
