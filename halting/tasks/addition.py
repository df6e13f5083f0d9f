"""Addition (Graves 2016, section 3.3): the running sum of a sequence of decimal numbers.

One input step per number; its target is the sum so far, one class (0-9 or blank) per place.
The loss is the cross-entropy SUMMED over the places and the scored steps (averaging over the
places would divide the effective tau by their number), batch mean. Difficulty: digits per
input number. Headline: `accuracy_sequence` (every place of every scored step right).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch.nn.functional as F

from halting.tasks.base import ToyTask


class Addition(ToyTask):
    name = "addition"
    display_name = "Addition"
    headline = "accuracy_sequence"
    difficulty_label = "mean digits per input number"
    input_kind = "sequence"
    fields = ("sequence_length", "max_digits", "addition_distribution", "val_size")
    example_columns = ("place_accuracy",)

    def io_shapes(self, config, data_meta: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
        return 10 * config.max_digits, (int(data_meta["places"]), 11)

    def model_mask(self, batch):
        """The `present` input steps (False on the padding of a shorter sequence: no steps, no
        cost)."""
        return batch.get("present")

    def unit_loss(self, logits, batch):
        """(B, T): cross-entropy summed over the places, 0 where the step is not scored."""
        # logits (B, T, P, 11), y (B, T, P)
        ce = F.cross_entropy(logits.flatten(0, 2), batch["y"].flatten(), reduction="none")
        return ce.view(batch["y"].shape).sum(-1) * batch["mask"].to(logits.dtype)

    def reduce_loss(self, unit_loss):
        """Summed over the steps, averaged over the batch."""
        return unit_loss.sum(1).mean()

    def batch_metrics(self, logits, batch):
        c = correct(logits, batch["y"], batch["mask"])
        m = {}
        m["accuracy_place"] = (c["place_correct"] * c["place_count"]).sum() / c[
            "place_count"
        ].sum().clamp(min=1)
        m["accuracy_sequence"] = c["sequence"].float().mean()
        m["accuracy"] = m["accuracy_place"]
        return m

    def records(self, logits, batch):
        c = correct(logits, batch["y"], batch["mask"])
        return {
            "correct": c["sequence"],
            "place_accuracy": c["place_correct"],
            "place_count": c["place_count"],
        }

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        count = records["place_count"].astype(np.float64)
        place = (records["place_accuracy"] * count).sum() / max(count.sum(), 1.0)
        return {
            "accuracy_place": float(place),
            "accuracy_sequence": float(records["correct"].mean()),
        }

    def streams(self, config):
        from halting.data import toy

        c = config
        make_batch = functools.partial(
            toy.addition_batch,
            c.seed,
            batch_size=c.batch_size,
            sequence_length=c.sequence_length,
            max_digits=c.max_digits,
            distribution=c.addition_distribution,
        )
        make_val = functools.partial(
            toy.addition_val_set,
            c.seed,
            c.val_size,
            c.sequence_length,
            c.max_digits,
            c.addition_distribution,
        )
        return make_batch, make_val

    def data_meta(self, config) -> dict[str, Any]:
        from halting.data import toy

        return {
            "task": "addition",
            "sequence_length": config.sequence_length,
            "max_digits": config.max_digits,
            "places": toy.addition_places(config.sequence_length, config.max_digits),
            "input_size": 10 * config.max_digits,
            "n_classes": toy.ADDITION_CLASSES,
            "val_size": config.val_size,
        }

    def difficulty(self, data: dict[str, np.ndarray]) -> np.ndarray:
        numbers = (data["digits"] > 0).sum(axis=1)  # (N,) T, or fewer under "graves"
        return data["digits"].sum(axis=1) / np.maximum(numbers, 1)  # digits per number


def correct(logits, y, mask) -> dict:
    """Per-example addition accuracy over the scored steps (mask True).

    `place_correct` (B,) float: share of right places among the P places of every scored
    step, blank-target places included (what `accuracy_place` averages, weighted by
    `place_count` (B,) int64). `sequence` (B,) bool: every place of every scored step right.
    An example with no scored step (T = 1) has place_correct 0 and sequence False.
    """
    right = logits.argmax(dim=-1) == y  # (B, T, P)
    scored = mask.unsqueeze(-1).expand_as(right)  # (B, T, P)
    n_right = (right & scored).sum(dim=(1, 2))  # (B,)
    place_count = scored.sum(dim=(1, 2))  # (B,)
    return {
        "place_correct": n_right.float() / place_count.clamp(min=1).float(),
        "place_count": place_count,
        "sequence": (n_right == place_count) & (place_count > 0),
    }
