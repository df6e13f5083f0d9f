"""Adaptive Computation Time (Graves 2016, section 2): the halting criterion `act`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from halting.criteria.base import HaltingOutput, HaltingResult, mix, pad_steps


@dataclass
class ACTState:
    """ACT's loop state: the running halting sums sum_{i<=n} h^i of every unit (*U,)."""

    mode: str  # train | eval | max
    mask: Tensor  # (*U,) bool, False for padding units
    cum: Tensor  # (*U,) sum_{i<=n} h^i so far (padding: 1, halted before step 1)
    sums: list[Tensor] = field(default_factory=list)  # cum after each step n


class ACT:
    """Adaptive Computation Time (Graves 2016, section 2).

    N = min{M, first n with sum_{i<=n} h^i >= 1 - eps}; R = 1 - sum_{n<N} h^n;
    p^n = h^n for n < N and p^N = R; ponder cost rho = N + R. N is a constant for the
    gradient; R carries it, so h^N receives none.
    """

    name = "act"
    display_name = "ACT"
    panel_title = "ACT"
    penalty_symbol = "τ"
    halt_prob_symbol = "h_n"
    halt_prob_caption = (
        "p_n the halting distribution (weight of step n's output), h_n the halting probability"
    )
    fields = ("act_eps",)
    has_halting_unit = True
    reads_update_rule = True
    needs_step_outputs = False
    runs_to_limit = False  # the loop stops when keep_going says so ("max": only at M)
    example_columns = ()
    mode_matters = True

    def __init__(self, eps: float = 0.01):
        self.eps = eps

    @classmethod
    def from_config(cls, config) -> ACT:
        return cls(eps=config.act_eps)

    def weighs_every_step(self, mode: str) -> bool:
        """Whether `finish` reads every state s^n (else s^K only, and the loop keeps just it)."""
        return mode != "max"

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> ACTState:
        # padding units start with a full halting sum: halted before step 1
        return ACTState(mode=mode, mask=unit_mask, cum=(~unit_mask).float())

    @torch.no_grad()
    def keep_going(self, state: ACTState, halt_logit: Tensor, n: int, limit: int) -> bool:
        """Halting decision after ponder step n (1-based): does any unit run step n + 1?

        h^n > 0, so the sum only grows: a unit runs step n + 1 iff sum_{i<=n} h^i < 1 - eps.
        """
        if n >= limit:
            return False
        state.cum = state.cum + torch.sigmoid(halt_logit)  # sum_{i<=n} h^i, counted once
        state.sums.append(state.cum)
        # compared as tensors, in the sums' dtype, exactly as `finish` counts N
        return state.mode == "max" or bool(state.cum.min() < 1.0 - self.eps)

    def finish(
        self, state: ACTState, halt_logits: Tensor, states, limit: int, update: str = "weighted"
    ) -> HaltingResult:
        """From the logits (*U, K) and the states s^n (*U, ...) of the K steps run: the
        mean-field state sum_n p^n s^n, steps N, remainder R = p^N, per-unit cost rho = N + R,
        and p, h padded to (*U, M) (detached: reported only)."""
        K, maskf = halt_logits.shape[-1], state.mask.to(halt_logits.dtype)
        N = maskf  # (*U,) N = 1 + #{n < K : sum_{i<=n} h^i < 1 - eps}
        if K > 1:
            sums = torch.stack(state.sums[: K - 1], -1)  # (*U, K - 1)
            N = maskf * (1 + (sums < 1.0 - self.eps).sum(-1))
        if state.mode == "max" or update != "weighted":
            p, R, h, before, at_N = act_weights(halt_logits, N, maskf)
            h_run, cost = h.detach() * (before | at_N), N + R
            mean_field = states[-1] if state.mode == "max" else mix(states, p, update)
        else:
            mean_field, p, cost, R, h_run = _ACTMeanField.apply(halt_logits, N, maskf, *states)
        steps = maskf * float(limit) if state.mode == "max" else N  # max: read out step M
        return HaltingResult(
            state=mean_field,
            steps=steps,
            remainder=R,
            cost=cost,
            p=pad_steps(p.detach(), limit),
            halt_prob=pad_steps(h_run, limit),
        )

    def eval_columns(self, out: HaltingOutput) -> dict[str, Tensor]:
        return {}

    def eval_summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        return {}


