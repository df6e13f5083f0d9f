"""The Lightning callbacks of `train`: exact RNG state across resumes, the non-finite
guard, plain-text progress lines, and the step/epoch checkpoints with the time budget."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from halting.io import atomic_copy
from halting.training import checkpoint as ckpt_io


class NonFiniteError(RuntimeError):
    """A non-finite loss or gradient: the run stops, the last (finite) checkpoint is kept."""


class PauseFit(Exception):
    """Raised inside fit after the pause checkpoint and its logging, to leave Lightning's loop."""


def val_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The `val/*` entries of Lightning's callback metrics, as floats in name order."""
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith("val/")}


def _rng_state() -> dict[str, Any]:
    """Every RNG state as plain types (torch.load(weights_only=True) reads it back)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState(pl.Callback):
    """Saves all RNG states in the checkpoint and restores them when training (re)starts;
    validation runs on its own seeded stream and gives the training stream back untouched."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._restored: dict[str, Any] | None = None
        self._outside: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return _rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._restored is not None:  # after Lightning's own restore work, before step 1
            _set_rng_state(self._restored)
            self._restored = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self._outside = _rng_state()
        torch.manual_seed(self.seed)  # validation results depend on the weights only

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._outside is not None:
            _set_rng_state(self._outside)
            self._outside = None


