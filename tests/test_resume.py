"""Kill-and-resume: real `halting train` processes killed with SIGKILL (and paused by the time
budget) end with the same weights, optimiser state and metrics.csv as a run never interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from halting.training.checkpoint import find_resumable, load_checkpoint

pytestmark = pytest.mark.slow

# Tiny parity run: dropout and PonderNet's sampled evaluation halting exercise every RNG, EMA
# the averaging state; the time penalty warms up so tau depends on the restored step.
FLAGS = [
    "--task",
    "parity",
    "--halting",
    "pondernet",
    "--bits",
    "4",
    "--hidden_size",
    "16",
    "--time_limit",
    "4",
    "--dropout",
    "0.1",
    "--batch_size",
    "8",
    "--max_steps",
    "60",
    "--val_size",
    "32",
    "--learning_rate",
    "3e-3",
    "--time_penalty_warmup_steps",
    "30",
    "--use_ema",
    "--ema_decay",
    "0.9",
    "--seed",
    "3",
    "--save_every_n_steps",
    "10",
    "--val_every_n_steps",
    "10",
    "--log_every_n_steps",
    "5",
    "--no-progress_bar",
]


def _command(run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "halting.cli",
        "train",
        *FLAGS,
        "--default_root_dir",
        str(run_dir),
        *extra,
    ]


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        _command(run_dir, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL `proc` as soon as `ready()` holds; fail if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"training ended before the kill point: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def _log_has(run_dir: Path, text: str):
    log = run_dir / "train.log"
    return lambda: log.exists() and text in log.read_text()


def _finish(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(run_dir, *extra), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _assert_same_run(a: Path, b: Path) -> None:
    fa, fb = load_checkpoint(a / "final.ckpt"), load_checkpoint(b / "final.ckpt")
    assert fa["state_dict"].keys() == fb["state_dict"].keys()
    for key, value in fa["state_dict"].items():
        assert torch.equal(value, fb["state_dict"][key]), key
    assert fa["metrics"] == fb["metrics"]
    la, lb = (
        load_checkpoint(a / "checkpoints/last.ckpt"),
        load_checkpoint(b / "checkpoints/last.ckpt"),
    )
    for key, value in la["current_model_state"].items():  # the raw (non-EMA) weights
        assert torch.equal(value, lb["current_model_state"][key]), key
    for sa, sb in zip(
        la["optimizer_states"][0]["state"].values(), lb["optimizer_states"][0]["state"].values()
    ):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference")
    _finish(run_dir)
    return run_dir


def test_sigkill_at_three_points_then_resume_equals_uninterrupted(reference, tmp_path):
    run_dir = tmp_path / "run"
    ckpts = run_dir / "checkpoints"
    # 1: right after the step-10 checkpoint lands (kill during the link to last.ckpt, the
    # validation or the next steps); 2: mid-way between checkpoints; 3: right after step 40's.
    _kill_when(_start(run_dir), lambda: (ckpts / "step=00000010.ckpt").exists())
    _kill_when(_start(run_dir), _log_has(run_dir, "step 25/60"))
    _kill_when(_start(run_dir), lambda: (ckpts / "step=00000040.ckpt").exists())
    assert find_resumable(ckpts)[1]["global_step"] >= 40
    # The runbook's restart form: the same flags plus --resume_ckpt .../last.ckpt.
    _finish(run_dir, "--resume_ckpt", str(ckpts / "last.ckpt"))
    log = (run_dir / "train.log").read_text()
    assert log.count("resumed from") == 3 and "complete at step 60" in log
    assert len(list((run_dir / "logs").glob("version_*"))) == 4  # each attempt's own CSV
    _assert_same_run(reference, run_dir)  # metrics.csv included: no row lost or repeated
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 12 + 6  # a train row every 5 steps, a val row every 10


def test_time_budget_pauses_with_exit_3_then_resumes_exactly(reference, tmp_path):
    run_dir = tmp_path / "run"
    # a budget of 6 ms: spent before the first step ends (Trainer set-up alone takes longer),
    # however fast the machine; 0.6 s let a fast run finish all 60 steps first
    paused = subprocess.run(
        _command(run_dir, "--time_budget_min", "0.0001"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert paused.returncode == 3, paused.stderr[-3000:]
    assert "PAUSED" in paused.stdout
    last = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    assert 0 < last["global_step"] < 60
    assert f"paused at step {last['global_step']}" in (run_dir / "train.log").read_text()
    assert not (run_dir / "final.ckpt").exists()
    _finish(run_dir)
    _assert_same_run(reference, run_dir)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_stop_signal_saves_exits_3_and_the_resume_is_exact(reference, tmp_path, sig):
    """Slurm's end of a job (SIGTERM at the walltime, scancel, preemption; SIGUSR1 as an early
    warning): the current step finishes, last.ckpt is written, exit 3; the rerun is exact."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _command(run_dir, "--save_every_n_steps", "1000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, deadline = _log_has(run_dir, "step 15/60"), time.monotonic() + 120
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.005)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err[-3000:]
    name = signal.Signals(sig).name
    assert "PAUSED" in out and f"signal {name}" in out
    last = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    assert 15 <= last["global_step"] < 60
    log = (run_dir / "train.log").read_text()
    assert f"paused at step {last['global_step']} (signal {name})" in log.splitlines()[-1]
    _finish(run_dir)
    _assert_same_run(reference, run_dir)


def test_without_periodic_files_a_killed_toy_run_resumes_from_the_refreshed_last_ckpt(
    reference, tmp_path
):
    """No --save_every_n_steps: last.ckpt is still refreshed (here every ~0.1 s)."""
    run_dir = tmp_path / "run"
    flags = [f for f in FLAGS]
    i = flags.index("--save_every_n_steps")
    del flags[i : i + 2]
    command = [
        sys.executable,
        "-m",
        "halting.cli",
        "train",
        *flags,
        "--default_root_dir",
        str(run_dir),
        "--save_last_every_min",
        "0.002",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, lambda: (run_dir / "checkpoints/last.ckpt").exists())
    assert find_resumable(run_dir / "checkpoints")[1]["global_step"] < 60
    _finish(run_dir)
    _assert_same_run(reference, run_dir)
