"""Worked example of a new halting criterion (docs/extending.md): soft halting with an
expected-steps penalty.

p_n = lambda_n prod_{j<n} (1 - lambda_j), the leftover on step M (PonderNet's distribution);
the output is the mean field sum_n p_n s^n in training and evaluation alike (as ACT's, but over
all M steps, so every p_n gets a gradient through the state), and the penalty is the expected
number of steps E[n] = sum_n n p_n, weighted by tau (`time_penalty` / `ut_act_loss_weight`).
Registered by one line in halting/criteria/__init__.py:

    CRITERIA = {c.name: c for c in (ACT, PonderNet, FixedDepth, ExpectedSteps)}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from halting.criteria.base import HaltingOutput, HaltingResult, mix, pad_steps


@dataclass
class ExpectedStepsState:
    mode: str  # train | eval | max
    mask: Tensor  # (*U,) bool, False for padding units


class ExpectedSteps:
    name = "expected_steps"
    display_name = "E[n]"
    panel_title = "expected steps"
    penalty_symbol = "τ"
    halt_prob_symbol = "λ_n"
    halt_prob_caption = "p_n the halting distribution, λ_n the halting probability"
    fields = ()  # no settings of its own
    has_halting_unit = True
    reads_update_rule = True  # the UT's ut_act_update mixes its states
    needs_step_outputs = False
    runs_to_limit = True  # every p_n needs lambda_n of all M steps
    example_columns = ()
    mode_matters = True

    @classmethod
    def from_config(cls, config) -> ExpectedSteps:
        return cls()

    def weighs_every_step(self, mode: str) -> bool:
        return mode != "max"

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> ExpectedStepsState:
        return ExpectedStepsState(mode=mode, mask=unit_mask)

    def keep_going(self, state, halt_logit, n: int, limit: int) -> bool:
        return n < limit

    def finish(self, state, halt_logits, states, limit: int, update: str = "weighted"):
        """From the logits (*U, K = M): p, the mean-field state, E[n] as steps and cost."""
        maskf = state.mask.to(halt_logits.dtype)  # (*U,)
        lam = torch.sigmoid(halt_logits)  # (*U, K)
        lam = torch.cat([lam[..., :-1], torch.ones_like(lam[..., -1:])], -1)  # lambda_M = 1
        stay = torch.cumprod(1.0 - lam, -1)  # prod_{j<=n} (1 - lambda_j)
        before = torch.cat([torch.ones_like(stay[..., :1]), stay[..., :-1]], -1)
        p = lam * before * maskf.unsqueeze(-1)  # (*U, K)
        n = torch.arange(1, p.shape[-1] + 1, device=p.device, dtype=p.dtype)
        expected = (p * n).sum(-1)  # (*U,) E[n]
        if state.mode == "max":
            read_out, steps = states[-1], maskf * float(limit)
        else:
            read_out, steps = mix(states, p, update), expected
        return HaltingResult(
            state=read_out,
            steps=steps,
            remainder=torch.zeros_like(maskf),
            cost=expected,
            p=pad_steps(p.detach(), limit),
            halt_prob=pad_steps((lam * maskf.unsqueeze(-1)).detach(), limit),
        )

    def eval_columns(self, out: HaltingOutput) -> dict[str, Tensor]:
        return {}

    def eval_summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        return {}
