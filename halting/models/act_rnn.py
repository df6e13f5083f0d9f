"""ACT-RNN (Graves 2016): a recurrent cell that ponders each input step.

For input step t the cell runs n = 1..N(t) times on x_t^n = [x_t, delta_{n,1}] (a binary flag
marks the first ponder step), starting from the mean-field state of step t-1. The output and
the state carried on are the mean-field sums s_t = sum_n p_t^n s_t^n (for an LSTM both h and c).
Because the output layer is linear, y_t = W_y s_t + b_y = sum_n p_t^n y_t^n (Graves eq. 8).

Encoders by the task's input kind (halting/tasks/base.py): "vector" (one input step, T = 1),
"sequence" (one step per element, e.g. per number), "grid" `flat` (the embedded grid is one
input, per-cell logits out) and "grid" `conv` (a per-cell convolutional GRU state, halting per
puzzle).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from halting.criteria import Criterion, HaltingOutput
from halting.models.ponder import PonderLoop

MAZE_EMBED = 8  # token embedding width of the maze encoders


@dataclass(frozen=True)
class ACTRNNConfig:
    """Sizes of an ACT-RNN, derived from the ExperimentConfig by `halting.models.build_model`
    (no defaults: they live in ExperimentConfig only)."""

    input_kind: str  # vector | sequence | grid
    input_size: int  # vector: entries; sequence: features per step; grid: cells L
    output_shape: tuple[int, ...]  # per output unit: (2,), (P, 11) or a cell's (vocab,)
    hidden_size: int  # H
    M: int  # the most ponder steps (time_limit)
    cell_type: str  # gru | lstm | tanh_rnn (rnn_cell_type)
    encoder: str  # grid: flat | conv (rnn_encoder)
    halt_bias: float  # initial bias of the halting unit (rnn_halt_bias)
    vocab_size: int  # grid tokens
    dropout: float


class ConvGRUCell(nn.Module):
    """GRU whose gates are 3x3 convolutions: each cell's state is updated from its
    4-neighbourhood."""

    def __init__(self, in_channels: int, hidden: int):
        super().__init__()
        self.gates = nn.Conv2d(in_channels + hidden, 2 * hidden, 3, padding=1)
        self.cand = nn.Conv2d(in_channels + hidden, hidden, 3, padding=1)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:  # x (B, C, S, S), h (B, H, S, S)
        r, z = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        c = torch.tanh(self.cand(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * c


class ACTRNN(nn.Module):
    """Recurrent network with per-sample halting; `forward(x, mask)` -> HaltingOutput."""

    def __init__(self, cfg: ACTRNNConfig, criterion: Criterion):
        super().__init__()
        self.cfg = cfg
        self.criterion = criterion
        H = cfg.hidden_size
        grid = cfg.input_kind == "grid"
        # a grid's one state reads out every cell: (L, vocab) per example
        self.output_shape = (cfg.input_size, *cfg.output_shape) if grid else cfg.output_shape
        out_dim = int(torch.tensor(self.output_shape).prod())
        self.conv = grid and cfg.encoder == "conv"
        if grid:
            self.embed = nn.Embedding(cfg.vocab_size, MAZE_EMBED)
        if self.conv:
            if cfg.cell_type != "gru":
                raise ValueError("rnn_encoder 'conv' supports rnn_cell_type 'gru' only")
            self.cell = ConvGRUCell(MAZE_EMBED + 1, H)
            self.head = nn.Conv2d(H, self.output_shape[-1], 1)
        else:
            in_size = cfg.input_size * MAZE_EMBED if grid else cfg.input_size
            if grid:  # project the flattened embedded grid to one input vector
                self.encode = nn.Sequential(nn.Linear(in_size, H), nn.ReLU())
                in_size = H
            cells = {"gru": nn.GRUCell, "lstm": nn.LSTMCell, "tanh_rnn": nn.RNNCell}
            self.cell = cells[cfg.cell_type](in_size + 1, H)
            self.head = nn.Linear(H, out_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.halt = None
        if criterion.has_halting_unit:
            self.halt = nn.Linear(H, 1)
            nn.init.constant_(self.halt.bias, cfg.halt_bias)

    # -- encoders ----------------------------------------------------------------------------
    def _inputs(self, x: Tensor) -> Tensor:
        """Task input -> per-step cell inputs (B, T, I) or the conv grid (B, 1, C, S, S)."""
        if self.cfg.input_kind == "vector":
            return x.unsqueeze(1)  # (B, 1, bits): one input step
        if self.cfg.input_kind == "sequence":
            return x  # (B, T, I), e.g. addition's 10 D digit features
        e = self.embed(x)  # (B, L, E)
        if self.conv:
            S = int(round(x.shape[1] ** 0.5))
            return e.transpose(1, 2).reshape(x.shape[0], 1, MAZE_EMBED, S, S)
        return self.encode(e.flatten(1)).unsqueeze(1)  # (B, 1, H)

    def _halt_input(self, h: Tensor) -> Tensor | None:
        """The halting unit's input: the state, pooled per puzzle for the conv encoder."""
        if self.halt is None:
            return None
        return h.mean(dim=(2, 3)) if self.conv else h  # (B, H)

    def _init_state(self, B: int, like: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        H = self.cfg.hidden_size
        if self.conv:
            return like.new_zeros(B, H, *like.shape[-2:])
        h = like.new_zeros(B, H)
        return (h, h.clone()) if self.cfg.cell_type == "lstm" else h

    def _flag(self, x_t: Tensor, first: bool) -> Tensor:
        """x_t^n = [x_t, delta_{n,1}] (channel 1 for the conv grid, last feature otherwise)."""
        shape = list(x_t.shape)
        shape[1 if self.conv else -1] = 1
        flag = x_t.new_full(shape, 1.0 if first else 0.0)
        return torch.cat([x_t, flag], 1 if self.conv else -1)

    # -- forward -----------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        mode: str | None = None,
        record_steps: bool = False,
    ) -> HaltingOutput:
        """x: vector (B, I) float (parity), sequence (B, T, I) float (addition), grid (B, L)
        tokens (maze).

        mask (B, T) marks the input steps that count in the ponder cost (default: all).
        mode: "train" | "eval" | "max" (default from self.training).
        """
        mode = mode or ("train" if self.training else "eval")
        crit, M = self.criterion, self.cfg.M
        keep_steps = record_steps or (crit.needs_step_outputs and mode == "train")
        inputs = self._inputs(x)
        B, T = inputs.shape[:2]
        mask = torch.ones(B, T, dtype=torch.bool, device=x.device) if mask is None else mask
        state = self._init_state(B, inputs)
        outs, step_outs, results = [], [], []
        for t in range(T):
            x_first, x_rest = self._flag(inputs[:, t], True), self._flag(inputs[:, t], False)
            loop = PonderLoop(
                crit, self.halt, torch.ones(B, dtype=torch.bool, device=x.device), mode, M
            )
            per_step = []
            s = state
            for n in range(1, M + 1):
                s = self.cell(x_first if n == 1 else x_rest, s)
                h = s[0] if isinstance(s, tuple) else s  # LSTM: halt and read out from h
                if keep_steps:
                    per_step.append(self._readout(h))
                flat = torch.cat(s, -1) if isinstance(s, tuple) else s  # LSTM: h and c averaged
                if not loop.step(n, flat, self._halt_input(h)):
                    break
            r = loop.finish()
            state = r.state.chunk(2, -1) if isinstance(s, tuple) else r.state
            results.append(r)
            h_t = state[0] if isinstance(state, tuple) else state
            outs.append(self._readout(h_t))
            if keep_steps:
                per_step += [per_step[-1]] * (M - len(per_step))  # halted: output unchanged
                step_outs.append(torch.stack(per_step))  # (M, B, *out)
        return self._collect(outs, step_outs, results, mask, keep_steps)

    def _readout(self, h: Tensor) -> Tensor:
        """Linear output y = W_y s + b_y reshaped to the task's output shape (B, *out)."""
        y = self.head(self.drop(h))
        if self.conv:  # (B, 6, S, S) -> (B, L, 6)
            return y.flatten(2).transpose(1, 2)
        return y.reshape(h.shape[0], *self.output_shape)

    def _collect(self, outs, step_outs, results, mask, keep_steps) -> HaltingOutput:
        def cat(key: str) -> Tensor:
            return torch.stack([getattr(r, key) for r in results], 1)  # (B, T, ...)

        maskf = mask.to(outs[0].dtype)
        cost = (cat("cost") * maskf).sum(1).mean()  # rho summed over input steps, batch mean
        logits = torch.stack(outs, 1)  # (B, T, *out)
        steps_logits = torch.stack(step_outs, 2) if keep_steps else None  # (M, B, T, *out)
        if self.cfg.input_kind != "sequence":  # T = 1: drop the time axis
            logits = logits[:, 0]
            steps_logits = steps_logits[:, :, 0] if keep_steps else None
        return HaltingOutput(
            logits=logits,
            p=cat("p"),
            halt_prob=cat("halt_prob"),
            steps=cat("steps") * maskf,
            remainder=cat("remainder") * maskf,
            ponder_cost=cost,
            unit_mask=mask,
            step_logits=steps_logits,
        )
