"""Halting criteria: ACT (Graves 2016), PonderNet (Banino et al. 2021) and fixed depth.

Each criterion is one class behind the `Criterion` interface (halting/criteria/base.py), in its
own module, registered in `CRITERIA` below; nothing outside this package compares a criterion's
name. Adding one: docs/extending.md.
"""

from __future__ import annotations

from typing import Any

from halting.criteria.act import ACT, ACTState, act_weights
from halting.criteria.base import Criterion, HaltingOutput, HaltingResult, mix, pad_steps
from halting.criteria.fixed import FixedDepth, FixedState
from halting.criteria.pondernet import (
    PonderNet,
    PonderNetState,
    kl_to_geometric,
    truncated_geometric,
)

CRITERIA: dict[str, type[Criterion]] = {c.name: c for c in (ACT, PonderNet, FixedDepth)}


def criterion_class(name: str) -> type[Criterion]:
    """The registered criterion class of a config's `criterion` name."""
    try:
        return CRITERIA[name]
    except KeyError:
        raise ValueError(
            f"unknown halting criterion {name!r}: expected {', '.join(CRITERIA)}"
        ) from None


def build_criterion(config: Any) -> Criterion:
    """The criterion of an ExperimentConfig (its `criterion`, with its settings)."""
    return criterion_class(config.criterion).from_config(config)


__all__ = [
    "ACT",
    "CRITERIA",
    "ACTState",
    "Criterion",
    "FixedDepth",
    "FixedState",
    "HaltingOutput",
    "HaltingResult",
    "PonderNet",
    "PonderNetState",
    "act_weights",
    "build_criterion",
    "criterion_class",
    "kl_to_geometric",
    "mix",
    "pad_steps",
    "truncated_geometric",
]
