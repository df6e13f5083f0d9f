"""HaltingSystem: the one LightningModule for every task, backbone and criterion.

It owns the task loss, the halting penalty and its tau schedule, the metrics and the optimiser;
the model is a plain nn.Module (`halting.models`) and the data comes from `halting.data.modules`.

Loss = task loss + tau(step) * penalty, where
- ACT / fixed: the task loss of the final (mean-field) output;
- PonderNet: the expected task loss sum_n p_n L(y, y_n) over the ponder steps (Banino eq. 6),
  and the penalty is KL(p || geometric(lambda_p)) with tau playing PonderNet's beta.
Task losses: parity cross-entropy (batch mean); addition the cross-entropy SUMMED over the digit
places and the scored input steps (Graves 3.3: averaging over the places would divide the
effective tau by their number), batch mean; maze per-cell cross-entropy averaged over cells and
batch (a per-puzzle ponder cost is then weighed against a per-cell loss: tau is chosen for that).
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from halting import metrics
from halting.config import ExperimentConfig, make_config
from halting.criteria import HaltingOutput
from halting.metrics import model_input, model_mask
from halting.models import build_model


def unit_task_loss(task: str, logits: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """Per-unit task loss: parity (B, 1), addition (B, T) summed over places (0 where unscored),
    maze (B, L) per cell."""
    if task == "parity":
        return F.cross_entropy(logits, batch["y"], reduction="none")[:, None]
    if task == "addition":  # logits (B, T, P, 11), y (B, T, P)
        ce = F.cross_entropy(logits.flatten(0, 2), batch["y"].flatten(), reduction="none")
        return ce.view(batch["y"].shape).sum(-1) * batch["mask"].to(logits.dtype)
    return F.cross_entropy(logits.transpose(1, 2), batch["labels"], reduction="none")  # (B, L)


def reduce_task_loss(task: str, unit_loss: Tensor) -> Tensor:
    """Scalar task loss from `unit_task_loss`: addition sums over steps; all average the batch."""
    if task == "addition":
        return unit_loss.sum(1).mean()
    return unit_loss.mean()


def output_weights(task: str, out: HaltingOutput) -> Tensor:
    """Halting distribution p of the units that produce the outputs, (B, U_out or 1, M).
    The UT reads parity out at its CLS position 0; the RNN's single unit broadcasts over cells."""
    return out.p[:, :1] if task == "parity" else out.p


def task_loss(task: str, out: HaltingOutput, batch: dict[str, Tensor], criterion: str) -> Tensor:
    """Task loss of `out`: PonderNet's expected loss over steps in training, else the output's."""
    if criterion == "pondernet" and out.step_logits is not None:
        p = output_weights(task, out)  # (B, U, M)
        per_step = torch.stack([unit_task_loss(task, y_n, batch) for y_n in out.step_logits], -1)
        return reduce_task_loss(task, (p * per_step).sum(-1))
    return reduce_task_loss(task, unit_task_loss(task, out.logits, batch))


