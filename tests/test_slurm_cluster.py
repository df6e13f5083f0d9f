"""A real single-node Slurm cluster (scripts/slurm-local.sh) running Snakemake's Slurm executor.

Runs where it can install Debian's Slurm packages: as root with apt-get (CI does). Elsewhere the
module is skipped with the reason, so users' own test runs stay green. Set HALTING_SKIP_SLURM=1 to
skip it on purpose. Each cluster mode is brought up once per module and always torn down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm-local.sh"
FIXTURES = Path(__file__).resolve().parent / "slurm_fixtures"
ACCOUNT = "halting-ci"
MARK = "# Written by halting scripts/slurm-local.sh; 'down' stops the daemons."
# A hung Snakemake (e.g. status checks that never succeed) is interrupted after this many seconds.
SNAKEMAKE_LIMIT_S = 240


def _skip_reason() -> str | None:
    if os.environ.get("HALTING_SKIP_SLURM") == "1":
        return "HALTING_SKIP_SLURM=1"
    if not sys.platform.startswith("linux"):
        return "the local Slurm cluster needs Linux"
    if os.geteuid() != 0:
        return "the local Slurm cluster needs root (it installs packages and starts daemons)"
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        return "the local Slurm cluster needs apt-get (Debian or Ubuntu)"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and MARK not in conf.read_text(errors="replace"):
        return f"{conf} belongs to a real Slurm set-up; not replacing it"
    return None


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]


def _script(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


def _check(cmd: list[str], timeout: float = 60) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _scontrol_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (works without accounting while MinJobAge keeps the job)."""
    fields = {}
    for token in _check(["scontrol", "-o", "show", "job", job_id]).split():
        key, _, value = token.partition("=")
        fields[key] = value
    return fields


def _sacct_job(job_id: str, wait_s: float = 20) -> dict[str, str]:
    """The job's accounting record, once slurmdbd has all of it (it arrives asynchronously)."""
    cols = ["State", "Partition", "Account", "Comment", "ReqTRES", "ExitCode"]
    deadline = time.monotonic() + wait_s
    while True:
        out = _check(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", ",".join(cols)]).strip()
        job = dict(zip(cols, out.splitlines()[0].split("|"))) if out else {}
        if job.get("Partition") and job.get("State") not in (None, "PENDING", "RUNNING"):
            return job
        if time.monotonic() > deadline:
            return job
        time.sleep(0.5)


@pytest.fixture(scope="module", params=["accounting", "no-accounting"])
def cluster(request):
    """The local cluster in one mode; torn down after the module's tests of that mode."""
    mode = request.param
    # Nothing runs yet, or the other mode does: `down` must succeed either way.
    down = _script("down")
    assert down.returncode == 0, down.stdout + down.stderr
    request.addfinalizer(lambda: _script("down"))
    args = ["up", "--account", ACCOUNT] if mode == "accounting" else ["up", "--no-accounting"]
    up = _script(*args)
    assert up.returncode == 0, f"slurm-local.sh {' '.join(args)} failed:\n{up.stdout}\n{up.stderr}"
    print(up.stdout)
    return mode


def test_refuses_to_run_unprivileged():
    if shutil.which("runuser") is None:
        pytest.skip("runuser not available")
    out = subprocess.run(
        ["runuser", "-u", "nobody", "--", "bash", str(SCRIPT), "up"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "must run as root" in out.stderr


def test_up_again_and_status(cluster):
    again = ["up", "--account", ACCOUNT] if cluster == "accounting" else ["up", "--no-accounting"]
    out = _script(*again, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    status = _script("status", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"mode: {cluster}" in status.stdout
    assert "localhost p1* idle" in status.stdout
    assert "gpu:a40:1" in status.stdout


def test_switching_mode_needs_down(cluster):
    other = ["up"] if cluster == "no-accounting" else ["up", "--no-accounting"]
    out = _script(*other, timeout=120)
    assert out.returncode != 0
    assert "run" in out.stderr and "down" in out.stderr, out.stderr
    assert _script("status").returncode == 0, "a refused switch must leave the cluster up"


def test_sbatch_gpu_job_completes(cluster, tmp_path):
    script_out = tmp_path / "job.out"
    job_id = _check(
        [
            "sbatch", "--parsable", "--wait", "--gres=gpu:a40:1", "-p", "p1", "-t", "2",
            "-o", str(script_out), "--wrap", "hostname; echo gpus=$CUDA_VISIBLE_DEVICES",
        ],
        timeout=120,
    ).strip()
    assert job_id.isdigit(), job_id
    assert "gpus=0" in script_out.read_text()
    if cluster == "accounting":
        job = _sacct_job(job_id)
        assert job["State"] == "COMPLETED", job
        assert job["Partition"] == "p1"
        assert "gres/gpu:a40=1" in job["ReqTRES"], job
    else:
        job = _scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED", job
        assert job["Partition"] == "p1"
        assert "gpu:a40:1" in job["TresPerNode"], job
        # Why clusters like this one need `slurm-status-command: squeue`:
        sacct = subprocess.run(["sacct", "-X", "-j", job_id], capture_output=True, text=True)
        assert "accounting storage is disabled" in (sacct.stdout + sacct.stderr)


def _run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake under `timeout -s INT`: a hang fails this test instead of stalling CI."""
    cmd = [
        "timeout", "-s", "INT", "-k", "30", str(SNAKEMAKE_LIMIT_S),
        sys.executable, "-m", "snakemake", "--directory", str(workdir), *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=SNAKEMAKE_LIMIT_S + 60)


def _failure_report(run: subprocess.CompletedProcess, workdir: Path) -> str:
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    parts = [f"snakemake exited {run.returncode}", run.stdout[-4000:], run.stderr[-6000:]]
    parts += [f"--- {p}\n{p.read_text()[-2000:]}" for p in logs]
    return "\n".join(parts)


def test_snakemake_two_rules_through_slurm(cluster, tmp_path):
    args = [
        "-s", str(FIXTURES / "Snakefile"),
        "--executor", "slurm", "--jobs", "2",
        "--default-resources", "slurm_partition=p1", f"slurm_account={ACCOUNT}",
        "mem_mb=500", "runtime=5",
        "--slurm-init-seconds-before-status-checks", "2",
    ]  # fmt: skip
    if cluster == "no-accounting":
        args += ["--slurm-status-command", "squeue"]
    run = _run_snakemake(tmp_path, *args)
    assert run.returncode == 0, _failure_report(run, tmp_path)

    lines = (tmp_path / "gpu.txt").read_text().split("\n")
    cpu_job = lines[0].split()[0].removeprefix("job=")
    gpu_job = lines[1].split()[0].removeprefix("job=")
    assert lines[0].endswith("partition=p1")
    assert lines[1].endswith("gpus=0"), "the gpu rule's job did not get the (fake) A40"
    assert cpu_job != gpu_job
    for job_id, rule in [(cpu_job, "cpu"), (gpu_job, "gpu")]:
        if cluster == "accounting":
            job = _sacct_job(job_id)
            assert (job["State"], job["Partition"], job["Account"]) == ("COMPLETED", "p1", ACCOUNT)
            assert job["Comment"] == f"rule_{rule}"
            assert ("gres/gpu:a40=1" in job["ReqTRES"]) == (rule == "gpu"), job
        else:
            job = _scontrol_job(job_id)
            assert (job["JobState"], job["Partition"]) == ("COMPLETED", "p1")
            assert job["Comment"] == f"rule_{rule}"
            assert ("gpu:a40:1" in job.get("TresPerNode", "")) == (rule == "gpu"), job
