"""Fixed depth: exactly M steps, the baseline every paper compares with (criterion `fixed`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from halting.criteria.act import ACT
from halting.criteria.base import HaltingOutput, HaltingResult


@dataclass
class FixedState:
    """Fixed depth's loop state: only which units are real."""

    mask: Tensor  # (*U,) bool, False for padding units


class FixedDepth:
    """Exactly K = M steps, no halting unit, no penalty: the baseline every paper compares with."""

    name = "fixed"
    display_name = "fixed"
    panel_title = "fixed depth"
    penalty_symbol = None
    halt_prob_symbol = "h_n"  # all 0: no halting unit
    halt_prob_caption = ACT.halt_prob_caption  # the viewer's words for the same chart
    fields = ()
    has_halting_unit = False  # no halting unit, no penalty: tau is 0
    reads_update_rule = False
    needs_step_outputs = False
    runs_to_limit = False  # keep_going already runs every step to M
    example_columns = ()
    mode_matters = False  # the learned and the max-steps forward are the same M steps

    @classmethod
    def from_config(cls, config) -> FixedDepth:
        return cls()

    def weighs_every_step(self, mode: str) -> bool:
        return False

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> FixedState:
        return FixedState(mask=unit_mask)

    def keep_going(self, state: FixedState, halt_logit: Tensor | None, n: int, limit: int) -> bool:
        return n < limit

    def finish(
        self,
        state: FixedState,
        halt_logits: Tensor | None,
        states,
        limit: int,
        update: str = "weighted",
    ) -> HaltingResult:
        """The output is s^M; p is one-hot at M."""
        mask = state.mask.float()
        p = torch.zeros(mask.shape + (limit,), device=mask.device)
        p[..., limit - 1] = mask
        return HaltingResult(
            state=states[-1],
            steps=mask * limit,
            remainder=torch.zeros_like(mask),
            cost=torch.zeros_like(mask),
            p=p,
            halt_prob=torch.zeros_like(p),
        )

    def eval_columns(self, out: HaltingOutput) -> dict[str, Tensor]:
        return {}

    def eval_summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        return {}
