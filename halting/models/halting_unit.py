"""The halting unit h^n = sigmoid(W_h x^n + b_h) over the K ponder steps of a loop.

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


@torch.no_grad()
def decision_logit(unit: nn.Linear, x: Tensor) -> Tensor:
    """unit(x) (*U,) without gradient: the value the loop's halting decision reads."""
    return F.linear(x, unit.weight, unit.bias).squeeze(-1)


def step_logits(values: list[Tensor], inputs: list[Tensor], unit: nn.Linear) -> Tensor:
    """Differentiable halting logits (*U, K) of the K steps run.

    `values[n]` (*U,) must be `unit(inputs[n]).squeeze(-1)`, computed by the loop without
    gradient; `inputs[n]` (*U, H) are the halting unit's inputs (they keep their graphs).
    """
    return _StepLinear.apply(torch.stack(values, -1), unit.weight, unit.bias, *inputs)


class _StepLinear(torch.autograd.Function):
    """logit^n = W x^n + b for n = 1..K, forward values given; W (1, H), b (1,), x^n (*U, H).

    Backward: g_x^n = g^n W, g_W = sum_n (g^n)^T x^n, g_b = sum_n sum_U g^n.
    """

    @staticmethod
    def forward(ctx, values: Tensor, weight: Tensor, bias: Tensor, *inputs: Tensor) -> Tensor:
        ctx.save_for_backward(weight, *inputs)
        return values.clone()  # (*U, K); a new tensor, so the caller's `values` stay detached

    @staticmethod
    def backward(ctx, g: Tensor):
        weight, *inputs = ctx.saved_tensors
        g_in, g_w = [], torch.zeros_like(weight)  # (1, H)
        for n, x in enumerate(inputs):
            g_n = g[..., n : n + 1]  # (*U, 1)
            g_in.append(g_n * weight[0] if ctx.needs_input_grad[3 + n] else None)  # (*U, H)
            g_w.addmm_(g_n.reshape(1, -1), x.reshape(-1, x.shape[-1]))  # += (g^n)^T x^n
        return (None, g_w, g.sum().reshape(1), *g_in)