def batch_metrics(task: str, out: HaltingOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Batch means of the task metrics (names as logged) and of the ponder steps."""
    m: dict[str, Tensor] = {}
    if task == "parity":
        m["accuracy"] = metrics.parity_correct(out.logits, batch["y"]).float().mean()
    elif task == "addition":
        c = metrics.addition_correct(out.logits, batch["y"], batch["mask"])
        m["accuracy_place"] = (c["place_correct"] * c["place_count"]).sum() / c[
            "place_count"
        ].sum().clamp(min=1)
        m["accuracy_sequence"] = c["sequence"].float().mean()
        m["accuracy"] = m["accuracy_place"]
    else:
        c = metrics.maze_metrics(out.logits.argmax(-1), batch["labels"])
        m["accuracy"] = c["token_correct"].mean()
        m["exact_accuracy"] = c["exact"].float().mean()
        m["path_f1"] = metrics.f1_on_device(c["path_tp"], c["path_fp"], c["path_fn"])
    units = out.unit_mask  # (B, U) bool; a masked mean without boolean indexing (a host sync)
    m["steps"] = (out.steps.float() * units).sum() / units.sum()
    return m


def lr_factor(step: int, warmup: int, total: int | None, schedule: str) -> float:
    """Linear warmup over `warmup` steps, then constant or cosine decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine" and total:
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def tau_at(config: ExperimentConfig, step: int) -> float:
    """The runbook's time-penalty schedule: time_penalty_start -> tau, linear over the warmup."""
    if config.criterion == "fixed":
        return 0.0
    warm = config.time_penalty_warmup_steps
    if warm <= 0 or step >= warm:
        return config.tau
    return config.time_penalty_start + (config.tau - config.time_penalty_start) * step / warm


class HaltingSystem(pl.LightningModule):
    """Task loss + halting penalty, metrics and optimisers around one `halting.models` model."""

    def __init__(self, config: dict[str, Any], data_meta: dict[str, Any], code_version: str):
        super().__init__()
        self.cfg = make_config(config, source="checkpoint config")
        self.save_hyperparameters(
            {
                "config": self.cfg.to_dict(),
                "data_meta": dict(data_meta),
                "model_type": self.cfg.model_type,
                "task": self.cfg.task,
                "criterion": self.cfg.criterion,
                "code_version": code_version,
            }
        )
        self.data_meta = dict(data_meta)
        self.model = build_model(self.cfg, data_meta)

    def forward(
        self, batch: dict[str, Tensor], mode: str | None = None, record_steps: bool = False
    ) -> HaltingOutput:
        return self.model(
            model_input(self.cfg.task, batch),
            mask=model_mask(self.cfg.task, batch),
            mode=mode,
            record_steps=record_steps,
        )

    def _losses(self, batch: dict[str, Tensor], out: HaltingOutput) -> dict[str, Tensor]:
        tau = tau_at(self.cfg, self.global_step)
        loss_task = task_loss(self.cfg.task, out, batch, self.cfg.criterion)
        loss_ponder = out.ponder_cost  # differentiable: never .item() before backward
        return {
            "loss_total": loss_task + tau * loss_ponder,
            "loss_classification": loss_task,
            "loss_ponder": loss_ponder,
            "time_penalty": torch.tensor(tau),
        }

    def _log_all(self, split: str, values: dict[str, Tensor], batch_size: int) -> None:
        on_step = split == "train"
        self.log_dict(
            {f"{split}/{k}": v.detach().float() for k, v in values.items()},
            on_step=on_step,
            on_epoch=not on_step,
            batch_size=batch_size,
            prog_bar=False,
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self(batch, mode="train")
        losses = self._losses(batch, out)
        size = model_input(self.cfg.task, batch).shape[0]
        self._log_all("train", {**losses, **batch_metrics(self.cfg.task, out, batch)}, size)
        return losses["loss_total"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self(batch, mode="eval")
        losses = self._losses(batch, out)
        size = model_input(self.cfg.task, batch).shape[0]
        self._log_all("val", {**losses, **batch_metrics(self.cfg.task, out, batch)}, size)
        # metrics.csv's step of a validation row: the optimiser steps its weights had (as in
        # train.log and the checkpoint names). Left to Lightning it is one less inside fit and
        # not inside a later `trainer.validate`.
        self.log("step", float(self.global_step), on_step=False, on_epoch=True, batch_size=size)

    def total_steps(self) -> int | None:
        """Optimiser steps of the whole run (max_steps, else max_epochs x steps per epoch)."""
        if self.cfg.max_steps:
            return self.cfg.max_steps
        per_epoch = self.data_meta.get("steps_per_epoch")
        return self.cfg.max_epochs * per_epoch if per_epoch and self.cfg.max_epochs else None

    def configure_optimizers(self):
        cfg = self.cfg
        opt = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        warmup = cfg.lr_warmup_steps + cfg.lr_warmup_epochs * int(
            self.data_meta.get("steps_per_epoch") or 0
        )
        total = self.total_steps()
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: lr_factor(step, warmup, total, cfg.lr_schedule)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
