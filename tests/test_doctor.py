"""`halting doctor` and `check_accelerator` on this machine (a CUDA GPU or none), with the Slurm
environment of a job set by hand."""

from __future__ import annotations

import time

import pytest
import torch

from halting.cli import main
from halting.doctor import SLURM_GPU_VARS, check_accelerator, gpu_requested

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")
SLURM_JOB = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_PARTITION": "p1",
    "SLURM_CPUS_PER_TASK": "4",
    "SLURM_MEM_PER_NODE": "32000",
}


@pytest.fixture(autouse=True)
def outside_slurm(monkeypatch):
    """No GPU is expected unless a test says so: drop what the caller's shell or job set."""
    for name in (
        "CUDA_VISIBLE_DEVICES",
        "SLURM_JOB_ID",
        "SLURM_JOB_END_TIME",
        "SLURM_JOB_START_TIME",
        *SLURM_GPU_VARS,
    ):
        monkeypatch.delenv(name, raising=False)


def _doctor(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["doctor", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [[], ["--accelerator", "auto"], ["--accelerator", "cpu"]])
def test_cpu_or_auto_passes_and_prints_the_build(argv, capsys):
    code, out, err = _doctor(capsys, *argv)
    assert code == 0, err
    assert f"torch {torch.__version__}" in out and "cuDNN" in out and err == ""
    assert "CUDA available: " in out and "Slurm job" not in out
    assert out.rstrip().splitlines()[-1].startswith("ok: --accelerator")


@no_cuda
@pytest.mark.parametrize(
    "argv, env, asked",
    [
        (["--accelerator", "gpu"], {}, "--accelerator gpu"),
        ([], {"CUDA_VISIBLE_DEVICES": "0"}, "CUDA_VISIBLE_DEVICES=0"),
        ([], {"SLURM_JOB_GPUS": "1"}, "Slurm GPU allocation (SLURM_JOB_GPUS=1)"),
    ],
)
def test_a_gpu_asked_for_without_one_fails_with_one_line(argv, env, asked, capsys, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = _doctor(capsys, *argv)
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert asked in err and "no CUDA GPU is visible to torch" in err
    assert torch.__version__ in err and "ok:" not in out


def test_cpu_expects_no_gpu_whatever_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    assert gpu_requested("cpu") is None
    code, out, err = _doctor(capsys, "--accelerator", "cpu")
    assert code == 0 and err == "" and "trains on cpu" in out


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"CUDA_VISIBLE_DEVICES": ""}, None),  # every GPU hidden
        ({"CUDA_VISIBLE_DEVICES": "-1"}, None),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, None),  # Slurm's value when none was allocated
        ({"SLURM_GPUS_ON_NODE": "0"}, None),
        ({"CUDA_VISIBLE_DEVICES": "1,2"}, "CUDA_VISIBLE_DEVICES=1,2"),
        ({"SLURM_GPUS_PER_NODE": "a40:1"}, "a Slurm GPU allocation (SLURM_GPUS_PER_NODE=a40:1)"),
    ],
)
def test_gpu_requested_reads_the_environment(env, expected):
    assert gpu_requested("auto", env) == expected
    assert gpu_requested("gpu", env) == "--accelerator gpu"


@no_cuda
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_check_accelerator_refuses_a_missing_gpu_in_one_line(accelerator, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(ValueError) as info:
        check_accelerator(accelerator)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--accelerator {accelerator}: no CUDA GPU is visible to torch")
    assert "CUDA_VISIBLE_DEVICES=3" in message and "halting doctor" in message
    assert (
        f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    ) in message


@pytest.mark.parametrize("accelerator", ["auto", "cpu"])
def test_check_accelerator_passes_what_needs_no_gpu(accelerator):
    assert check_accelerator(accelerator) is None


def test_slurm_job_is_printed(monkeypatch, capsys):
    now = int(time.time())
    for name, value in {
        **SLURM_JOB,
        "SLURM_JOB_START_TIME": str(now - 60),
        "SLURM_JOB_END_TIME": str(now + 4 * 3600 - 60),
    }.items():
        monkeypatch.setenv(name, value)
    code, out, err = _doctor(capsys, "--accelerator", "cpu")
    assert code == 0, err
    block = out[out.index("Slurm job:") :]
    for name, value in SLURM_JOB.items():
        assert f"  {name}={value}\n" in block
    assert "CUDA_VISIBLE_DEVICES" not in block  # unset: not invented
    assert "time limit: 04:00:00, 03:5" in block  # 4 h, of which a minute spent


def test_slurm_time_limit_unknown_without_end_time_or_squeue(monkeypatch, capsys, tmp_path):
    for name, value in {**SLURM_JOB, "CUDA_VISIBLE_DEVICES": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", str(tmp_path))  # no squeue to ask
    code, out, _ = _doctor(capsys, "--accelerator", "cpu")
    assert code == 0
    assert "  CUDA_VISIBLE_DEVICES=0\n" in out and "time limit: unknown" in out
