"""PonderNet (Banino et al. 2021): the halting criterion `pondernet`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from halting.criteria.base import HaltingOutput, HaltingResult, mix, pad_steps


@dataclass
class PonderNetState:
    """PonderNet's loop state in evaluation (sampled or median halting), per unit (*U,)."""

    mode: str  # train | eval | max
    mask: Tensor  # bool, False for padding units
    log_unhalted: Tensor  # sum_{j<=n} log(1 - lambda_j)
    cum: Tensor  # sum_{i<=n} p_i
    halted: Tensor  # bool: halted at or before step n (padding: from the start)
    halt_step: Tensor  # the step a unit halted at (0 until then)


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
    display_name = "PonderNet"
    panel_title = "PonderNet"
    penalty_symbol = "β"  # the config's time_penalty / ut_act_loss_weight weighs the KL
    halt_prob_symbol = "λ_n"
    halt_prob_caption = (
        "p_n the halting distribution, λ_n PonderNet's conditional halting probability"
    )
    fields = ("lambda_p", "pondernet_eval")
    has_halting_unit = True
    reads_update_rule = False  # its loss and halting never read the mixed state
    needs_step_outputs = True  # the loss sum_n p_n L(y, y_n) needs every step's output
    runs_to_limit = True  # p_n needs lambda_n of every step n <= M, in evaluation too
    example_columns = ("expected_steps", "kl")  # `eval_columns`, per example
    mode_matters = True

    def __init__(self, lambda_p: float = 0.2, eval_halting: str = "sample"):
        if eval_halting not in ("sample", "median"):
            raise ValueError(f"eval_halting must be 'sample' or 'median', got {eval_halting!r}")
        self.lambda_p = lambda_p
        self.eval_halting = eval_halting

    @classmethod
    def from_config(cls, config) -> PonderNet:
        return cls(lambda_p=config.lambda_p, eval_halting=config.pondernet_eval)

    def weighs_every_step(self, mode: str) -> bool:
        return mode != "max"

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> PonderNetState:
        zeros = torch.zeros(unit_mask.shape, device=unit_mask.device)
        return PonderNetState(
            mode=mode,
            mask=unit_mask,
            log_unhalted=zeros,
            cum=zeros,
            halted=~unit_mask,
            halt_step=zeros,
        )

    @torch.no_grad()
    def keep_going(self, state: PonderNetState, halt_logit: Tensor, n: int, limit: int) -> bool:
        """Training and max mode run all M steps; evaluation halts each unit at a sampled step
        (Bernoulli(lambda_n)) or where sum_{i<=n} p_i first reaches 0.5 (median)."""
        if state.mode != "eval":
            return n < limit
        lam = torch.sigmoid(halt_logit) if n < limit else torch.ones_like(halt_logit)
        state.cum = state.cum + torch.exp(state.log_unhalted) * lam  # + p_n
        state.log_unhalted = state.log_unhalted + F.logsigmoid(-halt_logit)
        if self.eval_halting == "sample":
            stop = torch.bernoulli(lam).bool()
        else:
            stop = state.cum >= 0.5
        halt_now = ~state.halted & (stop | (n >= limit))
        state.halted = state.halted | halt_now
        state.halt_step = torch.where(halt_now, float(n), state.halt_step)
        return n < limit and not bool(state.halted.all())

    def finish(
        self,
        state: PonderNetState,
        halt_logits: Tensor,
        states,
        limit: int,
        update: str = "weighted",
    ) -> HaltingResult:
        """p_n in log space (finite gradients when lambda saturates) from the logits of the K
        steps run (*U, K): p_n = lambda_n prod_{j<n} (1 - lambda_j) for n < K, the leftover
        prod_{j<K} (1 - lambda_j) on step K. The loop runs K = M steps in every mode; a caller
        that stops earlier gets the distribution truncated at K. Evaluation reads out the state
        at each unit's halting step; its "steps" are that step, p and the cost the full ones."""
        logit = halt_logits  # (*U, K)
        K, mask = logit.shape[-1], state.mask
        last = torch.arange(K, device=logit.device) == K - 1  # lambda = 1 on the last step run
        # In log space: p_n underflows to 0 once lambda saturates, and d(p log p)/dp = log p + 1
        # is then -inf (NaN gradients in the KL); log p_n stays finite for finite logits.
        log_lam = torch.where(last, 0.0, F.logsigmoid(logit))
        log_stay = F.logsigmoid(-logit)  # log(1 - lambda_j)
        log_p = log_lam + torch.cumsum(log_stay, -1) - log_stay  # + sum_{j<n} log(1 - lambda_j)
        p = torch.exp(log_p) * mask.unsqueeze(-1)
        p_full, log_p_full = pad_steps(p, limit), pad_steps(log_p, limit)
        kl = kl_to_geometric(p_full, self.lambda_p, log_p=log_p_full) * mask
        lam = torch.sigmoid(logit.detach()) * mask.unsqueeze(-1)
        if K == limit:
            lam[..., -1] = mask.to(lam.dtype)  # lambda_M = 1
        mode, maskf = state.mode, mask.to(p.dtype)
        if mode == "eval":
            steps = state.halt_step
            weights = _one_hot_weights(steps, K, mask, p.dtype)
        elif mode == "max":
            steps, weights = maskf * float(limit), None
        else:
            steps = (p * torch.arange(1, K + 1, device=p.device, dtype=p.dtype)).sum(-1)
            weights = p
        return HaltingResult(
            state=mix(states, weights, update),
            steps=steps,
            remainder=torch.zeros_like(maskf),
            cost=kl,
            p=p_full,
            halt_prob=pad_steps(lam, limit),
        )

    def eval_columns(self, out: HaltingOutput) -> dict[str, Tensor]:
        """E[n] = sum_n n p_n and KL(p || truncated geometric(lambda_p)) per unit."""
        return {
            "expected_steps": out.expected_steps.float(),
            "kl": kl_to_geometric(out.p.double(), self.lambda_p),
        }

    def eval_summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        """`expected_steps_mean`: E[n] averaged over every halting unit of the set."""
        units = records["n_units"].astype(np.float64)
        return {
            "expected_steps_mean": float((records["expected_steps"] * units).sum() / units.sum())
        }


def _one_hot_weights(at: Tensor, K: int, mask: Tensor, dtype) -> Tensor:
    """(*U, K) weights 1 at step `at` (1-based, (*U,)) for real units, 0 elsewhere."""
    n = torch.arange(1, K + 1, device=mask.device)
    return ((n == at.unsqueeze(-1)) & mask.unsqueeze(-1)).to(dtype)


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
