"""`halting doctor`: the runbook's step 3 ("check the GPU") as one command.

Prints the torch build (its CUDA and cuDNN versions), the GPUs torch sees with their memory and
bf16 support, a small CUDA matmul timed and checked against the CPU result, and the Slurm job's
resources when run inside a job. Exits 0 when what was asked works; exits 1 with one line on
stderr when a GPU was asked for (`--accelerator gpu`, or `CUDA_VISIBLE_DEVICES` / a Slurm GPU
allocation is present) and none works.

`check_accelerator(accelerator)` is the same check as a function, for training and evaluation
to refuse `--accelerator gpu` up front with one clear line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping

import torch

MATMUL_SIZE = 512  # side of the square fp32 matmul checked against the CPU
MATMUL_RTOL = 1e-2  # max error / max |value|: loose enough for TF32, tight enough for garbage
GPU_NAMES = ("gpu", "cuda")  # accelerator values that ask for a CUDA GPU
# CUDA_VISIBLE_DEVICES values that hide every GPU rather than name one.
NO_DEVICES = ("", "-1", "NoDevFiles", "none")
# Slurm variables set when the job or step holds GPUs (--gres=gpu:..., --gpus ...).
SLURM_GPU_VARS = (
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "SLURM_GPUS_ON_NODE",
    "SLURM_GPUS",
    "SLURM_GPUS_PER_NODE",
    "SLURM_GPUS_PER_TASK",
)
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_JOB_PARTITION",
    "CUDA_VISIBLE_DEVICES",
    "SLURM_CPUS_PER_TASK",
    "SLURM_MEM_PER_NODE",
    "SLURM_MEM_PER_CPU",
    "SLURM_JOB_GPUS",
    "SLURM_GPUS_ON_NODE",
    "SLURM_JOB_NODELIST",
)


def torch_build() -> str:
    """'torch 2.5.1+cu124 built for CUDA 12.4' or 'torch 2.5.1+cpu, a CPU-only build'."""
    if torch.version.cuda:
        return f"torch {torch.__version__} built for CUDA {torch.version.cuda}"
    return f"torch {torch.__version__}, a CPU-only build"


def _visible(env: Mapping[str, str]) -> str:
    value = env.get("CUDA_VISIBLE_DEVICES")
    return "unset" if value is None else repr(value) if value in NO_DEVICES else value


def gpu_requested(accelerator: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why a GPU is expected here (the flag, CUDA_VISIBLE_DEVICES or Slurm's GPU variables),
    or None. `--accelerator cpu` expects none whatever the environment says."""
    env = os.environ if env is None else env
    if accelerator in GPU_NAMES:
        return f"--accelerator {accelerator}"
    if accelerator == "cpu":
        return None
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in NO_DEVICES:
        return f"CUDA_VISIBLE_DEVICES={visible}"
    for name in SLURM_GPU_VARS:
        value = env.get(name, "").strip()
        if value and value not in ("0", "(null)", "N/A"):
            return f"a Slurm GPU allocation ({name}={value})"
    return None


def no_gpu_reason(env: Mapping[str, str] | None = None) -> str:
    """'no CUDA GPU is visible to torch (<build>[: <CUDA's error>]; CUDA_VISIBLE_DEVICES=...)'."""
    env = os.environ if env is None else env
    why = ""
    if torch.version.cuda:
        try:
            torch.cuda.init()  # a CUDA build says here why it sees no GPU (driver, devices)
        except Exception as exc:
            why = f": {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}"
    return (
        f"no CUDA GPU is visible to torch ({torch_build()}{why}; "
        f"CUDA_VISIBLE_DEVICES={_visible(env)})"
    )


def check_accelerator(accelerator: str) -> None:
    """Raise ValueError (one line) when `accelerator` asks for a CUDA GPU ("gpu", "cuda") and
    torch sees none; any other value passes."""
    if accelerator not in GPU_NAMES or torch.cuda.is_available():
        return
    raise ValueError(
        f"--accelerator {accelerator}: {no_gpu_reason()}; run `halting doctor "
        f"--accelerator gpu` on the GPU node to see why, or use --accelerator "
        f"auto or cpu"
    )


