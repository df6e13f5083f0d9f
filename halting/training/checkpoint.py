"""Checkpoint files: atomic writes, safe reads, the newest readable one, the run lock, load_model,
and the disk a run's checkpoints take (checkpoint_bytes, disk_bound).

Our checkpoints hold plain types only (tensors, numbers, strings, lists, dicts), so every read
uses `torch.load(weights_only=True)` and never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from halting.io import atomic_write
from halting.training.runlog import owner_alive

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from halting.config import ExperimentConfig

LAST = "last.ckpt"
LOCK = "train.lock"
_STEP_RE = re.compile(r"step=(\d+)")


class CorruptCheckpoint(RuntimeError):
    """A checkpoint file that cannot be read (truncated, empty, not ours)."""

    @staticmethod
    def why(path: Path, exc: Exception) -> str:
        """One line on why torch.load(weights_only=True) refused `path`, from the file's bytes
        (torch's own message would advise `weights_only=False`, unsafe and beside the point)."""
        with open(path, "rb") as handle:
            head = handle.read(4)
        if head != b"PK\x03\x04":  # torch.save writes a zip archive
            kind = "an empty file" if not head else "not a zip file, as torch.save writes"
            return f"{path} is not a halting checkpoint ({kind})"
        if not zipfile.is_zipfile(path):
            return f"cannot read checkpoint {path}: cut short or damaged (an incomplete zip file)"
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("/data.pkl") for name in archive.namelist()):
                return f"{path} is not a halting checkpoint (a zip file not written by torch.save)"
        found = re.search(r"WeightsUnpickler error: (.*?)(\. Please .*)?$", str(exc), re.M)
        if found:  # e.g. "Unsupported global: GLOBAL argparse.Namespace was not an allowed ..."
            return (
                f"{path} is not a halting checkpoint (it holds more than tensors, numbers, "
                f"strings, lists and dicts: {found[1]})"
            )
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"cannot read checkpoint {path}: {type(exc).__name__}: {first}"


class LockHeld(RuntimeError):
    """Another live trainer is writing this run."""


