"""The parity and addition generators: shapes, determinism, targets recomputed by brute force."""

import numpy as np
import pytest

from halting.config import make_config
from halting.data.toy import (
    BLANK,
    _sum_targets,
    addition_batch,
    addition_places,
    addition_val_set,
    parity_batch,
    parity_k_range,
    parity_val_set,
)
from halting.tasks import get_task


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# --- parity ----------------------------------------------------------------------------------


def test_parity_shapes_and_dtypes():
    batch = parity_batch(seed=0, step=0, batch_size=7, bits=16)
    assert batch["x"].shape == (7, 16) and batch["x"].dtype == np.float32
    assert batch["y"].shape == (7,) and batch["y"].dtype == np.int64
    assert batch["k"].shape == (7,) and batch["k"].dtype == np.int64
    assert set(np.unique(batch["x"])) <= {-1.0, 0.0, 1.0}


def test_parity_is_a_pure_function_of_seed_and_step():
    a = parity_batch(3, 10, 64, 16)
    assert _same(a, parity_batch(3, 10, 64, 16))
    assert not np.array_equal(a["x"], parity_batch(3, 11, 64, 16)["x"])
    assert not np.array_equal(a["x"], parity_batch(4, 10, 64, 16)["x"])


def test_parity_validation_stream_differs_from_every_early_training_step():
    val = parity_val_set(seed=0, size=64, bits=16)
    assert _same(val, parity_val_set(seed=0, size=64, bits=16))
    for step in range(200):
        assert not np.array_equal(val["x"], parity_batch(0, step, 64, 16)["x"])


@pytest.mark.parametrize("layout", ["random", "prefix"])
def test_parity_target_and_k_by_brute_force(layout):
    batch = parity_batch(1, 5, 300, 12, layout=layout)
    for x, y, k in zip(batch["x"], batch["y"], batch["k"]):
        assert int(np.count_nonzero(x)) == k
        assert y == sum(1 for v in x if v == 1.0) % 2
    assert set(batch["y"].tolist()) == {0, 1}


def test_parity_k_covers_one_to_bits():
    k = parity_batch(0, 0, 4000, 16)["k"]
    assert set(k.tolist()) == set(range(1, 17))
    counts = np.bincount(k, minlength=17)[1:]
    assert counts.min() > 4000 / 16 * 0.6  # roughly uniform


def test_parity_layouts_place_entries_where_they_say():
    prefix = parity_batch(0, 0, 500, 16, layout="prefix")
    for x, k in zip(prefix["x"], prefix["k"]):
        assert np.all(x[:k] != 0) and np.all(x[k:] == 0)
    rand = parity_batch(0, 0, 500, 16, layout="random")
    nonzero = rand["x"] != 0
    assert nonzero[:, -1].mean() > 0.3  # the last position is used by about half the samples
    not_prefix = [not np.all(row[:k]) for row, k in zip(nonzero, rand["k"]) if k < 16]
    assert np.mean(not_prefix) > 0.5
    assert np.all(nonzero.sum(axis=1) == rand["k"])


def test_parity_k_limits_and_extrapolation_ranges():
    assert parity_k_range(16, False, "train") == parity_k_range(16, False, "val") == (1, 16)
    train, val = parity_k_range(16, True, "train"), parity_k_range(16, True, "val")
    assert train == (1, 8) and val == (9, 16)
    odd_train, odd_val = parity_k_range(7, True, "train"), parity_k_range(7, True, "val")
    assert odd_train[1] < odd_val[0] and odd_train[0] == 1 and odd_val[1] == 7
    batch = parity_batch(0, 0, 500, 16, k_min=train[0], k_max=train[1])
    assert batch["k"].min() == 1 and batch["k"].max() == 8
    val_set = parity_val_set(0, 500, 16, extrapolate=True)
    assert val_set["k"].min() == 9 and val_set["k"].max() == 16
    with pytest.raises(ValueError, match="need 1 <= k_min <= k_max <= bits, got 0, 16, 16"):
        parity_batch(0, 0, 4, 16, k_min=0)
    with pytest.raises(ValueError, match="need 1 <= k_min <= k_max <= bits, got 1, 17, 16"):
        parity_batch(0, 0, 4, 16, k_max=17)
    with pytest.raises(
        ValueError, match="parity layout must be 'random' or 'prefix', got 'suffix'"
    ):
        parity_batch(0, 0, 4, 16, layout="suffix")
    with pytest.raises(ValueError, match="parity extrapolation needs bits >= 2, got 1"):
        parity_k_range(1, True, "train")
    with pytest.raises(ValueError, match="seed and step must be >= 0, got seed=0, step=-1"):
        parity_batch(0, -1, 4, 16)
    with pytest.raises(ValueError, match="split must be 'train' or 'val', got 'test'"):
        parity_k_range(16, False, "test")


