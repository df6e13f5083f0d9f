"""Worked example of a new task (docs/extending.md): majority of a vector of -1/0/+1 entries.

Target: 1 if the entries sum to more than 0, else 0. Difficulty: how close the vote is,
|sum of entries| (0 and 1 are the hardest). It reuses the config fields `bits` and `val_size`,
so it needs no new ExperimentConfig field. Registered by one line in halting/tasks/__init__.py:

    TASKS = {t.name: t for t in (Maze(), Parity(), Addition(), Majority())}
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch.nn.functional as F

from halting.tasks.base import ToyTask

_TRAIN, _VAL = 1, 2  # random streams: training batches and the validation set never share one


def majority_batch(seed: int, step: int, batch_size: int, bits: int, stream: int = _TRAIN):
    """Batch `step` of stream `stream`: `x` (B, bits) float32, `y` (B,) int64, `margin` (B,)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream, step]))
    x = rng.integers(-1, 2, size=(batch_size, bits)).astype(np.float32)
    total = x.sum(axis=1)
    return {"x": x, "y": (total > 0).astype(np.int64), "margin": np.abs(total).astype(np.int64)}


class Majority(ToyTask):
    name = "majority"
    display_name = "Majority"
    headline = "accuracy"
    difficulty_label = "|sum of entries|"
    input_kind = "vector"  # one RNN input step; UT tokens behind a CLS position
    fields = ("bits", "val_size")

    def io_shapes(self, config, data_meta: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
        return config.bits, (2,)

    def output_weights(self, p):
        return p[:, :1]  # the class is read out at one unit (the UT's CLS position)

    def unit_loss(self, logits, batch):
        return F.cross_entropy(logits, batch["y"], reduction="none")[:, None]  # (B, 1)

    def batch_metrics(self, logits, batch):
        return {"accuracy": (logits.argmax(-1) == batch["y"]).float().mean()}

    def records(self, logits, batch):
        return {"correct": logits.argmax(-1) == batch["y"]}

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        return {"accuracy": float(records["correct"].mean())}

    def streams(self, config):
        make_batch = functools.partial(
            majority_batch, config.seed, batch_size=config.batch_size, bits=config.bits
        )
        make_val = functools.partial(
            majority_batch, config.seed, 0, config.val_size, config.bits, stream=_VAL
        )
        return make_batch, make_val

    def data_meta(self, config) -> dict[str, Any]:
        return {"task": self.name, "bits": config.bits, "input_size": config.bits}

    def difficulty(self, data: dict[str, np.ndarray]) -> np.ndarray:
        return data["margin"]
