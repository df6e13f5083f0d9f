"""HaltingSystem: the one LightningModule for every task, backbone and criterion.

It owns the task loss, the halting penalty and its tau schedule, the metrics and the optimiser;
the model is a plain nn.Module (`halting.models`) and the data comes from `halting.data.modules`.

Loss = task loss + tau(step) * penalty, where
- ACT / fixed: the task loss of the final (mean-field) output;
- PonderNet: the expected task loss sum_n p_n L(y, y_n) over the ponder steps (Banino eq. 6),
  and the penalty is KL(p || geometric(lambda_p)) with tau playing PonderNet's beta.
The task losses are the tasks' own (`halting.tasks`: `unit_loss`, `reduce_loss`).
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from halting.config import ExperimentConfig, make_config
from halting.criteria import Criterion, HaltingOutput, criterion_class
from halting.models import build_model
from halting.tasks import Task, get_task


def task_loss(
    task: Task, out: HaltingOutput, batch: dict[str, Tensor], criterion: Criterion
) -> Tensor:
    """Task loss of `out`: the expected loss sum_n p_n L(y, y_n) over the steps where the
    criterion trains on every step's output (PonderNet, Banino eq. 6), else the output's."""
    if criterion.needs_step_outputs and out.step_logits is not None:
        p = task.output_weights(out.p)  # (B, U, M)
        per_step = torch.stack([task.unit_loss(y_n, batch) for y_n in out.step_logits], -1)
        return task.reduce_loss((p * per_step).sum(-1))
    return task.reduce_loss(task.unit_loss(out.logits, batch))


def batch_metrics(task: Task, out: HaltingOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Batch means of the task metrics (names as logged) and of the ponder steps."""
    m = task.batch_metrics(out.logits, batch)
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
    if not criterion_class(config.criterion).has_halting_unit:
        return 0.0
    warm = config.time_penalty_warmup_steps
    if warm <= 0 or step >= warm:
        return config.tau
    return config.time_penalty_start + (config.tau - config.time_penalty_start) * step / warm


class HaltingSystem(pl.LightningModule):
    """Task loss + halting penalty, metrics and optimisers around one `halting.models` model."""

    def __init__(
        self,
        config: ExperimentConfig | dict[str, Any],
        data_meta: dict[str, Any],
        code_version: str,
    ):
        """`config`: the job's ExperimentConfig (training), or the dict a checkpoint's
        hyper_parameters hold (Lightning's load_from_checkpoint), validated here."""
        super().__init__()
        if isinstance(config, ExperimentConfig):
            self.cfg = config
        else:
            self.cfg = make_config(config, source="checkpoint config")
        self.task: Task = get_task(self.cfg.task)
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
        self.criterion: Criterion = self.model.criterion

    def forward(
        self, batch: dict[str, Tensor], mode: str | None = None, record_steps: bool = False
    ) -> HaltingOutput:
        return self.model(
            self.task.model_input(batch),
            mask=self.task.model_mask(batch),
            mode=mode,
            record_steps=record_steps,
        )

    def _losses(self, batch: dict[str, Tensor], out: HaltingOutput) -> dict[str, Tensor]:
        tau = tau_at(self.cfg, self.global_step)
        loss_task = task_loss(self.task, out, batch, self.criterion)
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
        size = self.task.model_input(batch).shape[0]
        self._log_all("train", {**losses, **batch_metrics(self.task, out, batch)}, size)
        return losses["loss_total"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self(batch, mode="eval")
        losses = self._losses(batch, out)
        size = self.task.model_input(batch).shape[0]
        self._log_all("val", {**losses, **batch_metrics(self.task, out, batch)}, size)
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