class Guard(pl.Callback):
    """Logs `train/grad_norm`; stops on a non-finite loss or gradient, naming the step.

    Under `--precision 16-mixed` a GradScaler owns overflow: a non-finite gradient there is
    an overflow of the scaled loss, and the scaler skips that optimiser step and halves its
    scale. Guard lets up to `max_scaler_skips` such steps pass in a row (the scale has then
    fallen by 2^max_scaler_skips: the gradients overflow at any scale, so the run diverged).
    """

    def __init__(self, max_scaler_skips: int = 30) -> None:
        self.max_scaler_skips = max_scaler_skips
        self.skipped = 0  # consecutive steps the GradScaler skipped

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad.detach() for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        total = torch.nn.utils.get_total_norm(grads, 2.0)
        if torch.isfinite(total):
            self.skipped = 0
            pl_module.log("train/grad_norm", total, on_step=True, on_epoch=False)
            return
        step = trainer.global_step + 1
        scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
        if scaler is None:
            raise NonFiniteError(f"non-finite gradient norm ({total.item()}) at step {step}")
        self.skipped += 1
        if self.skipped > self.max_scaler_skips:
            raise NonFiniteError(
                f"non-finite gradient norm ({total.item()}) at step {step}: the 16-mixed "
                f"GradScaler skipped {self.skipped} steps in a row (scale now "
                f"{scaler.get_scale():.3g}); use --precision bf16-mixed or 32-true"
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            raise NonFiniteError(f"non-finite loss ({loss.item()}) at step {trainer.global_step}")


class TextProgress(pl.Callback):
    """A plain line per `every` steps and per validation, into train.log (and stdout)."""

    def __init__(self, log: Callable[[str], None], every: int) -> None:
        self._log, self.every = log, max(1, every)
        self.start = time.monotonic()

    @staticmethod
    def _fmt(metrics: dict[str, Any], prefix: str) -> str:
        items = sorted((k, v) for k, v in metrics.items() if k.startswith(prefix))
        return " ".join(f"{k}={float(v):.4g}" for k, v in items)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0:
            of = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
            self._log(
                f"step {step}{of} epoch {trainer.current_epoch} "
                f"{self._fmt(trainer.callback_metrics, 'train/')} "
                f"({time.monotonic() - self.start:.0f} s)"
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._log(
                f"validation at step {trainer.global_step}: "
                f"{self._fmt(trainer.callback_metrics, 'val/')}"
            )


class TerminalProgress(pl.Callback):
    """On a terminal (`srun --pty`), one line redrawn in place at most every `every_s` seconds:
    step/total, loss, the task's headline metric and steps/s. Lightning's bar counts batches of
    an epoch instead, which for the toy tasks' one endless epoch says nothing."""

    def __init__(self, stream, metric: str, every_s: float = 0.25) -> None:
        self.stream, self.metric, self.every_s = stream, metric, every_s
        self.start_time = self.start_step = self.drawn = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_time, self.start_step = time.monotonic(), trainer.global_step
        self.drawn = 0.0

    def line(self, trainer, now: float) -> str:
        step = trainer.global_step
        total = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
        rate = (step - self.start_step) / max(now - self.start_time, 1e-9)
        values = trainer.callback_metrics
        parts = [f"step {step}{total}"]
        for name, label in (("train/loss_total", "loss"), (f"train/{self.metric}", self.metric)):
            if name in values:
                parts.append(f"{label} {float(values[name]):.4f}")
        parts.append(f"{rate:.1f} steps/s")
        return "  ".join(parts)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now, last = time.monotonic(), trainer.global_step == trainer.max_steps
        if now - self.drawn >= self.every_s or last:
            self.drawn = now
            self.stream.write("\r" + self.line(trainer, now).ljust(79) + "\x1b[K")
            if last:
                self._end_line()
            else:
                self.stream.flush()

    def _end_line(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0.0

    def on_train_end(self, trainer, pl_module) -> None:
        self._end_line()


class StopSignals(pl.Callback):
    """Records SIGTERM / SIGUSR1 (Slurm's end of a job: walltime, scancel, preemption) instead
    of dying, so that StepCheckpoints pauses after the current optimiser step.

    Installed for a `with` block; re-installed at the start of training because Lightning's
    fit puts its own SIGTERM handler first, which would end fit at the next epoch end or
    mid-validation (its SIGTERMException) before our checkpoint is written.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: str | None = None  # name of the first signal received
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def _install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                previous = signal.signal(sig, self._handle)
                self._previous.setdefault(sig, previous)

    def __enter__(self) -> StopSignals:
        self._install()
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self._install()


class StepCheckpoints(pl.Callback):
    """last.ckpt plus `step=N.ckpt` every n steps / `epoch=E-step=N.ckpt` every n epochs (the
    newest `keep` of them kept; -1 keeps all), last.ckpt alone every `last_every_s` seconds,
    and the pauses: the time budget and a stop signal (StopSignals).
    A step's checkpoint is written after its logging and, when validation runs at that step,
    after the validation (so a resume never misses or repeats either). Training always
    validates at its final step; the metrics of the latest validation travel in the checkpoint
    (they are the run's result when a resume finds nothing left to do)."""

    def __init__(
        self,
        ckpt_dir: Path,
        *,
        every_n_steps: int | None,
        every_n_epochs: int | None,
        steps_per_epoch: int | None,
        max_steps: int,
        max_epochs: int | None,
        val_due,
        budget_s: float | None,
        start: float,
        log: Callable[[str], None],
        keep: int = 2,
        last_every_s: float | None = None,
        stop: StopSignals | None = None,
    ) -> None:
        self.dir, self.every_n_steps, self.every_n_epochs = ckpt_dir, every_n_steps, every_n_epochs
        self.spe, self.max_steps, self.max_epochs = steps_per_epoch, max_steps, max_epochs
        self.val_due, self.budget_s, self.start, self._log = val_due, budget_s, start, log
        self.keep, self.last_every_s = keep, last_every_s
        self.last_saved = start  # monotonic time of the latest save (for last_every_s)
        self.stop = stop
        self.pending: tuple[int, list[str], str | None, bool] | None = None
        self.paused_at: int | None = None
        self.pause_reason = ""  # "time budget" | "signal SIGTERM" | ...
        self.last_val_step = -1
        self.last_val_metrics: dict[str, float] = {}
        self.prior_seconds = 0.0  # training wall time of the attempts before this one
        self.fit_start: float | None = None

    def train_seconds(self) -> float:
        """Training wall time summed over every attempt of the run, up to now."""
        ran = time.monotonic() - self.fit_start if self.fit_start is not None else 0.0
        return self.prior_seconds + ran

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_val_step": self.last_val_step,
            "last_val_metrics": self.last_val_metrics,
            "train_seconds": self.train_seconds(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_val_step = int(state_dict["last_val_step"])
        self.last_val_metrics = dict(state_dict["last_val_metrics"])
        self.prior_seconds = float(state_dict.get("train_seconds", 0.0))

    def on_train_start(self, trainer, pl_module) -> None:
        self.fit_start = time.monotonic()

    def _names(self, step: int) -> tuple[list[str], bool]:
        """Files due at `step` and whether training ends there."""
        names = []
        if self.every_n_steps and step % self.every_n_steps == 0:
            names.append(f"step={step:08d}.ckpt")
        final = self.max_steps > 0 and step >= self.max_steps
        if self.spe and step % self.spe == 0:
            epoch = step // self.spe  # epochs completed
            if self.every_n_epochs and epoch % self.every_n_epochs == 0:
                names.append(f"epoch={epoch - 1:04d}-step={step:08d}.ckpt")
            final = final or (self.max_epochs is not None and epoch >= self.max_epochs)
        return names, final

    def _signalled(self) -> str | None:
        return f"signal {self.stop.received}" if self.stop and self.stop.received else None

    def _pause_reason(self, now: float) -> str | None:
        spent = self.budget_s is not None and now - self.start >= self.budget_s
        return self._signalled() or ("time budget" if spent else None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step, now = trainer.global_step, time.monotonic()
        names, final = self._names(step)
        pause = None if final else self._pause_reason(now)
        refresh = self.last_every_s is not None and now - self.last_saved >= self.last_every_s
        if final:
            trainer.should_stop = True  # makes Lightning validate after this last step
        if names or final or pause or refresh:
            self.pending = (step, names, pause, final)
            if not self.val_due(step, final):
                self._save_pending(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.last_val_step = trainer.global_step
        self.last_val_metrics = val_metrics(trainer.callback_metrics)
        if self.pending is not None and self.pending[0] == trainer.global_step:
            self._save_pending(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.pending is not None:  # a validation we expected did not run: save anyway
            self._save_pending(trainer)

    def _save_pending(self, trainer) -> None:
        step, names, pause, final = self.pending
        self.pending = None
        last = self.dir / ckpt_io.LAST
        if names and self.keep != 0:
            first = self.dir / names[0]
            trainer.save_checkpoint(first, weights_only=False)
            for extra in names[1:] + [ckpt_io.LAST]:
                atomic_copy(first, self.dir / extra, link=True)
            ckpt_io.prune_periodic(self.dir, self.keep)  # only now: the new file is safe
        else:
            trainer.save_checkpoint(last, weights_only=False)
        self.last_saved = time.monotonic()
        if pause is None and not final:
            pause = self._signalled()  # it arrived during this step's validation
        if pause:
            self.paused_at, self.pause_reason = step, pause
            spent = f" of {self.budget_s / 60:.1f} min used" if pause == "time budget" else ""
            self._log(f"paused at step {step} ({pause}{spent}); {last} holds the state")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Leave before the next step rather than by `trainer.should_stop`, which would log an
        # extra row and run an extra validation that an uninterrupted run does not have.
        if self.paused_at is not None:
            raise PauseFit()
