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

import contextlib
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import halting
from halting.config import RUNBOOK_NAMES, ExperimentConfig, make_config
from halting.tasks import get_task
from halting.training import checkpoint as ckpt_io
from halting.training.callbacks import (
    Guard,
    NonFiniteError,
    PauseFit,
    RNGState,
    StepCheckpoints,
    StopSignals,
    TerminalProgress,
    TextProgress,
    val_metrics,
)
from halting.training.checkpoint import _saves, checkpoint_bytes, disk_bound
from halting.training.lightning_setup import _QUIET, _loggers, _quiet_lightning
from halting.training.resume import (
    ConfigMismatch,
    _normalised,
    _saved_config,
    merge_metrics,
    resolve_resume,
)
from halting.training.runlog import RunLog

PAUSED_EXIT = 3


class TrainingPaused(Exception):
    """The time budget ran out or a stop signal came: last.ckpt holds the state; run the same
    command to resume."""

    def __init__(self, step: int, ckpt_path: Path, minutes: float, reason: str) -> None:
        super().__init__(
            f"paused at step {step} after {minutes:.1f} min ({reason}): "
            f"resume from {ckpt_path} by running the same command again"
        )
        self.step, self.reason = step, reason


def code_version() -> str:
    """The package version, as the workflow's run.json records it (`halting.__version__`)."""
    return halting.__version__


# --- train -----------------------------------------------------------------------------------


def _check_toy_schedule(config: ExperimentConfig) -> None:
    if get_task(config.task).counts_epochs:
        return
    for name in ("max_epochs", "lr_warmup_epochs"):
        if getattr(config, name):
            raise ValueError(
                f"{name} does not apply to task {config.task}: the toy tasks draw fresh "
                f"batches every step and have no epochs; use max_steps / lr_warmup_steps"
            )
    if not config.max_steps:
        raise ValueError(f"task {config.task} is step-based: set max_steps")


