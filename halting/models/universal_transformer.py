"""Universal Transformer (Dehghani et al. 2018) with per-position halting.

One shared pre-LN encoder layer is applied up to M = ut_max_hops times; position and step
(timing) signals are added before every hop. With `ut_act` each position halts on its own under
any criterion of `halting.criteria`; the per-position output state is the Graves mean-field sum
sum_n p^n s^n (`ut_act_update weighted`) or tensor2tensor's interpolation
w_n s^n + (1 - w_n) acc (`interpolate`). Every position keeps being transformed after it halts
(as in tensor2tensor) so others can attend to it; its accumulated output no longer changes.

Inputs by the task's input kind (halting/tasks/base.py): "grid" tokens (B, L) (maze); "vector"
entries (B, I) as tokens with a CLS position 0 that reads out the class (parity); "sequence"
vectors (B, T, I) projected per position, attention causal (addition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halting.criteria import Criterion, HaltingOutput
from halting.models.ponder import PonderLoop

VECTOR_VOCAB = 4  # a vector's tokens: 0 CLS, then entry + 2: -1 -> 1, 0 -> 2, +1 -> 3


@dataclass(frozen=True)
class UTConfig:
    """Sizes of a Universal Transformer, derived from the ExperimentConfig by
    `halting.models.build_model` (no defaults: they live in ExperimentConfig only)."""

    input_kind: str  # vector | sequence | grid
    input_size: int  # vector: entries; sequence: features per step; grid: cells L
    output_shape: tuple[int, ...]  # per position: (2,) at CLS, (P, 11) or a cell's (vocab,)
    hidden_size: int  # H
    embedding_size: int  # E (ut_embedding_size)
    heads: int  # ut_heads
    key_depth: int  # ut_key_depth
    value_depth: int  # ut_value_depth
    filter_size: int  # ut_filter_size
    M: int  # the most hops (ut_max_hops)
    halt_bias: float  # initial bias of the halting unit (ut_halt_bias)
    act_update: str  # weighted | interpolate (ut_act_update)
    vocab_size: int  # grid tokens
    dropout: float


def sinusoid(n: int, dim: int, device=None) -> Tensor:
    """Transformer timing signal (n, dim): sin/cos of positions at geometric frequencies."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, device=device) / dim)
    signal = torch.zeros(n, dim, device=device)
    signal[:, 0::2] = torch.sin(pos * freq)
    signal[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return signal


class EncoderLayer(nn.Module):
    """Pre-LN self-attention + ReLU feed-forward, both residual; attention by SDPA."""

    def __init__(self, cfg: UTConfig):
        super().__init__()
        H, K, V = cfg.hidden_size, cfg.key_depth, cfg.value_depth
        if K % cfg.heads or V % cfg.heads:
            raise ValueError(
                f"ut_key_depth ({K}) and ut_value_depth ({V}) must be divisible by "
                f"ut_heads ({cfg.heads})"
            )
        self.heads = cfg.heads
        self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.q, self.k, self.v = nn.Linear(H, K), nn.Linear(H, K), nn.Linear(H, V)
        self.o = nn.Linear(V, H)
        self.ffn = nn.Sequential(
            nn.Linear(H, cfg.filter_size), nn.ReLU(), nn.Linear(cfg.filter_size, H)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.p_drop = cfg.dropout

    def forward(self, s: Tensor, attn_mask: Tensor | None, causal: bool) -> Tensor:
        B, L, _ = s.shape  # s (B, L, H)
        x = self.ln1(s)

        def split(t: Tensor) -> Tensor:  # (B, L, D) -> (B, heads, L, D / heads)
            return t.view(B, L, self.heads, -1).transpose(1, 2)

        a = F.scaled_dot_product_attention(
            split(self.q(x)),
            split(self.k(x)),
            split(self.v(x)),
            attn_mask=attn_mask,
            dropout_p=self.p_drop if self.training else 0.0,
            is_causal=causal,
        )
        s = s + self.drop(self.o(a.transpose(1, 2).reshape(B, L, -1)))
        return s + self.drop(self.ffn(self.ln2(s)))


class UniversalTransformer(nn.Module):
    """Shared-weight encoder applied up to M hops; `forward(x, mask)` -> HaltingOutput."""

    def __init__(self, cfg: UTConfig, criterion: Criterion):
        super().__init__()
        self.cfg = cfg
        self.criterion = criterion
        E, H = cfg.embedding_size, cfg.hidden_size
        if cfg.input_kind == "sequence":
            self.embed = nn.Linear(cfg.input_size, E)
        else:
            vocab = VECTOR_VOCAB if cfg.input_kind == "vector" else cfg.vocab_size
            self.embed = nn.Embedding(vocab, E)
        self.project = nn.Linear(E, H)
        self.layer = EncoderLayer(cfg)
        self.ln_out = nn.LayerNorm(H)
        self.head = nn.Linear(H, int(torch.tensor(cfg.output_shape).prod()))
        self.halt = None
        if criterion.has_halting_unit:
            self.ln_halt = nn.LayerNorm(H)  # the residual stream grows with hops: normalise
            self.halt = nn.Linear(H, 1)
            nn.init.constant_(self.halt.bias, cfg.halt_bias)

    def _tokens(self, x: Tensor) -> Tensor:
        """Task input -> (B, L, E) embeddings."""
        if self.cfg.input_kind == "vector":  # CLS + entries as tokens
            tok = (x.round().long() + 2).clamp(1, 3)
            tok = torch.cat([tok.new_zeros(x.shape[0], 1), tok], 1)
            return self.embed(tok)
        return self.embed(x)

    def _readout(self, s: Tensor) -> Tensor:
        """Per-position logits; a vector's class is read out at the CLS position."""
        y = self.head(self.ln_out(s))  # (B, L, prod(out))
        if self.cfg.input_kind == "vector":
            return y[:, 0]  # (B, 2)
        return y.reshape(*s.shape[:2], *self.cfg.output_shape)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        mode: str | None = None,
        record_steps: bool = False,
    ) -> HaltingOutput:
        """x: grid (B, L) tokens, vector (B, I), sequence (B, T, I); mask (B, L) valid
        positions."""
        mode = mode or ("train" if self.training else "eval")
        crit, M, cfg = self.criterion, self.cfg.M, self.cfg
        keep_steps = record_steps or (crit.needs_step_outputs and mode == "train")
        s = self.project(self._tokens(x))  # (B, L, H)
        B, L, H = s.shape
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=s.device)
        causal = cfg.input_kind == "sequence"  # padding comes last: causal attention never reads it
        # the keys that exist (B, 1, 1, L), where some do not
        attn_mask = None if causal or bool(mask.all()) else mask[:, None, None, :]
        pos, timing = sinusoid(L, H, s.device), sinusoid(M, H, s.device)
        loop, per_step = PonderLoop(crit, self.halt, mask, mode, M), []
        for n in range(1, M + 1):
            s = self.layer(s + pos + timing[n - 1], attn_mask, causal=causal)
            if keep_steps:
                per_step.append(self._readout(s))
            if not loop.step(n, s, None if self.halt is None else self.ln_halt(s)):
                break
        r = loop.finish(cfg.act_update)
        acc = r.state  # mean-field (or interpolated) output state (B, L, H)
        cost = (r.cost.sum(1) / mask.sum(1).clamp(min=1)).mean()  # mean over positions, batch
        if keep_steps:
            per_step += [per_step[-1]] * (M - len(per_step))
        return HaltingOutput(
            logits=self._readout(acc),
            p=r.p,
            halt_prob=r.halt_prob,
            steps=r.steps,
            remainder=r.remainder,
            ponder_cost=cost,
            unit_mask=mask,
            step_logits=torch.stack(per_step) if keep_steps else None,
        )
