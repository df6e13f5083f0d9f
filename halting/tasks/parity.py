"""Parity (Graves 2016, section 3.1): the parity of a vector of -1/0/+1 entries.

Difficulty: the number k of non-zero entries. Headline: accuracy.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch.nn.functional as F

from halting.tasks.base import ToyTask


class Parity(ToyTask):
    name = "parity"
    display_name = "Parity"
    headline = "accuracy"
    difficulty_label = "non-zero input bits k"
    input_kind = "vector"
    fields = ("bits", "parity_layout", "parity_extrapolate", "val_size")

    def io_shapes(self, config, data_meta: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
        return config.bits, (2,)

    def output_weights(self, p):
        """The class is read out at one unit: the RNN's only one, the UT's CLS position 0."""
        return p[:, :1]

    def unit_loss(self, logits, batch):
        """Cross-entropy per example (B, 1)."""
        return F.cross_entropy(logits, batch["y"], reduction="none")[:, None]

    def batch_metrics(self, logits, batch):
        return {"accuracy": correct(logits, batch["y"]).float().mean()}

    def records(self, logits, batch):
        return {"correct": correct(logits, batch["y"])}

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        return {"accuracy": float(records["correct"].mean())}

    def streams(self, config):
        from halting.data import toy

        c = config
        k_min, k_max = toy.parity_k_range(c.bits, c.parity_extrapolate, "train")
        make_batch = functools.partial(
            toy.parity_batch,
            c.seed,
            batch_size=c.batch_size,
            bits=c.bits,
            layout=c.parity_layout,
            k_min=k_min,
            k_max=k_max,
        )
        make_val = functools.partial(
            toy.parity_val_set,
            c.seed,
            c.val_size,
            c.bits,
            layout=c.parity_layout,
            extrapolate=c.parity_extrapolate,
        )
        return make_batch, make_val

    def data_meta(self, config) -> dict[str, Any]:
        return {
            "task": "parity",
            "bits": config.bits,
            "input_size": config.bits,
            "n_classes": 2,
            "val_size": config.val_size,
        }

    def difficulty(self, data: dict[str, np.ndarray]) -> np.ndarray:
        return data["k"].astype(np.int64)


def correct(logits, y):
    """(B,) bool: argmax of the (B, 2) logits equals the parity target."""
    return logits.argmax(dim=-1) == y
