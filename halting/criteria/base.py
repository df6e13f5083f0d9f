"""The halting-criterion interface, what every model returns, and the mean-field read-out.

Every backbone runs the same loop over ponder steps n = 1..M (halting/models/ponder.py):

    state = criterion.init_state(unit_mask, mode)
    deciding = True
    for n in 1..M:
        s_n = cell(...)                                            # new recurrent state
        deciding = deciding and criterion.keep_going(state, halt_logit(s_n), n, M)
        if not deciding and not (criterion.runs_to_limit and n < M): break
    r = criterion.finish(state, halt_logits, states, M, update)
    # halt_logits (*U, K) and the states s^n (*U, ...) of the K steps run; r.state is the
    # mean-field state sum_n p^n s^n, r.p, r.steps, r.cost, ... the halting numbers

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
from typing import Any, ClassVar, Protocol

import numpy as np
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


@dataclass
class HaltingResult:
    """A criterion's `finish` of one ponder loop; unit tensors (*U,), per-step ones (*U, M)."""

    state: Tensor  # the read-out state: mean-field sum_n p^n s^n, or one step's s^n (*U, ...)
    steps: Tensor  # ponder steps N (ACT), halting step or E[n] (PonderNet), M (fixed)
    remainder: Tensor  # R (ACT); 0 for the other criteria
    cost: Tensor  # per-unit penalty: rho = N + R (ACT), KL (PonderNet), 0 (fixed)
    p: Tensor  # (*U, M) halting distribution, detached where only reported
    halt_prob: Tensor  # (*U, M) h^n / lambda_n of the steps run, 0 beyond


class Criterion(Protocol):
    """A halting criterion: the loop's decisions, its result, and how it is named and reported.

    Class attributes: `name` (the config's `halting` value), `display_name` (legends, tables),
    `panel_title` (figure panels), `penalty_symbol` (tau, beta; None without a penalty),
    `halt_prob_symbol` and `halt_prob_caption` (`halt_prob` in the viewer), `fields` (the
    ExperimentConfig fields only this criterion reads), `has_halting_unit` (False: no halting
    unit, no penalty, tau is 0), `reads_update_rule` (the UT's `ut_act_update` applies),
    `needs_step_outputs` (training weighs each step's output: the loss needs them),
    `runs_to_limit`, `example_columns` (the keys of `eval_columns`: per_example.parquet
    columns), `mode_matters` (False: the learned and the max-steps forward are the same
    computation).
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    panel_title: ClassVar[str]
    penalty_symbol: ClassVar[str | None]
    halt_prob_symbol: ClassVar[str]
    halt_prob_caption: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]
    has_halting_unit: ClassVar[bool]
    reads_update_rule: ClassVar[bool]
    needs_step_outputs: ClassVar[bool]
    runs_to_limit: ClassVar[bool]
    example_columns: ClassVar[tuple[str, ...]]
    mode_matters: ClassVar[bool]

    @classmethod
    def from_config(cls, config: Any) -> Criterion:
        """The criterion with an ExperimentConfig's settings (its `fields`)."""

    def weighs_every_step(self, mode: str) -> bool:
        """Whether `finish` reads every state s^n (else s^K only, and the loop keeps just it)."""

    def init_state(self, unit_mask: Tensor, mode: str = "train") -> Any:
        """The loop's halting state (a dataclass of this criterion) for units (*U,)."""

    def keep_going(self, state: Any, halt_logit: Tensor | None, n: int, limit: int) -> bool:
        """Halting decision after ponder step n (1-based): does any unit run step n + 1?"""

    def finish(
        self, state: Any, halt_logits: Tensor | None, states, limit: int, update: str = "weighted"
    ) -> HaltingResult:
        """The result of the K steps run, from their logits (*U, K) and states s^n."""

    def eval_columns(self, out: HaltingOutput) -> dict[str, Tensor]:
        """Extra per-unit (B, U) numbers evaluation reports per example (mean over units)."""

    def eval_summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        """Extra eval.json numbers from the per-example records (with `n_units`)."""


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


def pad_steps(values: Tensor, limit: int) -> Tensor:
    """(*U, K) per-step values zero-padded to (*U, M) beyond the K steps run."""
    K = values.shape[-1]
    return values if K == limit else F.pad(values, (0, limit - K))
