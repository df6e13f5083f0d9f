"""A run's plain-text log, `train.log`, and the run status read back from it.

`halting train` appends one line per event; the line that ends an attempt tells how it ended:

    start ...  /  resumed from ...        an attempt began
    complete at step N ...                 finished: final.ckpt written
    already complete: ...                  a rerun found nothing left to do
    paused at step N (time budget) ...     last.ckpt holds the state; the same command resumes
    paused at step N (signal SIGTERM) ...
    failed: <cause>                        stopped by an error (data, NaN, OOM, exception)

A log whose last such line is a start is either still running (its train.lock names a live
process) or was killed without a word (SIGKILL, power loss): `run_status` tells which.
Light on imports: the summary and the viewer read it without torch.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
_STEP = re.compile(r"step (\d+)")
# Line prefix (after the time stamp) -> the state it leaves the run in.
_EVENTS = (
    ("complete at step", "complete"),
    ("already complete", "complete"),
    ("paused at step", "paused"),
    ("failed:", "failed"),
    ("start ", "running"),
    ("resumed from", "running"),
)


class RunLog:
    """Appends time-stamped lines to `path` (train.log), echoing them to stdout when `echo`."""

    def __init__(self, path: Path, echo: bool) -> None:
        self.path, self.echo = Path(path), echo

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with open(self.path, "a") as handle:
            handle.write(line + "\n")
        if self.echo:
            print(line, flush=True)


@dataclass(frozen=True)
class RunStatus:
    """How a run stands: `state` is complete | paused | failed | running | killed | not started;
    `step` the step its last status line names (None if none); `line` that line."""

    state: str
    step: int | None
    line: str

    def __str__(self) -> str:
        if self.state == "failed":
            return self.line  # "failed: <cause>"
        at = f" at step {self.step}" if self.step is not None else ""
        return f"{self.state}{at}" + (f": {self.line}" if self.state == "killed" else "")


def owner_alive(owner: dict) -> bool:
    """Whether the owner {pid, host} of a train.lock may still run: a live pid on this host, or
    any owner on another host or without an integer pid (that cannot be seen from here)."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _lock_alive(run_dir: Path) -> bool:
    """Whether checkpoints/train.lock names an owner that may still run (see owner_alive)."""
    try:
        owner = json.loads((run_dir / "checkpoints" / "train.lock").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(owner, dict) and owner_alive(owner)


def run_status(run_dir: str | os.PathLike) -> RunStatus:
    """The status of the run in `run_dir` from its train.log (see the module docstring)."""
    run_dir = Path(run_dir)
    try:
        lines = (run_dir / "train.log").read_text().splitlines()
    except FileNotFoundError:
        return RunStatus("not started", None, "")
    progress: int | None = None  # the newest "step N/..." line after the status line
    for line in reversed(lines):
        text = _STAMP.sub("", line, count=1)
        if progress is None and text.startswith("step "):
            progress = int(_STEP.match(text).group(1))
        for prefix, state in _EVENTS:
            if text.startswith(prefix):
                found = _STEP.search(text) if state != "failed" else None
                step = int(found.group(1)) if found else None
                if state == "running":
                    step = progress if progress is not None else step
                    if not _lock_alive(run_dir):
                        state = "killed"
                        text = (
                            "ended without a final log line (killed: SIGKILL, out of "
                            "memory, a lost node)"
                        )
                return RunStatus(state, step, text)
    return RunStatus("not started", None, "")


def status_of(run_dir: str | os.PathLike) -> RunStatus | None:
    """The status of a run folder: its own train.log (a `halting train` folder), else that of
    the checkpoint folder its run.json names (a workflow result); None when neither exists."""
    run_dir = Path(run_dir)
    if (run_dir / "train.log").is_file():
        return run_status(run_dir)
    try:
        folder = json.loads((run_dir / "run.json").read_text()).get("checkpoint_dir")
    except (OSError, ValueError, AttributeError):
        return None
    if not folder:
        return None
    # run.json sits in <root>/results/<task>/<experiment>/seed<k>/; its path is relative to <root>
    path = Path(folder) if Path(folder).is_absolute() else run_dir.resolve().parents[3] / folder
    return run_status(path) if (path / "train.log").is_file() else None


def unfinished_runs(results_root: str | os.PathLike) -> list[tuple[Path, RunStatus]]:
    """The workflow's checkpoint folders (`<results_root>/../checkpoints/<experiment>/seed<k>/
    <hash>/`) whose run has not completed: paused, failed, killed or still running."""
    root = Path(results_root).resolve().parent / "checkpoints"
    found = []
    for log in sorted(root.glob("*/seed*/*/train.log")):
        status = run_status(log.parent)
        if status.state != "complete":
            found.append((log.parent, status))
    return found