def _validation_schedule(
    spe: int | None, max_steps: int, val_every_n_steps: int | None, val_every_n_epochs: int
) -> tuple[dict[str, Any], Callable]:
    """The Trainer's validation arguments and `val_due(step, final)`: whether validation runs
    after optimiser step `step` (StepCheckpoints writes that step's checkpoint after it).

    Toy tasks (`spe` None): one endless epoch, validation every n steps (default: a tenth of
    the run, at most 1000) and at the end. Maze: at the end of every n-th epoch, and at the end.
    """
    if spe is None:
        every = val_every_n_steps or max(1, min(1000, max_steps // 10))

        def toy_due(step: int, final: bool) -> bool:
            return final or step % every == 0

        return {"val_check_interval": every, "check_val_every_n_epoch": None}, toy_due

    def maze_due(step: int, final: bool) -> bool:
        epoch = (step - 1) // spe + 1  # 1-based epoch of this step
        return (final or step % spe == 0) and epoch % val_every_n_epochs == 0

    return {"check_val_every_n_epoch": val_every_n_epochs}, maze_due


def _oom_message(config: ExperimentConfig, exc: BaseException) -> str:
    depth = f"{RUNBOOK_NAMES[config.model_type]['M']}={config.max_ponder}"  # the flag users know
    return (
        f"out of memory while training {config.model_type} on {config.task} with "
        f"batch_size={config.batch_size}, hidden_size={config.hidden_size}, {depth} "
        f"({type(exc).__name__}). Reduce --batch_size (or --hidden_size, --{depth.split('=')[0]}"
        f"), or use --precision bf16-mixed."
    )


def _stop_note(ckpt_dir: Path) -> str:
    """What a failed run leaves to resume from."""
    found = ckpt_io.find_resumable(ckpt_dir)
    if found is None:
        return f"no checkpoint was written before it (nothing to resume in {ckpt_dir})"
    return f"the newest checkpoint, {found[0]} (step {found[1].get('global_step')}), is kept"


@contextlib.contextmanager
def _failures_logged(log: RunLog, config: ExperimentConfig, ckpt_dir: Path):
    """Ends train.log with `failed: <cause>` for every way out of a started run but a pause
    (logged as such) and a refused config (the folder's own run is untouched)."""
    try:
        yield
    except (TrainingPaused, ConfigMismatch):
        raise
    except NonFiniteError as exc:
        log(f"failed: {exc}; {_stop_note(ckpt_dir)}")
        raise
    except (torch.OutOfMemoryError, MemoryError) as exc:
        message = _oom_message(config, exc)
        log(f"failed: {message}")
        raise RuntimeError(message) from exc
    except BaseException as exc:
        cause = (
            "interrupted (Ctrl-C)"
            if isinstance(exc, KeyboardInterrupt)
            else (f"{type(exc).__name__}: {exc}".splitlines()[0])
        )
        log(f"failed: {cause}")
        raise


def train(
    config: ExperimentConfig | dict[str, Any],
    *,
    run_dir: str | os.PathLike,
    resume: str | os.PathLike | None = "auto",
    restart: bool = False,
    time_budget_min: float | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    precision: str = "32-true",
    log_every_n_steps: int = 50,
    save_every_n_steps: int | None = None,
    save_every_n_epochs: int | None = 1,
    keep_checkpoints: int = 2,
    save_last_every_min: float | None = 5.0,
    data_workers: int = 0,
    val_every_n_steps: int | None = None,
    val_every_n_epochs: int = 1,
    progress_bar: bool | None = None,
) -> dict[str, float]:
    """Train (or resume, or extend to new totals) one run in `run_dir`; returns the final
    validation metrics.

    Raises TrainingPaused when `time_budget_min` runs out or SIGTERM/SIGUSR1 arrives (last.ckpt
    written), ConfigMismatch when run_dir holds another config's checkpoint, NonFiniteError,
    LockHeld. Every other way out of a started run ends train.log with a `failed:` line.
    """
    start = time.monotonic()
    _quiet_lightning()
    if not isinstance(config, ExperimentConfig):
        config = make_config(dict(config))
    _check_toy_schedule(config)
    if keep_checkpoints < -1:
        raise ValueError(
            f"--keep_checkpoints must be -1 (keep all), 0 (none) or a count; got {keep_checkpoints}"
        )
    from halting.doctor import check_accelerator

    check_accelerator(accelerator)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    log = RunLog(run_dir / "train.log", echo=not progress_bar)
    with (
        ckpt_io.RunLock(ckpt_dir, log=log),
        warnings.catch_warnings(),
        StopSignals() as stop,
        _failures_logged(log, config, ckpt_dir),
    ):
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        from pytorch_lightning.callbacks import EMAWeightAveraging
        from pytorch_lightning.plugins.environments import SLURMEnvironment
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        from halting.training.system import HaltingSystem

        final_path = run_dir / "final.ckpt"
        if not restart and resume in (None, "auto") and final_path.is_file():
            try:
                final = ckpt_io.load_checkpoint(final_path, mmap=True)  # its metadata only
            except ckpt_io.CorruptCheckpoint:
                final = None
            if final is not None and (
                _normalised(_saved_config(final)) == _normalised(config.to_dict())
            ):
                log(f"already complete: {final_path} (step {final.get('global_step')})")
                return dict(final.get("metrics", {}))
        ckpt_path, ckpt = resolve_resume(run_dir, config, resume, restart, log)
        if ckpt_path is None:
            log(
                f"start {config.task}/{config.model_type}/{config.criterion} seed {config.seed} "
                f"(config {config.digest()}) on {socket.gethostname()} pid {os.getpid()}"
            )
        else:
            log(
                f"resumed from {ckpt_path} at step {ckpt['global_step']} "
                f"on {socket.gethostname()} pid {os.getpid()}"
            )
        if final_path.exists():
            final_path.unlink()  # a stale result of this config must not outlive a new attempt

        pl.seed_everything(config.seed, workers=True, verbose=False)
        data = get_task(config.task).datamodule(config, data_workers=data_workers)
        system = HaltingSystem(config, data.data_meta, code_version())
        spe = data.data_meta.get("steps_per_epoch") or None
        max_steps = config.max_steps or -1
        size = checkpoint_bytes(system, config.use_ema)
        bound, what = disk_bound(
            size, keep_checkpoints, _saves(config, spe, save_every_n_steps, save_every_n_epochs)
        )
        log(
            f"checkpoint size about {size / 1e6:.1f} MB; this run uses at most "
            f"{bound / 1e9:.2f} GB of disk for checkpoints ({what})"
        )
        val_kw, val_due = _validation_schedule(
            spe, max_steps, val_every_n_steps, val_every_n_epochs
        )
        budget_s = None if time_budget_min is None else 60.0 * time_budget_min
        last_every_s = None if save_last_every_min is None else 60.0 * save_last_every_min
        saver = StepCheckpoints(
            ckpt_dir,
            every_n_steps=save_every_n_steps,
            every_n_epochs=save_every_n_epochs,
            steps_per_epoch=spe,
            max_steps=max_steps,
            max_epochs=config.max_epochs,
            val_due=val_due,
            budget_s=budget_s,
            start=start,
            log=log,
            keep=keep_checkpoints,
            last_every_s=last_every_s,
            stop=stop,
        )
        callbacks: list[pl.Callback] = [
            Guard(),
            RNGState(config.seed),
            TextProgress(log, log_every_n_steps),
            stop,
        ]
        if progress_bar:
            callbacks.append(TerminalProgress(sys.stderr, get_task(config.task).headline))
        if config.use_ema:
            callbacks.append(EMAWeightAveraging(decay=config.ema_decay, update_every_n_steps=1))
        callbacks.append(saver)
        # fit restores from the checkpoint resolve_resume read (no second read); only fit keeps it
        plugins: list[Any] = [
            ckpt_io.AtomicCheckpointIO(
                preloaded=(ckpt_path, ckpt) if ckpt_path is not None else None
            )
        ]
        del ckpt
        if SLURMEnvironment.detect():
            plugins.append(SLURMEnvironment(auto_requeue=False))
        on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
        trainer = pl.Trainer(
            default_root_dir=str(run_dir),
            accelerator=accelerator,
            devices=devices,
            precision=precision,
            max_epochs=config.max_epochs if config.max_epochs else -1,
            max_steps=max_steps,
            logger=_loggers(run_dir),
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=log_every_n_steps,
            num_sanity_val_steps=0,
            deterministic=True if on_cpu else None,
            gradient_clip_val=config.grad_clip,
            plugins=plugins,
            **val_kw,
        )
        try:
            trainer.fit(
                system,
                datamodule=data,
                ckpt_path=str(ckpt_path) if ckpt_path else None,
                weights_only=True,
            )
        except PauseFit:
            pass
        except SIGTERMException:  # Lightning's own handler won before ours was back in place
            if saver.paused_at is None:
                raise RuntimeError(
                    f"stopped by {stop.received or 'SIGTERM'} before a checkpoint "
                    f"could be written; {_stop_note(ckpt_dir)}"
                ) from None
        finally:
            merge_metrics(run_dir)
        if saver.paused_at is not None:
            raise TrainingPaused(
                saver.paused_at,
                ckpt_dir / ckpt_io.LAST,
                (time.monotonic() - start) / 60,
                saver.pause_reason,
            )

        metrics = saver.last_val_metrics
        if saver.last_val_step != trainer.global_step:  # maze: max_steps in an unvalidated epoch
            metrics = val_metrics(trainer.validate(system, datamodule=data, verbose=False)[0])
            merge_metrics(run_dir)
        final = {
            "state_dict": system.state_dict(),
            "hyper_parameters": dict(system.hparams),
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "metrics": metrics,
            "train_seconds": saver.train_seconds(),
            "pytorch-lightning_version": pl.__version__,
        }
        ckpt_io.atomic_save(final, final_path)
        log(
            f"complete at step {trainer.global_step}: "
            + " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            + f"; wrote {final_path}"
        )
        return metrics
