"""Halting criteria: ACT (Graves 2016), PonderNet (Banino et al. 2021) and fixed depth.

Every backbone runs the same loop over ponder steps n = 1..M:

    state = criterion.init_state(unit_mask, mode)   # (halting/models/ponder.py: PonderLoop)
    deciding = True
    for n in 1..M:
        s_n = cell(...)                                            # new recurrent state
        deciding = deciding and criterion.keep_going(state, halt_logit(s_n), n, M)
        if not deciding and not (criterion.runs_to_limit and n < M): break
    r = criterion.finish(state, halt_logits, states, M, update)
    # halt_logits (*U, K) and the states s^n (*U, ...) of the K steps run; r["state"] is the
    # mean-field state sum_n p^n s^n, r["p"], r["steps"], r["cost"], ... the halting numbers

The halting *decisions* (N, or PonderNet's sampled step) are taken in the loop on detached
values: they are constants for the gradient. Everything differentiable (p^n, R, the penalty)
is computed once by `finish`, vectorised over the K steps run.

A "unit" is whatever halts on its own: a sample (ACT-RNN) or a position (Universal Transformer);
unit tensors have any shape U, e.g. (B,) or (B, L). Units that are padding (unit_mask False) are
halted from the start, get zero weight, zero steps and zero cost. A halted unit's weight is 0
from then on, so its mean-field state never changes again.

`mode` is "train" (PonderNet: all M steps, weights p_n), "eval" (PonderNet: halt at a sampled or
median step) or "max" (every criterion: run all M steps and read out step M, the max-steps
numbers HRM/TRM report). `keep_going` is asked until it first says no (PonderNet's sampled
halting draws from the RNG only until then); `runs_to_limit` says whether the loop still runs on
to M. For PonderNet it does in every mode: its p, E[n] and KL are always those of the full M-step
distribution, so a unit's numbers do not depend on when the other units of its batch halt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class HaltingOutput:
    """What every model returns, in training and evaluation alike."""

    logits: Tensor  # task shaped: parity (B, 2), addition (B, T, P, 11), maze (B, L, 6)
    p: Tensor  # (B, U, M) halting distribution p^n, sums to 1 over M (ACT: the mean-field
    # weights, detached: the loss reaches them through the state and rho; PonderNet: the full
    # M-step distribution in every mode, also where evaluation halts earlier)
    halt_prob: Tensor  # (B, U, M) h^n (ACT) / lambda_n (PonderNet); 0 beyond the steps run
    steps: Tensor  # (B, U) ponder steps: N (ACT), halting step (PonderNet eval), E[n] (train), M
    # (PonderNet's E[n] in every mode: `expected_steps`)
    remainder: Tensor  # (B, U) R (ACT); 0 for the other criteria
    ponder_cost: Tensor  # () the criterion's penalty, before tau
    unit_mask: Tensor  # (B, U) bool, False for padding units
    step_logits: Tensor | None = None  # (M, *logits.shape) output of each ponder step

    @property
    def expected_steps(self) -> Tensor:
        """E[n] = sum_n n p_n, per unit (B, U) (PonderNet's reported steps)."""
        n = torch.arange(1, self.p.shape[-1] + 1, device=self.p.device, dtype=self.p.dtype)
        return (self.p * n).sum(-1)


def mix(states: list[Tensor], weights: Tensor | None, update: str = "weighted") -> Tensor:
    """Mean-field state of the K steps run (Graves eq. 7): sum_n w_n s^n.

    `states`: the K states s^n (*U, ...); `weights` (*U, K), broadcast over the
    trailing dims; None reads out s^K (fixed depth, max mode). `update="interpolate"` is
    tensor2tensor's "basic" UT ACT, acc_n = w_n s^n + (1 - w_n) acc_{n-1} from acc_0 = 0, i.e.
    the weights w_n prod_{j>n} (1 - w_j).
    """
    if weights is None:
        return states[-1]
    if update == "interpolate":
        kept = torch.cumprod((1.0 - weights).flip(-1), -1).flip(-1)  # prod_{j>=n} (1 - w_j)
        weights = weights * torch.cat([kept[..., 1:], torch.ones_like(kept[..., :1])], -1)
    elif update != "weighted":
        raise ValueError(f"unknown update {update!r}: expected 'weighted' or 'interpolate'")
    stacked = torch.stack(states)  # (K, *U, ...)
    return (_to_steps_first(weights, stacked.dim()) * stacked).sum(0)


def _to_steps_first(weights: Tensor, dim: int) -> Tensor:
    """(*U, K) weights -> (K, *U, 1, ...) with `dim` dims, to broadcast over stacked states."""
    w = weights.movedim(-1, 0)
    return w.reshape(w.shape + (1,) * (dim - w.dim()))


def _one_hot_weights(at: Tensor, K: int, mask: Tensor, dtype) -> Tensor:
    """(*U, K) weights 1 at step `at` (1-based, (*U,)) for real units, 0 elsewhere."""
    n = torch.arange(1, K + 1, device=mask.device)
    return ((n == at.unsqueeze(-1)) & mask.unsqueeze(-1)).to(dtype)


class ACT:
    """Adaptive Computation Time (Graves 2016, section 2).

    N = min{M, first n with sum_{i<=n} h^i >= 1 - eps}; R = 1 - sum_{n<N} h^n;
    p^n = h^n for n < N and p^N = R; ponder cost rho = N + R. N is a constant for the
    gradient; R carries it, so h^N receives none.
    """

    name = "act"
    needs_step_outputs = False
    runs_to_limit = False  # the loop stops when keep_going says so ("max": only at M)

    def __init__(self, eps: float = 0.01):
        self.eps = eps

    def weighs_every_step(self, mode: str) -> bool:
        """Whether `finish` reads every state s^n (else s^K only, and the loop keeps just it)."""
        return mode != "max"

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> dict:
        # padding units start with a full halting sum: halted before step 1
        return {"mode": mode, "mask": unit_mask, "cum": (~unit_mask).float(), "sums": []}

    @torch.no_grad()
    def keep_going(self, state: dict, halt_logit: Tensor, n: int, limit: int) -> bool:
        """Halting decision after ponder step n (1-based): does any unit run step n + 1?

        h^n > 0, so the sum only grows: a unit runs step n + 1 iff sum_{i<=n} h^i < 1 - eps.
        """
        if n >= limit:
            return False
        state["cum"] = state["cum"] + torch.sigmoid(halt_logit)  # sum_{i<=n} h^i, counted once
        state["sums"].append(state["cum"])
        # compared as tensors, in the sums' dtype, exactly as `finish` counts N
        return state["mode"] == "max" or bool(state["cum"].min() < 1.0 - self.eps)

    def finish(
        self, state: dict, halt_logits: Tensor, states, limit: int, update: str = "weighted"
    ) -> dict:
        """From the logits (*U, K) and the states s^n (*U, ...) of the K steps run: the
        mean-field state sum_n p^n s^n, steps N, remainder R = p^N, per-unit cost rho = N + R,
        and p, h padded to (*U, M) (detached: reported only)."""
        K, maskf = halt_logits.shape[-1], state["mask"].to(halt_logits.dtype)
        N = maskf  # (*U,) N = 1 + #{n < K : sum_{i<=n} h^i < 1 - eps}
        if K > 1:
            sums = torch.stack(state["sums"][: K - 1], -1)  # (*U, K - 1)
            N = maskf * (1 + (sums < 1.0 - self.eps).sum(-1))
        if state["mode"] == "max" or update != "weighted":
            p, R, h, before, at_N = act_weights(halt_logits, N, maskf)
            h_run, cost = h.detach() * (before | at_N), N + R
            mean_field = states[-1] if state["mode"] == "max" else mix(states, p, update)
        else:
            mean_field, p, cost, R, h_run = _ACTMeanField.apply(halt_logits, N, maskf, *states)
        steps = maskf * float(limit) if state["mode"] == "max" else N  # max: read out step M
        return {
            "state": mean_field,
            "steps": steps,
            "remainder": R,
            "cost": cost,
            "p": _pad(p.detach(), limit),
            "halt_prob": _pad(h_run, limit),
        }


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


class PonderNet:
    """PonderNet (Banino et al. 2021): p_n = lambda_n prod_{j<n} (1 - lambda_j), the leftover
    mass on step M; penalty KL(p || truncated geometric(lambda_p)) (in this direction).

    Training runs all M steps and weights every step (loss sum_n p_n L(y, y_n) in the system);
    evaluation halts at a sampled step (Bernoulli(lambda_n)) or deterministically at the median,
    and reads out that step's state. The loop still runs to M in evaluation (`runs_to_limit`),
    for lambda_n beyond the halting step: E[n] = sum_{n<=M} n p_n and the penalty
    KL = sum_{n<=M} p_n log(p_n / q_n) are then those of the full distribution, whatever the
    other units of the batch do. (Stopping at the batch's last halting step K, with the
    leftover on step K, made them depend on the batch.)
    """

    name = "pondernet"
    needs_step_outputs = True
    runs_to_limit = True  # p_n needs lambda_n of every step n <= M, in evaluation too

    def __init__(self, lambda_p: float = 0.2, eval_halting: str = "sample"):
        if eval_halting not in ("sample", "median"):
            raise ValueError(f"eval_halting must be 'sample' or 'median', got {eval_halting!r}")
        self.lambda_p = lambda_p
        self.eval_halting = eval_halting

    def weighs_every_step(self, mode: str) -> bool:
        return mode != "max"

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> dict:
        zeros = torch.zeros(unit_mask.shape, device=unit_mask.device)
        return {
            "mode": mode,
            "log_unhalted": zeros,
            "cum": zeros,
            "mask": unit_mask,
            "halted": ~unit_mask,
            "halt_step": zeros,
        }

    @torch.no_grad()
    def keep_going(self, state: dict, halt_logit: Tensor, n: int, limit: int) -> bool:
        """Training and max mode run all M steps; evaluation halts each unit at a sampled step
        (Bernoulli(lambda_n)) or where sum_{i<=n} p_i first reaches 0.5 (median)."""
        if state["mode"] != "eval":
            return n < limit
        lam = torch.sigmoid(halt_logit) if n < limit else torch.ones_like(halt_logit)
        state["cum"] = state["cum"] + torch.exp(state["log_unhalted"]) * lam  # + p_n
        state["log_unhalted"] = state["log_unhalted"] + F.logsigmoid(-halt_logit)
        if self.eval_halting == "sample":
            stop = torch.bernoulli(lam).bool()
        else:
            stop = state["cum"] >= 0.5
        halt_now = ~state["halted"] & (stop | (n >= limit))
        state["halted"] = state["halted"] | halt_now
        state["halt_step"] = torch.where(halt_now, float(n), state["halt_step"])
        return n < limit and not bool(state["halted"].all())

    def finish(
        self, state: dict, halt_logits: Tensor, states, limit: int, update: str = "weighted"
    ) -> dict:
        """p_n in log space (finite gradients when lambda saturates) from the logits of the K
        steps run (*U, K): p_n = lambda_n prod_{j<n} (1 - lambda_j) for n < K, the leftover
        prod_{j<K} (1 - lambda_j) on step K. The loop runs K = M steps in every mode; a caller
        that stops earlier gets the distribution truncated at K. Evaluation reads out the state
        at each unit's halting step; its "steps" are that step, p and the cost the full ones."""
        logit = halt_logits  # (*U, K)
        K, mask = logit.shape[-1], state["mask"]
        last = torch.arange(K, device=logit.device) == K - 1  # lambda = 1 on the last step run
        # In log space: p_n underflows to 0 once lambda saturates, and d(p log p)/dp = log p + 1
        # is then -inf (NaN gradients in the KL); log p_n stays finite for finite logits.
        log_lam = torch.where(last, 0.0, F.logsigmoid(logit))
        log_stay = F.logsigmoid(-logit)  # log(1 - lambda_j)
        log_p = log_lam + torch.cumsum(log_stay, -1) - log_stay  # + sum_{j<n} log(1 - lambda_j)
        p = torch.exp(log_p) * mask.unsqueeze(-1)
        p_full, log_p_full = _pad(p, limit), _pad(log_p, limit)
        kl = kl_to_geometric(p_full, self.lambda_p, log_p=log_p_full) * mask
        lam = torch.sigmoid(logit.detach()) * mask.unsqueeze(-1)
        if K == limit:
            lam[..., -1] = mask.to(lam.dtype)  # lambda_M = 1
        mode, maskf = state["mode"], mask.to(p.dtype)
        if mode == "eval":
            steps = state["halt_step"]
            weights = _one_hot_weights(steps, K, mask, p.dtype)
        elif mode == "max":
            steps, weights = maskf * float(limit), None
        else:
            steps = (p * torch.arange(1, K + 1, device=p.device, dtype=p.dtype)).sum(-1)
            weights = p
        return {
            "state": mix(states, weights, update),
            "steps": steps,
            "remainder": torch.zeros_like(maskf),
            "cost": kl,
            "p": p_full,
            "halt_prob": _pad(lam, limit),
        }


class FixedDepth:
    """Exactly K = M steps, no halting unit, no penalty: the baseline every paper compares with."""

    name = "fixed"
    needs_step_outputs = False
    runs_to_limit = False  # keep_going already runs every step to M

    def weighs_every_step(self, mode: str) -> bool:
        return False

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> dict:
        return {"mask": unit_mask}

    def keep_going(self, state: dict, halt_logit: Tensor | None, n: int, limit: int) -> bool:
        return n < limit

    def finish(
        self, state: dict, halt_logits: Tensor | None, states, limit: int, update: str = "weighted"
    ) -> dict:
        """The output is s^M; p is one-hot at M."""
        mask = state["mask"].float()
        p = torch.zeros(mask.shape + (limit,), device=mask.device)
        p[..., limit - 1] = mask
        return {
            "state": states[-1],
            "steps": mask * limit,
            "remainder": torch.zeros_like(mask),
            "cost": torch.zeros_like(mask),
            "p": p,
            "halt_prob": torch.zeros_like(p),
        }


def truncated_geometric(lambda_p: float, limit: int, device=None) -> Tensor:
    """Prior q_n = lambda_p (1 - lambda_p)^(n-1) on n = 1..M, renormalised to sum to 1."""
    n = torch.arange(limit, device=device, dtype=torch.float32)
    q = lambda_p * (1.0 - lambda_p) ** n
    return q / q.sum()


def kl_to_geometric(p: Tensor, lambda_p: float, log_p: Tensor | None = None) -> Tensor:
    """KL(p || q) = sum_n p_n (log p_n - log q_n) over the last dim, q the truncated geometric.

    This is PonderNet's regulariser in the paper's direction (torch's `kl_div(input, target)`
    computes KL(target || exp(input)), the mistake of both public implementations). Pass
    `log_p` (finite where p underflows) to keep the gradient finite.
    """
    log_q = torch.log(truncated_geometric(lambda_p, p.shape[-1], device=p.device)).to(p.dtype)
    if log_p is None:
        return (torch.xlogy(p, p) - p * log_q).sum(-1)
    return (p * (log_p - log_q)).sum(-1)


def _pad(values: Tensor, limit: int) -> Tensor:
    """(*U, K) per-step values zero-padded to (*U, M) beyond the K steps run."""
    K = values.shape[-1]
    return values if K == limit else F.pad(values, (0, limit - K))


def build_criterion(
    name: str, *, act_eps: float = 0.01, lambda_p: float = 0.2, pondernet_eval: str = "sample"
):
    """The criterion object for a config's `criterion` name."""
    if name == "act":
        return ACT(eps=act_eps)
    if name == "pondernet":
        return PonderNet(lambda_p=lambda_p, eval_halting=pondernet_eval)
    if name == "fixed":
        return FixedDepth()
    raise ValueError(f"unknown halting criterion {name!r}: expected act, pondernet or fixed")