# --- addition --------------------------------------------------------------------------------


def _decode_numbers(x: np.ndarray, max_digits: int) -> list[list[int]]:
    """Python ints from the one-hot inputs (B, T, 10*D), most significant digit first."""
    numbers = []
    for sample in x.reshape(x.shape[0], x.shape[1], max_digits, 10):
        row = []
        for slots in sample:
            digits = [int(np.argmax(s)) for s in slots if s.sum() == 1]
            assert all(s.sum() == 0 for s in slots[len(digits) :])  # left-aligned
            row.append(int("".join(map(str, digits))))
        numbers.append(row)
    return numbers


def _encode_sum(total: int, places: int) -> list[int]:
    text = str(total)[::-1]  # least significant first
    assert len(text) <= places
    return [int(c) for c in text] + [BLANK] * (places - len(text))


def test_addition_places():
    assert addition_places(1, 5) == 5  # ceil(log10 1) = 0
    assert addition_places(2, 5) == addition_places(10, 5) == 6
    assert addition_places(11, 5) == addition_places(100, 5) == 7
    assert addition_places(101, 3) == 6


def test_addition_shapes_and_dtypes():
    batch = addition_batch(seed=0, step=0, batch_size=4, sequence_length=5, max_digits=5)
    assert batch["x"].shape == (4, 5, 50) and batch["x"].dtype == np.float32
    assert batch["y"].shape == (4, 5, 6) and batch["y"].dtype == np.int64
    assert batch["mask"].shape == (4, 5) and batch["mask"].dtype == np.bool_
    assert batch["digits"].shape == (4, 5) and batch["digits"].dtype == np.int64
    assert np.all(~batch["mask"][:, 0]) and np.all(batch["mask"][:, 1:])
    assert batch["y"].min() >= 0 and batch["y"].max() <= BLANK


@pytest.mark.parametrize("length,digits", [(5, 5), (1, 3), (10, 1), (12, 2)])
def test_addition_targets_are_the_cumulative_sums_of_the_inputs(length, digits):
    batch = addition_batch(2, 7, 200, length, digits)
    places = addition_places(length, digits)
    numbers = _decode_numbers(batch["x"], digits)
    for sample, y, d in zip(numbers, batch["y"], batch["digits"]):
        assert [len(str(n)) for n in sample] == d.tolist()  # no leading zeros
        for t in range(length):
            assert y[t].tolist() == _encode_sum(sum(sample[: t + 1]), places)
    assert set(batch["digits"].ravel().tolist()) == set(range(1, digits + 1))


def test_addition_blanks_pad_short_sums():
    batch = addition_batch(0, 0, 500, 5, 5)
    y = batch["y"]
    # a short sum is digits then blanks, never a blank followed by a digit
    blank = y == BLANK
    assert np.all(blank[..., :-1] <= blank[..., 1:])
    assert blank[:, 1].any() and not blank[..., 0].any()
    # one-digit numbers may be zero; the first step's target is then "0" and blanks
    zero = addition_batch(0, 0, 3000, 2, 1)
    first = zero["x"][:, 0, :10].argmax(axis=1)
    assert np.any(first == 0)
    assert np.all(zero["y"][first == 0, 0] == [0, BLANK])


@pytest.mark.parametrize("length,digits", [(10, 5), (100, 3), (1, 4), (9, 2), (11, 1)])
def test_addition_places_hold_the_largest_possible_sum(length, digits):
    places = addition_places(length, digits)
    largest = length * (10**digits - 1)  # T numbers of D nines
    assert _sum_targets(np.array([largest]), places)[0].tolist() == _encode_sum(largest, places)
    if 10 ** (places - digits) == length:  # P is tight when T is a power of 10
        assert BLANK not in _sum_targets(np.array([largest]), places)[0].tolist()
    with pytest.raises(ValueError, match=f"a cumulative sum does not fit in {places} places"):
        _sum_targets(np.array([10**places]), places)


@pytest.mark.parametrize("length,digits", [(0, 3), (5, 0), (10, 18)])  # T < 1, D < 1, P = 19 > 18
def test_addition_refuses_impossible_sizes(length, digits):
    with pytest.raises(ValueError, match=r"need T >= 1, 1 <= D and D \+ ceil\(log10 T\) <= 18"):
        addition_batch(0, 0, 4, length, digits)


