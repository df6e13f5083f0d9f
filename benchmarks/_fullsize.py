"""config.yaml's experiments at their full size for a few training steps: what
benchmarks/scale.py (CPU) and benchmarks/gpu.py (CUDA) share.

`measure` trains one experiment with the Trainer, callbacks and checkpoint plugin that
`training.train.train` uses (EMA when on), times each step after the warm-up, saves (and times)
a real resumable checkpoint (weights, AdamW state, EMA) at the last step and times one
validation batch; `project` turns that into the time of an epoch and of the whole run, in
230-minute Slurm chunks, and the disk the retention policy needs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from torch import Tensor

from halting.config import ExperimentConfig, make_config
from halting.criteria import criterion_class
from halting.tasks import get_task
from halting.training import checkpoint as ckpt_io
from halting.training.callbacks import Guard, RNGState
from halting.training.checkpoint import disk_bound
from halting.training.lightning_setup import _QUIET
from halting.training.system import HaltingSystem, batch_metrics
from halting.training.train import _validation_schedule, code_version

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config.yaml"
CHUNK_MIN = 230  # training minutes of one 4-hour Slurm job (profiles/slurm: 240 minus a margin)
WORKFLOW_KEYS = ("dataset", "seeds")  # experiment keys that are not ExperimentConfig fields
# Where a built Maze-Hard folder may already be (a reference copy next to the checkout).
MAZE_COPIES = (Path("/work/shared"), REPO.parent / "shared")
GENERATED = REPO / "benchmarks_out"  # fallback datasets are generated here (git-ignored)


def load_config(path: str | Path = CONFIG) -> dict[str, Any]:
    """config.yaml as a dict (`datasets`, `execution`, `experiments`)."""
    return yaml.safe_load(Path(path).read_text())


def dataset_spec(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The `datasets` entry of experiment `name` (None for the toy tasks)."""
    dataset = config["experiments"][name].get("dataset")
    return None if dataset is None else {"name": dataset, **config["datasets"][dataset]}


