"""`train(config, run_dir=...)`: one training run, resumable bit for bit after any kill.

Run folder layout:
    run_dir/checkpoints/{last.ckpt, step=N.ckpt | epoch=E-step=N.ckpt, train.lock}
    run_dir/logs/version_K/metrics.csv   Lightning's CSVLogger, one folder per attempt
    run_dir/metrics.csv                  cumulative over attempts (rebuilt from logs/)
    run_dir/train.log                    plain text, appended by every attempt
    run_dir/final.ckpt                   on completion: weights (EMA when on) + final metrics

Exactness: the batch at global step g is a pure function of (seed, g) (halting.data.modules);
the checkpoint carries every RNG state; validation draws from its own seeded stream and puts
the training RNG back; a step's checkpoint is written after that step's validation and logging.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

import halting
from halting import checkpoint as ckpt_io
from halting.config import ExperimentConfig, config_diff, make_config
from halting.io import atomic_copy, atomic_path

PAUSED_EXIT = 3


class TrainingPaused(Exception):
    """The time budget ran out: last.ckpt holds the state; run the same command to resume."""

    def __init__(self, step: int, ckpt_path: Path, minutes: float) -> None:
        super().__init__(f"paused at step {step} after {minutes:.1f} min (time budget): "
                         f"resume from {ckpt_path} by running the same command again")
        self.step, self.ckpt_path = step, ckpt_path


class _Pause(Exception):
    """Raised inside fit after the pause checkpoint and its logging, to leave Lightning's loop."""


class ConfigMismatch(ValueError):
    """The run folder holds a checkpoint of a different config."""


class NonFiniteError(RuntimeError):
    """A non-finite loss or gradient: the run stops, the last (finite) checkpoint is kept."""


def code_version() -> str:
    return f"halting {halting.__version__}"


# --- the plain text log and the cumulative metrics.csv ---------------------------------------

class RunLog:
    """Appends lines to run_dir/train.log (and echoes them to stdout when `echo`)."""

    def __init__(self, path: Path, echo: bool) -> None:
        self.path, self.echo = path, echo

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with open(self.path, "a") as handle:
            handle.write(line + "\n")
        if self.echo:
            print(line, flush=True)


def merge_metrics(run_dir: Path) -> Path:
    """Rebuild run_dir/metrics.csv from every attempt's CSVLogger file.

    A row is identified by its step, the columns it fills and its rank among such rows of its
    attempt; a later attempt's row replaces an earlier one with the same identity (rows past a
    resume point that a killed attempt had logged are logged again, identically, by the next).
    """
    rows: dict[tuple, dict[str, str]] = {}
    columns: set[str] = set()
    versions = sorted((p for p in (run_dir / "logs").glob("version_*") if p.name[8:].isdigit()),
                      key=lambda p: int(p.name[8:]))
    for version in versions:
        path = version / "metrics.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            seen: dict[tuple, int] = {}
            for row in reader:
                if None in row or not row.get("step"):  # a line cut by a kill
                    continue
                filled = tuple(sorted(k for k, v in row.items() if v != ""))
                ident = (row["step"], filled)
                seen[ident] = seen.get(ident, 0) + 1
                rows[ident + (seen[ident],)] = row
                columns.update(filled)
    out = run_dir / "metrics.csv"
    if not rows:
        return out
    ordered = sorted(rows.values(), key=lambda r: int(r["step"]))  # stable: keeps log order
    names = sorted(columns, key=lambda c: (c not in ("step", "epoch"), c))
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(ordered)
    return out


# --- callbacks -------------------------------------------------------------------------------