def test_addition_generator_with_maximal_numbers():
    # a row of all-nine 1-digit numbers (1% of rows for T = 2) sums to 18: both places used
    batch = addition_batch(0, 0, 5000, 2, 1)
    nines = np.all(batch["x"][..., 9] == 1, axis=1)
    assert nines.any()
    assert np.all(batch["y"][nines, 1] == [8, 1])
    assert np.all(batch["y"][nines, 0] == [9, BLANK])


def test_addition_is_deterministic_and_validation_stream_differs():
    a = addition_batch(1, 3, 16, 5, 5)
    assert _same(a, addition_batch(1, 3, 16, 5, 5))
    assert not np.array_equal(a["x"], addition_batch(1, 4, 16, 5, 5)["x"])
    val = addition_val_set(1, 16, 5, 5)
    assert _same(val, addition_val_set(1, 16, 5, 5))
    assert all(
        not np.array_equal(val["x"], addition_batch(1, g, 16, 5, 5)["x"]) for g in range(200)
    )
    # the validation stream is not training step 0's
    assert not np.array_equal(
        addition_val_set(0, 8, 5, 5)["digits"], addition_batch(0, 0, 8, 5, 5)["digits"]
    )


# --- the streams of a config -----------------------------------------------------------------


def test_task_streams_bind_the_config():
    """The one binding of config fields to generators (training and evaluation share it)."""
    parity = make_config(
        {
            "task": "parity",
            "bits": 8,
            "batch_size": 5,
            "val_size": 6,
            "seed": 2,
            "max_steps": 10,
            "parity_extrapolate": True,
            "parity_layout": "prefix",
        }
    )
    make_batch, make_val = get_task("parity").streams(parity)
    assert _same(make_batch(4), parity_batch(2, 4, 5, 8, layout="prefix", k_min=1, k_max=4))
    assert _same(make_val(), parity_val_set(2, 6, 8, layout="prefix", extrapolate=True))
    addition = make_config(
        {
            "task": "addition",
            "sequence_length": 3,
            "max_digits": 2,
            "batch_size": 5,
            "val_size": 6,
            "seed": 2,
            "max_steps": 10,
        }
    )
    make_batch, make_val = get_task("addition").streams(addition)
    assert _same(make_batch(4), addition_batch(2, 4, 5, 3, 2))
    assert _same(make_val(), addition_val_set(2, 6, 3, 2))
    assert not hasattr(get_task("maze"), "streams")  # the maze reads a dataset folder


# --- Graves' distribution: 1..T numbers, every digit uniform (leading zeros allowed) ------------


def test_graves_addition_pads_short_sequences_and_allows_leading_zeros():
    T, D = 5, 3
    batch = addition_batch(1, 3, 2000, T, D, distribution="graves")
    present, places = batch["present"], addition_places(T, D)
    lengths = present.sum(1)
    assert set(lengths.tolist()) == set(range(1, T + 1))  # 1..T numbers
    assert np.array_equal(present, np.arange(T) < lengths[:, None])  # padding comes last
    assert np.array_equal(batch["mask"], present & (np.arange(T) > 0))
    assert not batch["x"][~present].any() and not batch["digits"][~present].any()
    slots = batch["x"].reshape(2000, T, D, 10)
    leading_zeros = 0
    for b in range(2000):
        total = 0
        for t in range(lengths[b]):
            digits = [int(np.argmax(s)) for s in slots[b, t] if s.sum() == 1]
            assert len(digits) == batch["digits"][b, t] >= 1
            leading_zeros += len(digits) > 1 and digits[0] == 0
            total += int("".join(map(str, digits)))
            assert batch["y"][b, t].tolist() == _encode_sum(total, places)
    assert leading_zeros > 100  # about 1 in 10 of the multi-digit numbers


def test_the_fixed_distribution_is_the_default_and_unchanged():
    default = addition_batch(4, 9, 64, 5, 5)
    assert _same(default, addition_batch(4, 9, 64, 5, 5, distribution="fixed"))
    assert default["present"].all()
    with pytest.raises(ValueError, match="addition distribution must be one of fixed, graves"):
        addition_batch(4, 9, 64, 5, 5, distribution="paper")


def test_task_streams_pass_the_distribution():
    config = make_config(
        {
            "task": "addition",
            "max_steps": 1,
            "sequence_length": 4,
            "max_digits": 2,
            "addition_distribution": "graves",
            "val_size": 300,
        }
    )
    make_batch, make_val = get_task("addition").streams(config)
    assert not make_batch(0)["present"].all() and not make_val()["present"].all()