def matmul_check(device: str, n: int = MATMUL_SIZE) -> tuple[float, float]:
    """(seconds of one n x n fp32 matmul on `device` after a warm-up, its max error relative to
    the largest |value| of the same product computed on the CPU)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    expected = a @ b
    da, db = a.to(device), b.to(device)
    torch.cuda.synchronize(device)
    (da @ db).sum().item()  # warm-up: context, cuBLAS handle, kernel selection
    t0 = time.perf_counter()
    got = da @ db
    torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    error = (got.cpu() - expected).abs().max().item() / expected.abs().max().item()
    return seconds, error


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def gpu_lines() -> tuple[list[str], str | None]:
    """One line per GPU (name, memory, compute capability, bf16) and its matmul check; the
    first failure's one-line reason (None when every GPU works)."""
    lines, failure = [], None
    for i in range(torch.cuda.device_count()):
        try:
            props = torch.cuda.get_device_properties(i)
            with torch.cuda.device(i):
                bf16 = "yes" if torch.cuda.is_bf16_supported() else "no"
            lines.append(
                f"GPU {i}: {props.name}, {_gib(props.total_memory)}, compute "
                f"capability {props.major}.{props.minor}, bf16 {bf16}"
            )
            seconds, error = matmul_check(f"cuda:{i}")
        except Exception as exc:  # no kernel image for this GPU, driver too old, ECC error ...
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            lines.append(f"GPU {i}: FAILED: {first}")
            failure = failure or f"GPU {i} does not work: {first}"
            continue
        verdict = "ok" if error <= MATMUL_RTOL else "WRONG"
        lines.append(
            f"  matmul {MATMUL_SIZE}x{MATMUL_SIZE} fp32: {seconds * 1e3:.2f} ms, "
            f"max error vs CPU {error:.1e} of the largest value: {verdict}"
        )
        if verdict != "ok":
            failure = failure or (
                f"GPU {i} ({props.name}) computes a wrong matmul (error "
                f"{error:.1e} of the largest value, CPU as reference)"
            )
    return lines, failure


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def slurm_time_limit(env: Mapping[str, str]) -> str | None:
    """The job's time limit and time left: from SLURM_JOB_END_TIME (Slurm >= 23.02) or
    `squeue`; None when neither tells."""
    end, start = env.get("SLURM_JOB_END_TIME"), env.get("SLURM_JOB_START_TIME")
    if end and end.isdigit():
        limit = f"{_hms(int(end) - int(start))}, " if start and start.isdigit() else ""
        return f"{limit}{_hms(int(end) - time.time())} left"
    job = env.get("SLURM_JOB_ID")
    if not job or shutil.which("squeue") is None:
        return None
    try:
        done = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%l %L"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split()
    return f"{parts[0]}, {parts[1]} left" if done.returncode == 0 and len(parts) == 2 else None


def slurm_lines(env: Mapping[str, str]) -> list[str]:
    """The Slurm job's resources, one `NAME=value` per line; empty outside a job."""
    if not env.get("SLURM_JOB_ID"):
        return []
    lines = [f"  {name}={env[name]}" for name in SLURM_VARS if name in env]
    limit = slurm_time_limit(env)
    lines.append(f"  time limit: {limit or 'unknown (no SLURM_JOB_END_TIME, no squeue)'}")
    return ["Slurm job:", *lines]


def diagnose(
    accelerator: str, env: Mapping[str, str] | None = None
) -> tuple[list[str], str | None]:
    """The report's lines and, when a GPU was asked for and none works, the one-line reason."""
    env = os.environ if env is None else env
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    lines = [
        f"{torch_build()}; cuDNN {cudnn or 'none'}",
        f"CPU threads: torch uses {torch.get_num_threads()}, {cpus} usable by this process",
        f"CUDA_VISIBLE_DEVICES={_visible(env)}",
    ]
    failure = None
    if torch.cuda.is_available():
        lines.append(f"CUDA available: {torch.cuda.device_count()} GPU(s)")
        gpus, failure = gpu_lines()
        lines += gpus
    else:
        lines.append(
            f"CUDA available: no ({no_gpu_reason(env)})"
            if torch.version.cuda
            else "CUDA available: no"
        )
    lines += slurm_lines(env)
    wanted = gpu_requested(accelerator, env)
    if wanted and failure is None and not torch.cuda.is_available():
        hint = (
            ""
            if torch.version.cuda
            else "; install a CUDA build of torch (README: Installing on a GPU cluster)"
        )
        failure = f"{wanted} asks for a GPU, but {no_gpu_reason(env)}{hint}"
    if failure is not None and not wanted:
        lines.append(f"note: {failure} (no GPU was asked for: training runs on the CPU)")
        failure = None
    device = "cuda" if torch.cuda.is_available() and accelerator != "cpu" else "cpu"
    if failure is None:
        lines.append(f"ok: --accelerator {accelerator} trains on {device}")
    return lines, failure


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.description = (
        "Check torch, CUDA and the GPU (the runbook's step 3): versions, GPUs and their memory, "
        "bf16, a CUDA matmul against the CPU, the Slurm job's resources. Exit 1 with one line on "
        "stderr when a GPU is asked for (or allocated by Slurm) and none works."
    )
    parser.add_argument(
        "--accelerator",
        default="auto",
        choices=("auto", "cpu", "gpu"),
        help="what training will ask for; `gpu` on a GPU node (default auto: "
        "a GPU is expected when CUDA_VISIBLE_DEVICES or Slurm names one)",
    )


def run(args: argparse.Namespace, command: str) -> int:
    lines, failure = diagnose(args.accelerator)
    print("\n".join(lines), flush=True)
    if failure is not None:
        print(f"halting {command}: error: {failure}", file=sys.stderr)
        return 1
    return 0