def _rng_state() -> dict[str, Any]:
    """Every RNG state as plain types (torch.load(weights_only=True) reads it back)."""
    np_state = np.random.get_state()
    py_state = __import__("random").getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                       int(np_state[2]), int(np_state[3]), float(np_state[4])],
             "python": [py_state[0], list(py_state[1]), py_state[2]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    __import__("random").setstate((version, tuple(internal), gauss_next))
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
    """Logs `train/grad_norm`; stops on a non-finite loss or gradient, naming the step."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        norms = [p.grad.detach().norm(2) for p in pl_module.parameters() if p.grad is not None]
        if not norms:
            return
        total = torch.linalg.vector_norm(torch.stack(norms), 2)
        if not torch.isfinite(total):
            raise NonFiniteError(f"non-finite gradient norm ({total.item()}) at step "
                                 f"{trainer.global_step + 1}")
        pl_module.log("train/grad_norm", total, on_step=True, on_epoch=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            raise NonFiniteError(f"non-finite loss ({loss.item()}) at step {trainer.global_step}")


class TextProgress(pl.Callback):
    """A plain line per `every` steps and per validation, into train.log (and stdout)."""

    def __init__(self, log: RunLog, every: int, max_steps: int) -> None:
        self._log, self.every, self.max_steps = log, max(1, every), max_steps
        self.start = time.monotonic()

    @staticmethod
    def _fmt(metrics: dict[str, Any], prefix: str) -> str:
        items = sorted((k, v) for k, v in metrics.items() if k.startswith(prefix))
        return " ".join(f"{k}={float(v):.4g}" for k, v in items)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0:
            of = f"/{self.max_steps}" if self.max_steps > 0 else ""
            self._log(f"step {step}{of} epoch {trainer.current_epoch} "
                     f"{self._fmt(trainer.callback_metrics, 'train/')} "
                     f"({time.monotonic() - self.start:.0f} s)")

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._log(f"validation at step {trainer.global_step}: "
                     f"{self._fmt(trainer.callback_metrics, 'val/')}")


class StepCheckpoints(pl.Callback):
    """last.ckpt plus `step=N.ckpt` every n steps / `epoch=E-step=N.ckpt` every n epochs, and
    the time budget. A step's checkpoint is written after its logging and, when validation
    runs at that step, after the validation (so a resume never misses or repeats either).
    Training always validates at its final step; the metrics of the latest validation travel
    in the checkpoint (they are the run's result when a resume finds nothing left to do)."""

    def __init__(self, ckpt_dir: Path, *, every_n_steps: int | None, every_n_epochs: int | None,
                 steps_per_epoch: int | None, max_steps: int, max_epochs: int | None,
                 val_due, budget_s: float | None, start: float, log: RunLog) -> None:
        self.dir, self.every_n_steps, self.every_n_epochs = ckpt_dir, every_n_steps, every_n_epochs
        self.spe, self.max_steps, self.max_epochs = steps_per_epoch, max_steps, max_epochs
        self.val_due, self.budget_s, self.start, self._log = val_due, budget_s, start, log
        self.pending: tuple[int, list[str], bool] | None = None
        self.paused_at: int | None = None
        self.last_val_step = -1
        self.last_val_metrics: dict[str, float] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"last_val_step": self.last_val_step, "last_val_metrics": self.last_val_metrics}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_val_step = int(state_dict["last_val_step"])
        self.last_val_metrics = dict(state_dict["last_val_metrics"])

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

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        names, final = self._names(step)
        pause = (not final and self.budget_s is not None
                 and time.monotonic() - self.start >= self.budget_s)
        if final:
            trainer.should_stop = True  # makes Lightning validate after this last step
        if names or final or pause:
            self.pending = (step, names, pause)
            if not self.val_due(step, final):
                self._save_pending(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.last_val_step = trainer.global_step
        self.last_val_metrics = _val_metrics(trainer.callback_metrics)
        if self.pending is not None and self.pending[0] == trainer.global_step:
            self._save_pending(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.pending is not None:  # a validation we expected did not run: save anyway
            self._save_pending(trainer)

    def _save_pending(self, trainer) -> None:
        step, names, pause = self.pending
        self.pending = None
        last = self.dir / ckpt_io.LAST
        if names:
            first = self.dir / names[0]
            trainer.save_checkpoint(first, weights_only=False)
            for extra in names[1:] + [ckpt_io.LAST]:
                atomic_copy(first, self.dir / extra, link=True)
        else:
            trainer.save_checkpoint(last, weights_only=False)
        if pause:
            self.paused_at = step
            self._log(f"paused at step {step}: time budget of {self.budget_s / 60:.1f} min used; "
                      f"{last} holds the state")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Leave before the next step rather than by `trainer.should_stop`, which would log an
        # extra row and run an extra validation that an uninterrupted run does not have.
        if self.paused_at is not None:
            raise _Pause()


# --- resume decision -------------------------------------------------------------------------

def _saved_config(ckpt: dict[str, Any]) -> dict[str, Any]:
    return dict(ckpt["hyper_parameters"].get("config", {}))


def _clear_run(run_dir: Path, ckpt_dir: Path) -> list[str]:
    removed = []
    for path in [*ckpt_dir.glob("*.ckpt"), run_dir / "final.ckpt", run_dir / "metrics.csv"]:
        if path.exists():
            path.unlink()
            removed.append(path.name)
    if (run_dir / "logs").exists():
        shutil.rmtree(run_dir / "logs")
        removed.append("logs/")
    return removed


def resolve_resume(run_dir: Path, config: ExperimentConfig, resume: str | os.PathLike | None,
                   restart: bool, log: RunLog) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint to resume from (None: fresh start), after the config check."""
    ckpt_dir = run_dir / "checkpoints"
    current = config.to_dict()
    if restart:
        if resume not in (None, "auto"):
            raise ValueError("restart=True starts over: it cannot be combined with a resume path")
        removed = _clear_run(run_dir, ckpt_dir)
        if removed:
            log(f"restart: removed {', '.join(removed)}")
        return None, None
    if resume in (None, "auto"):
        found = ckpt_io.find_resumable(ckpt_dir)
    else:
        path = Path(resume)
        try:
            found = (path, ckpt_io.load_checkpoint(path))
        except ckpt_io.CorruptCheckpoint as exc:
            warnings.warn(f"{exc}; falling back to the newest readable checkpoint in {path.parent}")
            found = ckpt_io.find_resumable(path.parent)
            if found is None:
                raise
    if found is None:
        return None, None
    path, ckpt = found
    diff = config_diff(_saved_config(ckpt), current)
    if diff:
        raise ConfigMismatch(
            f"{path} was trained with a different config ({'; '.join(diff)}). Use the same "
            f"flags to resume, another --default_root_dir, or --restart to start over.")
    return path, ckpt


# --- train -----------------------------------------------------------------------------------

# Lightning warnings that do not apply here (our loaders resume by global step; srun is
# the scheduler's business).
_QUIET = (".*does not have many workers.*", ".*dataloader is not resumable.*",
          ".*smaller than the logging interval.*", ".*IterableDataset.*__len__.*",
          ".*`srun` command is available.*", ".*`isinstance.treespec, LeafSpec.` is deprecated.*")


class _DropTip(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger from our logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def _quiet_lightning() -> None:
    lightning_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropTip) for f in lightning_log.filters):
        lightning_log.addFilter(_DropTip())


def _check_toy_schedule(config: ExperimentConfig) -> None:
    if config.task != "maze":
        for name in ("max_epochs", "lr_warmup_epochs"):
            if getattr(config, name):
                raise ValueError(
                    f"{name} does not apply to task {config.task}: the toy tasks draw fresh "
                    f"batches every step and have no epochs; use max_steps / lr_warmup_steps")
        if not config.max_steps:
            raise ValueError(f"task {config.task} is step-based: set max_steps")


def _loggers(run_dir: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=str(run_dir), name="logs", flush_logs_every_n_steps=1)]
    try:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard",
                                         version=loggers[0].version, default_hp_metric=False))
    except (ImportError, ModuleNotFoundError):
        pass
    return loggers


def _val_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith("val/")}


def _oom_message(config: ExperimentConfig, exc: BaseException) -> str:
    depth = (f"time_limit={config.time_limit}" if config.model_type == "act_rnn"
             else f"ut_max_hops={config.ut_max_hops}")
    return (f"out of memory while training {config.model_type} on {config.task} with "
            f"batch_size={config.batch_size}, hidden_size={config.hidden_size}, {depth} "
            f"({type(exc).__name__}). Reduce --batch_size (or --hidden_size, --{depth.split('=')[0]}"
            f"), or use --precision bf16-mixed.")


def train(config: ExperimentConfig | dict[str, Any], *, run_dir: str | os.PathLike,
          resume: str | os.PathLike | None = "auto", restart: bool = False,
          time_budget_min: float | None = None, accelerator: str = "auto",
          devices: int | str = 1, precision: str = "32-true", log_every_n_steps: int = 50,
          save_every_n_steps: int | None = None, save_every_n_epochs: int | None = 1,
          data_workers: int = 0, val_every_n_steps: int | None = None,
          val_every_n_epochs: int = 1, progress_bar: bool | None = None) -> dict[str, float]:
    """Train (or resume) one run in `run_dir`; returns the final validation metrics.

    Raises TrainingPaused when `time_budget_min` runs out (last.ckpt written), ConfigMismatch when
    run_dir holds another config's checkpoint, NonFiniteError, LockHeld.
    """
    start = time.monotonic()
    _quiet_lightning()
    if not isinstance(config, ExperimentConfig):
        config = make_config(dict(config))
    _check_toy_schedule(config)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    log = RunLog(run_dir / "train.log", echo=not progress_bar)
    with ckpt_io.RunLock(ckpt_dir, log=log), warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        return _train_locked(config, run_dir, ckpt_dir, log, start, resume=resume, restart=restart,
                             time_budget_min=time_budget_min, accelerator=accelerator,
                             devices=devices, precision=precision,
                             log_every_n_steps=log_every_n_steps,
                             save_every_n_steps=save_every_n_steps,
                             save_every_n_epochs=save_every_n_epochs, data_workers=data_workers,
                             val_every_n_steps=val_every_n_steps,
                             val_every_n_epochs=val_every_n_epochs, progress_bar=progress_bar)


def _train_locked(config, run_dir, ckpt_dir, log, start, *, resume, restart, time_budget_min,
                  accelerator, devices, precision, log_every_n_steps, save_every_n_steps,
                  save_every_n_epochs, data_workers, val_every_n_steps, val_every_n_epochs,
                  progress_bar) -> dict[str, float]:
    from pytorch_lightning.callbacks import EMAWeightAveraging
    from pytorch_lightning.plugins.environments import SLURMEnvironment

    from halting.data.modules import make_datamodule
    from halting.system import HaltingSystem

    final_path = run_dir / "final.ckpt"
    if not restart and resume in (None, "auto") and final_path.is_file():
        try:
            final = ckpt_io.load_checkpoint(final_path)
        except ckpt_io.CorruptCheckpoint:
            final = None
        if final is not None and _saved_config(final) == config.to_dict():
            log(f"already complete: {final_path} (step {final.get('global_step')})")
            return dict(final.get("metrics", {}))
    ckpt_path, ckpt = resolve_resume(run_dir, config, resume, restart, log)
    if ckpt_path is None:
        log(f"start {config.task}/{config.model_type}/{config.criterion} seed {config.seed} "
            f"(config {config.digest()}) on {socket.gethostname()} pid {os.getpid()}")
    else:
        log(f"resumed from {ckpt_path} at step {ckpt['global_step']} "
            f"on {socket.gethostname()} pid {os.getpid()}")
    if final_path.exists():
        final_path.unlink()  # a stale result of this config must not outlive a new attempt

    pl.seed_everything(config.seed, workers=True, verbose=False)
    data = make_datamodule(config, data_workers=data_workers)
    system = HaltingSystem(config.to_dict(), data.data_meta, code_version())
    spe = data.data_meta.get("steps_per_epoch") or None
    max_steps = config.max_steps or -1
    if spe is None:  # toy: one endless epoch, validation every n steps and at the end
        every = val_every_n_steps or max(1, min(1000, max_steps // 10))
        val_kw = {"val_check_interval": every, "check_val_every_n_epoch": None}

        def val_due(step: int, final: bool) -> bool:
            return final or step % every == 0
    else:  # maze: validation at the end of every n-th epoch, and at the end
        every = val_every_n_epochs
        val_kw = {"check_val_every_n_epoch": every}

        def val_due(step: int, final: bool) -> bool:
            epoch = (step - 1) // spe + 1  # 1-based epoch of this step
            return (final or step % spe == 0) and epoch % every == 0
    budget_s = None if time_budget_min is None else 60.0 * time_budget_min
    saver = StepCheckpoints(ckpt_dir, every_n_steps=save_every_n_steps,
                            every_n_epochs=save_every_n_epochs if spe else None,
                            steps_per_epoch=spe, max_steps=max_steps,
                            max_epochs=config.max_epochs, val_due=val_due, budget_s=budget_s,
                            start=start, log=log)
    callbacks: list[pl.Callback] = [Guard(), RNGState(config.seed),
                                    TextProgress(log, log_every_n_steps, max_steps)]
    if config.use_ema:
        callbacks.append(EMAWeightAveraging(decay=config.ema_decay, update_every_n_steps=1))
    callbacks.append(saver)
    plugins: list[Any] = [ckpt_io.AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    trainer = pl.Trainer(
        default_root_dir=str(run_dir), accelerator=accelerator, devices=devices,
        precision=precision, max_epochs=config.max_epochs if config.max_epochs else -1,
        max_steps=max_steps, logger=_loggers(run_dir), callbacks=callbacks,
        enable_checkpointing=False, enable_progress_bar=progress_bar,
        enable_model_summary=False, log_every_n_steps=log_every_n_steps,
        num_sanity_val_steps=0, deterministic=True if on_cpu else None,
        gradient_clip_val=config.grad_clip, plugins=plugins, **val_kw)
    try:
        trainer.fit(system, datamodule=data,
                    ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except _Pause:
        pass
    except NonFiniteError as exc:
        log(f"stopped: {exc}; the last finite checkpoint is kept in {ckpt_dir}")
        raise
    except (torch.OutOfMemoryError, MemoryError) as exc:
        log(f"stopped: {_oom_message(config, exc)}")
        raise RuntimeError(_oom_message(config, exc)) from exc
    finally:
        merge_metrics(run_dir)
    if saver.paused_at is not None:
        raise TrainingPaused(saver.paused_at, ckpt_dir / ckpt_io.LAST, (time.monotonic() - start) / 60)

    metrics = saver.last_val_metrics
    if saver.last_val_step != trainer.global_step:  # maze: max_steps in an unvalidated epoch
        metrics = _val_metrics(trainer.validate(system, datamodule=data, verbose=False)[0])
        merge_metrics(run_dir)
    final = {"state_dict": system.state_dict(), "hyper_parameters": dict(system.hparams),
             "global_step": trainer.global_step, "epoch": trainer.current_epoch,
             "metrics": metrics, "pytorch-lightning_version": pl.__version__}
    ckpt_io.atomic_save(final, final_path)
    log(f"complete at step {trainer.global_step}: "
        + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()) + f"; wrote {final_path}")
    return metrics