# --- writing and reading ---------------------------------------------------------------------


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`:
    a reader sees the old file or the new one, never a half-written one."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO plugin: atomic writes, `weights_only=True` reads.

    `preloaded=(path, contents)`: a checkpoint already read (the resume decision reads it); the
    first load of that path returns these contents instead of reading the file a second time.
    """

    def __init__(self, preloaded: tuple[Path, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self._preloaded = preloaded

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        if self._preloaded is not None and Path(path) == Path(self._preloaded[0]):
            ckpt, self._preloaded = self._preloaded[1], None  # once: Lightning owns it now
            return ckpt
        return load_checkpoint(path, map_location=map_location or "cpu")


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; CorruptCheckpoint if unreadable or not ours.

    `mmap=True` maps the tensors' bytes instead of reading them: for a read of the metadata only
    (a cut or foreign file is still refused; damaged tensor bytes go unseen)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # truncated zip, empty file, foreign pickle: all mean unusable
        raise CorruptCheckpoint(CorruptCheckpoint.why(path, exc)) from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CorruptCheckpoint(
            f"{path} is not a halting checkpoint (a torch file without "
            "state_dict and hyper_parameters)"
        )
    return ckpt


def _name_step(path: Path) -> int:
    match = _STEP_RE.search(path.name)
    return int(match.group(1)) if match else -1


def periodic_files(ckpt_dir: str | os.PathLike) -> list[Path]:
    """The periodic `step=N` / `epoch=E-step=N` checkpoints in `ckpt_dir`, oldest first."""
    files = [p for p in Path(ckpt_dir).glob("*.ckpt") if p.is_file() and _STEP_RE.search(p.name)]
    return sorted(files, key=lambda p: (_name_step(p), p.stat().st_mtime))


def prune_periodic(ckpt_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest `keep` periodic checkpoints (keep < 0: delete none); returns
    the deleted paths. last.ckpt is a hard link or a copy of its own, never one of these."""
    if keep < 0:
        return []
    files = periodic_files(ckpt_dir)
    doomed = files[: max(0, len(files) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def find_resumable(ckpt_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable checkpoint in `ckpt_dir` and its contents, or None.

    last.ckpt, unless a periodic `step=N` file is newer (a kill between writing it and
    relinking last.ckpt). An unreadable file (a kill during a save on a full disk) gives a
    warning and the newest readable one instead.
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    periodic = periodic_files(ckpt_dir)[::-1]  # newest first
    skipped: list[str] = []
    best: tuple[Path, dict[str, Any]] | None = None
    if (ckpt_dir / LAST).is_file():
        try:
            best = (ckpt_dir / LAST, load_checkpoint(ckpt_dir / LAST))
        except CorruptCheckpoint as exc:
            skipped.append(str(exc))
    for path in periodic:
        if best is not None and _name_step(path) <= best[1].get("global_step", -1):
            break
        try:
            ckpt = load_checkpoint(path)
        except CorruptCheckpoint as exc:
            skipped.append(str(exc))
            continue
        if best is None or ckpt.get("global_step", -1) > best[1].get("global_step", -1):
            best = (path, ckpt)
        break
    if skipped:
        where = (
            f"resuming from {best[0]} instead" if best else f"no readable checkpoint in {ckpt_dir}"
        )
        warnings.warn(
            f"skipped unreadable checkpoint(s): {'; '.join(skipped)}; {where}", stacklevel=2
        )
    return best


# --- the run lock ----------------------------------------------------------------------------


class RunLock:
    """An exclusive lock file `<ckpt_dir>/train.lock` holding the owner's pid and host.

    A lock left by a dead process on this host is taken over (with a message); a live owner, or
    one on another host (whose liveness we cannot see), makes `acquire` raise LockHeld.
    """

    def __init__(self, ckpt_dir: str | os.PathLike, log=print) -> None:
        self.path = Path(ckpt_dir) / LOCK
        self.log = log
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        self.held = False

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.parent / f".{LOCK}.{os.getpid()}"
        tmp.write_text(json.dumps(self.owner))
        try:
            os.link(tmp, self.path)  # atomic, fails if the lock exists: never a half-written lock
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        for _ in range(3):
            if self._try_create():
                self.held = True
                return self
            other = self._read()
            if other is None:  # released between our attempt and the read
                continue
            pid, host = other.get("pid"), other.get("host")
            if not owner_alive(other):
                self.log(f"taking over stale lock {self.path} of dead process {pid} on {host}")
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            where = f"process {pid} on host {host}" if other else "an unknown process"
            raise LockHeld(
                f"lock file {self.path} is held by {where}: another trainer is writing this "
                f"run. Wait for it to end (or stop it); if that process is gone, delete "
                f"{self.path} and run again."
            )
        raise LockHeld(
            f"could not take lock file {self.path}: other trainers keep taking it; "
            "make sure only one trainer runs on this run folder"
        )

    def release(self) -> None:
        if self.held and self._read() == self.owner:
            self.path.unlink()
        self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# --- rebuilding a model ----------------------------------------------------------------------


def model_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The backbone's weights from a checkpoint's `state_dict` (the EMA weights when EMA was on:
    Lightning's EMAWeightAveraging stores the average there and the raw weights under
    `current_model_state`)."""
    prefix = "model."
    return {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


def load_model(path: str | os.PathLike, map_location: Any = "cpu"):
    """Rebuild the model of a checkpoint from the checkpoint alone -> (model in eval mode, info).

    `info` is the checkpoint's hyper_parameters (config, model_type, task, criterion, data_meta,
    code_version) plus `global_step`, `epoch` and `ema` (whether the weights are EMA weights).
    """
    from halting.config import make_config
    from halting.models import build_model

    ckpt = load_checkpoint(path, map_location=map_location)
    hparams = dict(ckpt["hyper_parameters"])
    config = make_config(hparams["config"], source=f"{path} hyper_parameters.config")
    model = build_model(config, hparams["data_meta"])
    model.load_state_dict(model_state_dict(ckpt))
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    model.eval()
    info = {
        **hparams,
        "global_step": ckpt.get("global_step"),
        "epoch": ckpt.get("epoch"),
        "ema": bool(hparams["config"].get("use_ema")),
    }
    return model, info


def checkpoint_bytes(system: pl.LightningModule, ema: bool) -> int:
    """Size of one resumable checkpoint, estimated before any is written: the weights, AdamW's
    two moments, and with EMA the raw weights besides the average (plus ~1% of metadata)."""
    tensors = [*system.parameters(), *system.buffers()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    return int(weights * (4 if ema else 3) * 1.01)


def disk_bound(ckpt_bytes: int, keep: int, saves: int | None) -> tuple[int, str]:
    """The most checkpoint bytes the run can hold at once, and what they are: `keep` periodic
    files (all `saves` of them when keep is -1), one more while the next is written before the
    oldest goes, a separate last.ckpt, and final.ckpt (weights only, counted as a full one)."""
    periodic = (saves or 0) if keep < 0 else min(keep, saves if saves is not None else keep)
    files = periodic + (1 if periodic else 0) + 2
    what = (
        f"{periodic} periodic (--keep_checkpoints {keep}) + 1 being written + " if periodic else ""
    ) + "last.ckpt + final.ckpt"
    return files * ckpt_bytes, what


def _saves(
    config: ExperimentConfig, spe: int | None, every_n_steps: int | None, every_n_epochs: int | None
) -> int | None:
    """How many periodic checkpoints the whole run writes (None: unbounded)."""
    total = config.max_steps or (config.max_epochs * spe if spe and config.max_epochs else None)
    if total is None:
        return None
    n = total // every_n_steps if every_n_steps else 0
    if spe and every_n_epochs:
        n += (total // spe) // every_n_epochs
    return n
