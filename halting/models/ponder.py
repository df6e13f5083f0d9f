"""The ponder loop's bookkeeping, shared by both backbones, and the halting unit
h^n = sigmoid(W_h x^n + b_h) over its K steps.

A backbone computes the logit of every step inside its loop, without gradient, to take the
halting decision. `step_logits` then turns those values into one differentiable (*U, K)
tensor without computing the unit again: its backward is the Linear's, summed over steps.
That is one autograd node per loop instead of K (on a CPU the per-node cost of K small
Linear layers is a large part of ACT's overhead over fixed depth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halting.criteria import Criterion, HaltingResult


class PonderLoop:
    """One ponder loop: the states s^n, the halting unit's inputs and decision values, and the
    criterion's state. A backbone calls `step` after each new state and stops when it returns
    False; `finish` gives the criterion's result (its `state` is the mean-field state).

    The criterion's `keep_going` is asked until it first answers no (every unit has halted); the
    loop then still runs to M where the criterion `runs_to_limit` (PonderNet: its distribution
    p_n needs lambda_n of all M steps, evaluation included).
    """

    def __init__(
        self, criterion: Criterion, unit: nn.Linear | None, unit_mask: Tensor, mode: str, limit: int
    ):
        self.criterion, self.unit, self.limit = criterion, unit, limit
        self.halting = criterion.init_state(unit_mask, mode)
        self.keep_all = criterion.weighs_every_step(mode)  # else only s^K is read out
        self.to_limit = criterion.runs_to_limit
        self.deciding = True  # until keep_going first says that every unit has halted
        self.states: list[Tensor] = []
        self.inputs: list[Tensor] = []
        self.values: list[Tensor] = []

    def step(self, n: int, state: Tensor, halt_input: Tensor | None) -> bool:
        """Record ponder step n (1-based); does any unit run step n + 1?"""
        if not self.keep_all:
            self.states.clear()
        self.states.append(state)
        if self.unit is not None:
            self.inputs.append(halt_input)
            self.values.append(decision_logit(self.unit, halt_input))
        if self.deciding:
            value = self.values[-1] if self.values else None
            self.deciding = self.criterion.keep_going(self.halting, value, n, self.limit)
        return self.deciding or (self.to_limit and n < self.limit)

    def finish(self, update: str = "weighted") -> HaltingResult:
        logits = step_logits(self.values, self.inputs, self.unit) if self.values else None
        return self.criterion.finish(self.halting, logits, self.states, self.limit, update)


@torch.no_grad()
def decision_logit(unit: nn.Linear, x: Tensor) -> Tensor:
    """unit(x) (*U,) without gradient: the value the loop's halting decision reads."""
    return F.linear(x, unit.weight, unit.bias).squeeze(-1)


def step_logits(values: list[Tensor], inputs: list[Tensor], unit: nn.Linear) -> Tensor:
    """Differentiable halting logits (*U, K) of the K steps run.

    `values[n]` (*U,) must be `unit(inputs[n]).squeeze(-1)`, computed by the loop without
    gradient; `inputs[n]` (*U, H) are the halting unit's inputs (they keep their graphs).
    The logits have W's dtype (float32) also under autocast (bf16-mixed): R = 1 - sum h and
    N + R in bf16 would be rounded to 1/16 at N = 16.
    """
    logits = torch.stack(values, -1).to(unit.weight.dtype)
    return _StepLinear.apply(logits, unit.weight, unit.bias, *inputs)


class _StepLinear(torch.autograd.Function):
    """logit^n = W x^n + b for n = 1..K, forward values given; W (1, H), b (1,), x^n (*U, H).

    Backward: g_x^n = g^n W, g_W = sum_n (g^n)^T x^n, g_b = sum_n sum_U g^n.
    """

    @staticmethod
    def forward(ctx, values: Tensor, weight: Tensor, bias: Tensor, *inputs: Tensor) -> Tensor:
        ctx.save_for_backward(weight, *inputs)
        return values.clone()  # (*U, K); an output distinct from the input `values`

    @staticmethod
    def backward(ctx, g: Tensor):
        weight, *inputs = ctx.saved_tensors
        g = g.to(weight.dtype)  # under autocast x^n may be bf16, W and the logits float32
        g_in, g_w = [], torch.zeros_like(weight)  # (1, H)
        for n, x in enumerate(inputs):
            g_n = g[..., n : n + 1]  # (*U, 1)
            g_in.append(
                (g_n * weight[0]).to(x.dtype) if ctx.needs_input_grad[3 + n] else None
            )  # (*U, H)
            g_w.addmm_(g_n.reshape(1, -1), x.reshape(-1, x.shape[-1]).to(weight.dtype))
        return (None, g_w, g.sum().reshape(1), *g_in)