def experiment_config(
    config: dict[str, Any],
    name: str,
    data_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """The ExperimentConfig of experiment `name` and its first seed, as the workflow builds it
    (rules/common.smk: seed_config), with the maze's `data_dir` and `overrides` on top."""
    block = config["experiments"][name]
    values = {k: v for k, v in block.items() if k not in WORKFLOW_KEYS}
    values["seed"] = int(block.get("seeds", [0])[0])
    if block.get("dataset"):  # a maze: the workflow sets data_dir to data/<dataset>
        values["data_dir"] = str(data_dir)
    values.update(overrides or {})
    return make_config(values, source=f"experiment {name}")


def _maze_side(folder: Path) -> int | None:
    try:
        meta = json.loads((folder / "train" / "dataset.json").read_text())
    except (OSError, ValueError):
        return None
    return math.isqrt(int(meta["seq_len"]))


def maze_data_dir(
    spec: dict[str, Any], n_mazes: int, log=print, generated: Path = GENERATED
) -> Path:
    """A folder of `spec`'s maze side: the reference copy `<shared>/<dataset name>` when present,
    else one with `n_mazes` training and test mazes generated under `generated` (built once,
    then reused). Only the side matters here: step time and memory do not depend on which
    mazes they are."""
    size = int(spec["size"])
    for root in MAZE_COPIES:
        if _maze_side(root / spec["name"]) == size:
            return root / spec["name"]
    from halting.data.maze import build_dataset

    out = generated / f"maze-{size}x{size}-n{n_mazes}"
    if _maze_side(out) != size:
        log(
            f"no {spec['name']} copy in {', '.join(map(str, MAZE_COPIES))}: generating "
            f"{n_mazes} + {n_mazes} {size}x{size} mazes in {out}"
        )
        build_dataset(
            out,
            size=size,
            n_train=n_mazes,
            n_test=n_mazes,
            seed=0,
            force=True,
            progress=False,
            log=lambda *_: None,
        )
    return out


# --- one measured run ------------------------------------------------------------------------


class _StepClock(pl.Callback):
    """Marks the start of the first step and the end of every step (after EMA's update and a
    CUDA sync); at the last step notes the peak CUDA memory, saves the checkpoint and times one
    validation batch (the Trainer moves the model off the GPU once fit ends)."""

    def __init__(self, last_step: int, ckpt_path: Path, val_batch: dict[str, torch.Tensor]) -> None:
        self.last_step, self.ckpt_path, self.val_batch = last_step, ckpt_path, val_batch
        self.marks: list[float] = []
        self.loop_steps: list[Tensor | float] = []  # K of each training forward (`steps_run`)
        self.peak_cuda: int | None = None
        self.val_s = self.save_s = float("nan")

    def _now(self, device: torch.device) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.marks:
            self.marks.append(self._now(pl_module.device))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.marks.append(self._now(pl_module.device))
        if trainer.global_step < self.last_step:
            return
        if pl_module.device.type == "cuda":
            self.peak_cuda = torch.cuda.max_memory_allocated(pl_module.device)
        start = time.perf_counter()
        trainer.save_checkpoint(self.ckpt_path, weights_only=False)  # atomic: written, fsynced
        self.save_s = time.perf_counter() - start
        self.val_s = self._validation_batch(trainer, pl_module)

    def _validation_batch(self, trainer, system: HaltingSystem) -> float:
        """Seconds of one validation step's computation (forward, losses, metrics)."""
        batch = {k: v.to(system.device) for k, v in self.val_batch.items()}
        system.eval()
        try:
            with torch.no_grad(), trainer.precision_plugin.forward_context():
                runs = 2 if system.device.type == "cuda" else 1  # CUDA: a warm-up first
                for _ in range(runs):
                    start = self._now(system.device)
                    out = system(batch, mode="eval")
                    system._losses(batch, out)
                    batch_metrics(system.task, out, batch)
                    seconds = self._now(system.device) - start
        finally:
            system.train()
        return seconds


def steps_run(config: ExperimentConfig, out) -> Tensor | float:
    """Ponder steps K a training forward ran: all M for fixed depth and for PonderNet (it trains
    on every step); for ACT the batch's largest N (a loop runs until its last unit halts),
    averaged over the ACT-RNN's input steps (one loop each). A tensor stays on its device: no
    sync inside a timed step."""
    criterion = criterion_class(config.criterion)
    if criterion.runs_to_limit or not criterion.has_halting_unit:
        return float(config.max_ponder)
    steps = out.steps.detach().float() * out.unit_mask  # (B, U)
    if config.model_type == "universal_transformer":  # one loop over every position
        return steps.max()
    loops = out.unit_mask.any(0).float()  # (U,) the ACT-RNN's loops: its input steps
    return (steps.max(0).values * loops).sum() / loops.sum()


def measure(
    config: ExperimentConfig,
    *,
    accelerator: str = "cpu",
    precision: str = "32-true",
    steps: int = 3,
    warmup: int = 1,
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train `config` for `warmup + steps` steps on one device and measure: the median step
    time of the `steps` steps after the warm-up (data loading included), peak CUDA memory, the
    size of a resumable checkpoint saved at the last step, one validation batch's time."""
    import warnings

    from pytorch_lightning.callbacks import EMAWeightAveraging

    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps} and {warmup}")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp, warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        pl.seed_everything(config.seed, workers=True, verbose=False)
        data = get_task(config.task).datamodule(config)
        system = HaltingSystem(config.to_dict(), data.data_meta, code_version())
        val_batch = next(iter(data.val_dataloader()))  # the first, full-size batch
        clock = _StepClock(warmup + steps, Path(tmp) / "last.ckpt", val_batch)
        callbacks: list[pl.Callback] = [Guard(), RNGState(config.seed)]
        if config.use_ema:
            callbacks.append(EMAWeightAveraging(decay=config.ema_decay, update_every_n_steps=1))
        callbacks.append(clock)  # after EMA: a step ends once the average is updated
        system.model.register_forward_hook(
            lambda module, args, out: (
                clock.loop_steps.append(steps_run(config, out)) if module.training else None
            )
        )
        if accelerator != "cpu" and torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        trainer = pl.Trainer(
            default_root_dir=tmp,
            accelerator=accelerator,
            devices=1,
            precision=precision,
            max_steps=warmup + steps,
            max_epochs=-1,
            logger=False,
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            gradient_clip_val=config.grad_clip,
            plugins=[ckpt_io.AtomicCheckpointIO()],
        )
        trainer.fit(system, datamodule=data)
        times = [b - a for a, b in zip(clock.marks, clock.marks[1:])][warmup:]
        return {
            "step_s": statistics.median(times),
            "step_s_all": times,
            "ponder_steps": statistics.mean(float(k) for k in clock.loop_steps[warmup:]),
            "max_ponder": config.max_ponder,
            "val_batch_s": clock.val_s,
            "save_s": clock.save_s,
            "peak_cuda_bytes": clock.peak_cuda,
            "ckpt_bytes": (Path(tmp) / "last.ckpt").stat().st_size,
            "params": sum(p.numel() for p in system.parameters()),
            "batch_size": config.batch_size,
            "data_meta": data.data_meta,
        }


# --- projections -----------------------------------------------------------------------------


def _multiples(every: int | None, total: int) -> set[int]:
    return set(range(every, total + 1, every)) if every else set()


def schedule(
    config: ExperimentConfig, spec: dict[str, Any] | None, execution: dict[str, Any]
) -> dict[str, Any]:
    """The full run's optimiser steps, validation batches and checkpoint writes, as `halting
    train` schedules them with the workflow's settings (config.yaml's `execution`; validation
    every epoch, or at train's default step cadence for the toy tasks). The maze counts come
    from config.yaml's dataset entry, not from the folder measured."""
    B = config.batch_size
    every_steps = execution.get("save_every_n_steps")
    if get_task(config.task).counts_epochs:
        n_train = int(spec["n_train"]) * (8 if spec.get("aug") else 1)
        spe = math.ceil(n_train / B)
        total = config.max_steps or config.max_epochs * spe
        val_per_epoch = math.ceil(int(spec["n_test"]) / B)
        every_epochs = execution.get("save_every_n_epochs")
        # a step due for both files writes once (StepCheckpoints links the second); the last
        # step always writes
        saves = len(
            _multiples(every_steps, total) | _multiples(spe * (every_epochs or 0), total) | {total}
        )
        return {
            "steps_per_epoch": spe,
            "total_steps": total,
            "val_batches_per_epoch": val_per_epoch,
            "val_batches": math.ceil(total / spe) * val_per_epoch,
            "saves": saves,
            "saves_per_epoch": saves * spe / total,
        }
    total = config.max_steps
    every = _validation_schedule(None, total, None, 1)[0]["val_check_interval"]
    validations = math.ceil(total / every)  # every `every` steps and at the last one
    return {
        "steps_per_epoch": None,
        "total_steps": total,
        "val_batches_per_epoch": None,
        "val_batches": validations * math.ceil(config.val_size / B),
        "saves": len(_multiples(every_steps, total) | {total}),
        "saves_per_epoch": None,
    }


def project(measured: dict[str, Any], plan: dict[str, Any], keep: int) -> dict[str, Any]:
    """Epoch and full-run seconds (training steps, validation batches and checkpoint writes),
    the 230-minute chunks the run needs, and the checkpoint disk bound that `halting train`
    states at start (halting.training.checkpoint.disk_bound: the newest `keep` periodic files, one
    more while the next is written, last.ckpt and final.ckpt).

    The steps were timed at the ponder steps K the fresh network runs (ACT's halting bias gives
    N = 2); `run_at_M_s` scales the training steps by M / K, the bound for a network that learns
    to take all M steps (an over-estimate: embedding, read-out and optimiser do not scale)."""
    step, val, save = measured["step_s"], measured["val_batch_s"], measured["save_s"]
    steps_s = plan["total_steps"] * step
    other_s = plan["val_batches"] * val + plan["saves"] * save
    epoch_s = None
    if plan["steps_per_epoch"]:
        epoch_s = (
            plan["steps_per_epoch"] * step
            + plan["val_batches_per_epoch"] * val
            + plan["saves_per_epoch"] * save
        )
    run_at_m = (steps_s + plan["val_batches"] * val) * measured["max_ponder"] / max(
        measured["ponder_steps"], 1.0
    ) + plan["saves"] * save
    return {
        "examples_per_s": measured["batch_size"] / step,
        "epoch_s": epoch_s,
        "run_s": steps_s + other_s,
        "chunks": chunks(steps_s + other_s),
        "run_at_M_s": run_at_m,
        "chunks_at_M": chunks(run_at_m),
        "disk_bound_bytes": disk_bound(measured["ckpt_bytes"], keep, plan["saves"])[0],
    }


def chunks(seconds: float) -> int:
    """Slurm jobs of CHUNK_MIN training minutes that `seconds` of training need."""
    return math.ceil(seconds / (CHUNK_MIN * 60))


# --- printing --------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """'850 ms', '12.3 s', '45 min', '3.2 h', '4.1 d'."""
    if seconds is None or seconds != seconds:
        return "-"
    for unit, size, digits in (("d", 86400, 1), ("h", 3600, 1), ("min", 60, 0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.{digits}f} {unit}"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms"


def size(n_bytes: int | None) -> str:
    """'512 MB', '1.27 GB' (decimal units, as `ls -lh --si` and disk quotas count)."""
    if n_bytes is None:
        return "-"
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def row(
    r: dict[str, Any], keep: int, lead: dict[str, str], memory: tuple[str, int | None]
) -> dict[str, str]:
    """One table line of a measured and projected result `r`: the `lead` columns (experiment,
    precision ...), then step time, throughput, memory (`memory`: its column and bytes),
    checkpoint and disk, and the projections."""
    return {
        **lead,
        "step": duration(r["step_s"]),
        "ex/s": f"{r['examples_per_s']:.0f}",
        "val batch": duration(r["val_batch_s"]),
        "K/M": f"{r['ponder_steps']:.1f}/{r['max_ponder']}",
        memory[0]: size(memory[1]),
        "ckpt": size(r["ckpt_bytes"]),
        "save": duration(r["save_s"]),
        "saves": str(r["saves"]),
        f"disk (keep {keep})": size(r["disk_bound_bytes"]),
        "steps/epoch": str(r["steps_per_epoch"] or "-"),
        "steps": str(r["total_steps"]),
        "epoch": duration(r["epoch_s"]),
        "full run": duration(r["run_s"]),
        "jobs": str(r["chunks"]),
        "run at K=M": duration(r["run_at_M_s"]),
        "jobs at K=M": str(r["chunks_at_M"]),
    }


LEGEND = (
    f"step: median of the timed steps; K/M: ponder steps the fresh network's training loop "
    f"ran (ACT: the batch's largest N) of the limit M; save: one checkpoint write (atomic, "
    f"fsynced, here); epoch, full run: training steps, validation batches and checkpoint "
    f"writes (saves) at the workflow's cadence; jobs: 4-hour Slurm jobs of "
    f"{CHUNK_MIN} training minutes; run at K=M: scaled by M/K, an upper estimate for a "
    f"network that learns to ponder to the limit; disk: what `halting train` states at "
    f"start (keep periodic files + 1 being written + last.ckpt + final.ckpt)."
)


def parser(doc: str, steps: int, warmup: int) -> argparse.ArgumentParser:
    """The options both benchmarks take: --experiments, --steps, --warmup, --keep."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--experiments", nargs="+", help="names in config.yaml (default: all)")
    ap.add_argument(
        "--steps", type=int, default=steps, help=f"timed training steps (default {steps})"
    )
    ap.add_argument(
        "--warmup", type=int, default=warmup, help=f"untimed steps first (default {warmup})"
    )
    ap.add_argument(
        "--keep",
        type=int,
        default=2,
        help="periodic checkpoints kept (--keep_checkpoints N): the disk bound is "
        "(N + 2) x checkpoint, with last.ckpt and final.ckpt (default 2)",
    )
    return ap


def select(config: dict[str, Any], names: list[str] | None) -> list[str]:
    """`names` (default: every experiment of `config`); ValueError naming unknown ones."""
    names = names or list(config["experiments"])
    unknown = [n for n in names if n not in config["experiments"]]
    if unknown:
        raise ValueError(
            f"unknown experiments {', '.join(unknown)}; config.yaml has "
            f"{', '.join(config['experiments'])}"
        )
    return names


def table(rows: list[dict[str, str]]) -> str:
    """Rows of equal keys as an aligned text table (first column left, the rest right)."""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}

    def line(r: dict[str, str]) -> str:
        return "  ".join(
            r[k].ljust(widths[k]) if i == 0 else r[k].rjust(widths[k]) for i, k in enumerate(keys)
        )

    return "\n".join([line({k: k for k in keys}), *(line(r) for r in rows)])
