"""Halting criteria: ACT (Graves 2016), PonderNet (Banino et al. 2021) and fixed depth.

Every backbone runs the same loop over ponder steps n = 1..M:

    state = criterion.init_state(unit_mask, mode)
    for n in 1..M:
        s_n = cell(...)                                  # new recurrent state
        w_n, state = criterion.step(state, halt_logit(s_n), n, M)
        acc = accumulate(acc, s_n, w_n, update)          # mean-field state / output
        if not criterion.running(state).any(): break
    steps, remainder, cost, p, halt_prob = criterion.finish(state)

A "unit" is whatever halts on its own: a sample (ACT-RNN) or a position (Universal Transformer);
unit tensors have any shape U, e.g. (B,) or (B, L). Units that are padding (unit_mask False) are
halted from the start, get zero weight, zero steps and zero cost. A halted unit's weight is 0
from then on, so its accumulated state never changes again.

`mode` is "train" (PonderNet: all M steps, weights p_n), "eval" (PonderNet: halt at a sampled or
median step) or "max" (every criterion: run all M steps and read out step M, the max-steps
numbers HRM/TRM report).
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
    p: Tensor  # (B, U, M) halting distribution p^n (ACT: mean-field weights), sums to 1 over M
    halt_prob: Tensor  # (B, U, M) h^n (ACT) / lambda_n (PonderNet); 0 beyond the steps run
    steps: Tensor  # (B, U) ponder steps: N (ACT), halting step (PonderNet eval), E[n] (train), M
    remainder: Tensor  # (B, U) R (ACT); 0 for the other criteria
    ponder_cost: Tensor  # () the criterion's penalty, before tau
    unit_mask: Tensor  # (B, U) bool, False for padding units
    step_logits: Tensor | None = None  # (M, *logits.shape) output of each ponder step

    @property
    def expected_steps(self) -> Tensor:
        """E[n] = sum_n n p_n, per unit (B, U) (PonderNet's reported steps)."""
        n = torch.arange(1, self.p.shape[-1] + 1, device=self.p.device, dtype=self.p.dtype)
        return (self.p * n).sum(-1)


def accumulate(acc: Tensor | None, s_n: Tensor, w_n: Tensor, update: str = "weighted") -> Tensor:
    """Mean-field update of the accumulated state (Graves eq. 7): acc + w_n s_n.

    `update="interpolate"` is tensor2tensor's "basic" UT ACT: w_n s_n + (1 - w_n) acc.
    `w_n` has the unit shape U; `s_n` is (*U, ...) and broadcasts over the trailing dims.
    """
    w = w_n.reshape(w_n.shape + (1,) * (s_n.dim() - w_n.dim()))
    if acc is None:
        acc = torch.zeros_like(s_n)
    if update == "weighted":
        return acc + w * s_n
    if update == "interpolate":
        return w * s_n + (1.0 - w) * acc
    raise ValueError(f"unknown update {update!r}: expected 'weighted' or 'interpolate'")


class ACT:
    """Adaptive Computation Time (Graves 2016, section 2).

    N = min{M, first n with sum_{i<=n} h^i >= 1 - eps}; R = 1 - sum_{n<N} h^n;
    p^n = h^n for n < N and p^N = R; ponder cost rho = N + R. N is a constant for the
    gradient; R carries it, so h^N receives none.
    """

    name = "act"
    needs_step_outputs = False

    def __init__(self, eps: float = 0.01):
        self.eps = eps

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> dict:
        zeros = torch.zeros(unit_mask.shape, device=unit_mask.device)
        return {"mode": mode, "cum": zeros, "running": unit_mask.clone(), "mask": unit_mask,
                "ran": [], "p": [], "h": []}

    def step(self, state: dict, halt_logit: Tensor, n: int, limit: int) -> tuple[Tensor, dict]:
        """Weight p^n of ponder step n (1-based) for every unit; `halt_logit` has shape U."""
        h = torch.sigmoid(halt_logit)  # (U,) h^n, from the updated state s^n
        running, cum = state["running"], state["cum"]  # cum = sum_{i<n} h^i
        new_cum = cum + h
        reach = torch.ones_like(running) if n >= limit else new_cum >= 1.0 - self.eps
        halt_now = running & reach  # the sum including h^n is counted once, here
        # p^n = R = 1 - sum_{n<N} h^n at the halting step, h^n before it, 0 after
        p_n = torch.where(halt_now, 1.0 - cum, h * running)
        state["cum"] = torch.where(reach, cum, new_cum)
        state["running"] = running ^ halt_now  # halt_now is a subset of running
        state["ran"].append(running)
        state["p"].append(p_n)
        state["h"].append(h)
        if state["mode"] == "max":  # read out step M whatever the halting unit says
            return state["mask"].to(h.dtype) * (1.0 if n >= limit else 0.0), state
        return p_n, state

    def running(self, state: dict) -> Tensor:
        if state["mode"] == "max":
            return state["mask"]  # keep going to M
        return state["running"]

    def finish(self, state: dict, limit: int) -> dict:
        """steps N, remainder R = p^N, per-unit cost rho = N + R, p and h stacked to (*U, M)."""
        p = _stack(state["p"], limit)
        N = torch.stack(state["ran"], -1).sum(-1).to(p.dtype)  # (U,) steps the learned halting took
        n = torch.arange(1, limit + 1, device=p.device)
        h = _stack(state["h"], limit) * (n <= N.unsqueeze(-1))  # h^n of the steps taken
        remainder = p.gather(-1, (N.long() - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
        remainder = remainder * state["mask"]
        steps = N
        if state["mode"] == "max":  # N and R of the learned halting are still reported
            steps = state["mask"].to(p.dtype) * limit
        return {"steps": steps, "remainder": remainder, "cost": N + remainder, "p": p,
                "halt_prob": h}


class PonderNet:
    """PonderNet (Banino et al. 2021): p_n = lambda_n prod_{j<n} (1 - lambda_j), the leftover
    mass on step M; penalty KL(p || truncated geometric(lambda_p)) (in this direction).

    Training runs all M steps and weights every step (loss sum_n p_n L(y, y_n) in the system);
    evaluation halts at a sampled step (Bernoulli(lambda_n)) or deterministically at the median.
    """

    name = "pondernet"
    needs_step_outputs = True

    def __init__(self, lambda_p: float = 0.2, eval_halting: str = "sample"):
        if eval_halting not in ("sample", "median"):
            raise ValueError(f"eval_halting must be 'sample' or 'median', got {eval_halting!r}")
        self.lambda_p = lambda_p
        self.eval_halting = eval_halting

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> dict:
        zeros = torch.zeros(unit_mask.shape, device=unit_mask.device)
        return {"mode": mode, "log_unhalted": zeros, "cum": zeros, "mask": unit_mask,
                "halted": ~unit_mask, "halt_step": zeros, "p": [], "log_p": [], "lam": []}

    def step(self, state: dict, halt_logit: Tensor, n: int, limit: int) -> tuple[Tensor, dict]:
        # In log space: p_n underflows to 0 once lambda saturates, and d(p log p)/dp = log p + 1
        # is then -inf (NaN gradients in the KL); log p_n stays finite for finite logits.
        if n >= limit:  # leftover mass on step M: lambda_M = 1
            log_lam, lam = torch.zeros_like(halt_logit), torch.ones_like(halt_logit)
        else:
            log_lam, lam = F.logsigmoid(halt_logit), torch.sigmoid(halt_logit)  # (U,) lambda_n
        log_p = state["log_unhalted"] + log_lam  # log lambda_n + sum_{j<n} log(1 - lambda_j)
        p_n = torch.exp(log_p) * state["mask"]
        if n < limit:
            state["log_unhalted"] = state["log_unhalted"] + F.logsigmoid(-halt_logit)
        state["cum"] = state["cum"] + p_n
        state["p"].append(p_n)
        state["log_p"].append(log_p)
        state["lam"].append(lam * state["mask"])
        mode = state["mode"]
        if mode == "train":
            return p_n, state
        if mode == "max":
            return torch.full_like(lam, 1.0 if n >= limit else 0.0) * state["mask"], state
        if self.eval_halting == "sample":
            stop = torch.bernoulli(lam.detach()).bool()
        else:
            stop = state["cum"] >= 0.5
        halt_now = ~state["halted"] & (stop | (n >= limit))
        state["halted"] = state["halted"] | halt_now
        state["halt_step"] = torch.where(halt_now, torch.full_like(lam, float(n)),
                                         state["halt_step"])
        return halt_now.to(lam.dtype), state

    def running(self, state: dict) -> Tensor:
        return ~state["halted"] if state["mode"] == "eval" else state["mask"]

    def finish(self, state: dict, limit: int) -> dict:
        p, log_p = _stack(state["p"], limit), _stack(state["log_p"], limit)
        n_run = len(state["p"])
        mask = state["mask"].to(p.dtype)
        if n_run < limit:  # eval stopped early: the unseen mass sits on the last step run
            p[..., n_run - 1] += torch.exp(state["log_unhalted"]) * mask
            log_p[..., n_run - 1] = torch.log(p[..., n_run - 1].clamp_min(1e-30))
        kl = kl_to_geometric(p, self.lambda_p, log_p=log_p) * mask
        n = torch.arange(1, limit + 1, device=p.device, dtype=p.dtype)
        if state["mode"] == "eval":
            steps = state["halt_step"]
        elif state["mode"] == "max":
            steps = torch.full_like(mask, float(limit)) * mask
        else:
            steps = (p * n).sum(-1)
        return {"steps": steps, "remainder": torch.zeros_like(steps), "cost": kl, "p": p,
                "halt_prob": _stack(state["lam"], limit)}


class FixedDepth:
    """Exactly K = M steps, no halting unit, no penalty: the baseline every paper compares with."""

    name = "fixed"
    needs_step_outputs = False

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> dict:
        return {"mask": unit_mask, "n": 0}

    def step(self, state: dict, halt_logit: Tensor | None, n: int, limit: int):
        state["n"] = n
        w = torch.full(state["mask"].shape, 1.0 if n >= limit else 0.0,
                       device=state["mask"].device)
        return w * state["mask"], state

    def running(self, state: dict) -> Tensor:
        return state["mask"]

    def finish(self, state: dict, limit: int) -> dict:
        mask = state["mask"].float()
        p = torch.zeros(mask.shape + (limit,), device=mask.device)
        p[..., limit - 1] = mask
        return {"steps": mask * limit, "remainder": torch.zeros_like(mask),
                "cost": torch.zeros_like(mask), "p": p, "halt_prob": torch.zeros_like(p)}


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


def _stack(values: list[Tensor], limit: int) -> Tensor:
    """Stack per-step unit tensors to (*U, M), zero-padded beyond the steps run."""
    out = torch.stack(values, dim=-1)
    if out.shape[-1] < limit:
        out = torch.nn.functional.pad(out, (0, limit - out.shape[-1]))
    return out


def build_criterion(name: str, *, act_eps: float = 0.01, lambda_p: float = 0.2,
                    pondernet_eval: str = "sample"):
    """The criterion object for a config's `criterion` name."""
    if name == "act":
        return ACT(eps=act_eps)
    if name == "pondernet":
        return PonderNet(lambda_p=lambda_p, eval_halting=pondernet_eval)
    if name == "fixed":
        return FixedDepth()
    raise ValueError(f"unknown halting criterion {name!r}: expected act, pondernet or fixed")