def act_weights(halt_logits: Tensor, N: Tensor, maskf: Tensor):
    """ACT's weights from logits (*U, K) and steps N (*U,): h^n = sigmoid(logit),
    R = m (1 - sum_{n<N} h^n), p^n = h^n [n < N] + R [n = N] (m = 0 for padding units).
    Differentiable through R and h^n, n < N. Returns p, R, h and the masks [n < N], [n = N]."""
    h = torch.sigmoid(halt_logits)  # (*U, K) h^n
    n = torch.arange(1, h.shape[-1] + 1, device=h.device)
    before, at_N = n < N.unsqueeze(-1), n == N.unsqueeze(-1)
    p_before = torch.where(before, h, 0.0)
    R = (1.0 - p_before.sum(-1)) * maskf  # (*U,); h^N gets no gradient
    p = torch.where(at_N, R.unsqueeze(-1), p_before)
    return p, R, h, before, at_N


class _ACTMeanField(torch.autograd.Function):
    """`act_weights`, the mean-field state s = sum_n p^n s^n and the cost rho = N + R as one
    autograd node (the train step's hot path: on a CPU, ~15 small autograd nodes cost more
    than the maths). Returns s, p, rho and, without gradient, R and h^n for n <= N.

    Backward, N a constant: g_s^n = p^n g_s; g_p^n += <g_s, s^n>; g_R = g_rho; then
    dL/dh^n = [n < N] (g_p^n - m (g_p^N + g_R)) and dL/dlogit^n = dL/dh^n h^n (1 - h^n).
    tests/test_criteria.py checks it against `act_weights` + `mix` under autograd."""

    @staticmethod
    def forward(ctx, halt_logits: Tensor, N: Tensor, maskf: Tensor, *states: Tensor):
        p, R, h, before, at_N = act_weights(halt_logits, N, maskf)  # (*U, K), no grad here
        mean_field = torch.zeros_like(states[0])
        for k, s_k in enumerate(states):  # sum_n p^n s^n without a (K, *U, ...) temporary
            mean_field.addcmul_(_to_trailing(p[..., k], s_k.dim()), s_k)
        # save the output p itself, never a view of it: a saved view of an output keeps
        # the output, and so this node and the whole graph, alive forever (a C++ cycle)
        ctx.save_for_backward(h, before, at_N, maskf, p, *states)
        h_run = h * (before | at_N)
        ctx.mark_non_differentiable(R, h_run)
        return mean_field, p, N + R, R, h_run

    @staticmethod
    def backward(ctx, g_state: Tensor, g_p: Tensor, g_cost: Tensor, _g_R, _g_h):
        h, before, at_N, maskf, p, *states = ctx.saved_tensors
        g_states, inner = [], []
        for k, s_k in enumerate(states):
            g_states.append(_to_trailing(p[..., k], s_k.dim()) * g_state)  # g_s^n = p^n g_s
            inner.append((s_k * g_state).flatten(p.dim() - 1).sum(-1))  # <g_s, s^n>, (*U,)
        g_p = g_p + torch.stack(inner, -1)  # (*U, K)
        g_last = ((g_p * at_N).sum(-1) + g_cost) * maskf  # (*U,) g_p^N + g_R
        g_h = torch.where(before, g_p - g_last.unsqueeze(-1), 0.0)
        return (g_h * h * (1.0 - h), None, None, *g_states)


def _to_trailing(w: Tensor, dim: int) -> Tensor:
    """(*U,) -> (*U, 1, ...) with `dim` dims, to broadcast over a state (*U, ...)."""
    return w.reshape(w.shape + (1,) * (dim - w.dim()))
