"""A real single-node Slurm cluster (scripts/slurm-local.sh) running Snakemake's Slurm executor.

Runs where it can install Debian's Slurm packages: as root with apt-get (CI does). Elsewhere the
module is skipped with the reason, so users' own test runs stay green. Set HALTING_SKIP_SLURM=1 to
skip it on purpose. Each cluster mode is brought up once per module and always torn down.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm-local.sh"
# Snakemake with the executor's status checks every 2 s (its backoff left runs idle for a minute)
PROMPT_SNAKEMAKE = Path(__file__).parent / "slurm_fixtures" / "snakemake_prompt_status.py"
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


def _up_args(mode: str) -> list[str]:
    """`up` of each mode. The node is as large as profiles/slurm's requests (4 CPUs and 32 GB
    per training job) with two fake A40s, whatever the machine: nothing enforces the sizes."""
    node = ["--cpus", "8", "--mem-mb", "65536", "--gpus", "2"]
    if mode == "accounting":
        return ["up", "--account", ACCOUNT, *node]
    return ["up", "--no-accounting", *node]


@pytest.fixture(scope="module", params=["accounting", "no-accounting"])
def cluster(request):
    """The local cluster in one mode; torn down after the module's tests of that mode."""
    mode = request.param
    # Nothing runs yet, or the other mode does: `down` must succeed either way.
    down = _script("down")
    assert down.returncode == 0, down.stdout + down.stderr
    request.addfinalizer(lambda: _script("down"))
    up = _script(*_up_args(mode))
    assert up.returncode == 0, f"slurm-local.sh up ({mode}) failed:\n{up.stdout}\n{up.stderr}"
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
    out = _script(*_up_args(cluster), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    status = _script("status", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"mode: {cluster}" in status.stdout
    assert "localhost p1* idle" in status.stdout
    assert "gpu:a40:2" in status.stdout


def test_switching_mode_needs_down(cluster):
    out = _script(*_up_args("accounting" if cluster == "no-accounting" else "no-accounting"))
    assert out.returncode != 0
    assert "run" in out.stderr and "down" in out.stderr, out.stderr
    assert _script("status").returncode == 0, "a refused switch must leave the cluster up"


def test_sbatch_gpu_job_completes(cluster, tmp_path):
    script_out = tmp_path / "job.out"
    job_id = _check(
        [
            "sbatch",
            "--parsable",
            "--wait",
            "--gres=gpu:a40:1",
            "-p",
            "p1",
            "-t",
            "2",
            "-o",
            str(script_out),
            "--wrap",
            "hostname; echo gpus=$CUDA_VISIBLE_DEVICES",
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
        assert job["TresPerNode"] == "gres:gpu:a40:1", job
        # Why clusters like this one need `slurm-status-command: squeue`:
        sacct = subprocess.run(["sacct", "-X", "-j", job_id], capture_output=True, text=True)
        assert "accounting storage is disabled" in (sacct.stdout + sacct.stderr)


def _run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake under `timeout -s INT`: a hang fails this test instead of stalling CI."""
    cmd = [
        "timeout",
        "-s",
        "INT",
        "-k",
        "30",
        str(SNAKEMAKE_LIMIT_S),
        sys.executable,
        str(PROMPT_SNAKEMAKE),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=SNAKEMAKE_LIMIT_S + 60)


def _failure_report(run: subprocess.CompletedProcess, workdir: Path) -> str:
    logs = [
        p for d in (".snakemake/slurm_logs", "logs") for p in sorted((workdir / d).rglob("*.log"))
    ]
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


# --- the project's workflow on profiles/slurm ------------------------------------------------

MAIL_USER = "ci@example.org"
# Two training jobs (one per task) and their evaluations; parity runs long enough to be paused.
WORKFLOW_CONFIG = {
    "datasets": {},
    "execution": {
        "accelerator": "cpu",
        "log_every_n_steps": 1,
        "save_every_n_steps": 4,
        "save_every_n_epochs": 1,
        "eval_batch_size": 64,
    },
    "experiments": {
        "slurm_parity": {
            "task": "parity",
            "model_type": "act_rnn",
            "halting": "act",
            "bits": 4,
            "hidden_size": 8,
            "time_limit": 4,
            "max_steps": 30,
            "batch_size": 8,
            "val_size": 32,
            "learning_rate": 1.0e-3,
            "seeds": [0],
        },
        "slurm_addition": {
            "task": "addition",
            "model_type": "act_rnn",
            "halting": "act",
            "sequence_length": 2,
            "max_digits": 2,
            "hidden_size": 8,
            "time_limit": 4,
            "max_steps": 12,
            "batch_size": 8,
            "val_size": 32,
            "learning_rate": 1.0e-3,
            "seeds": [0],
        },
    },
}
PAUSED = ("parity", "slurm_parity", 0)  # (task, experiment, seed) of the job that pauses
# Its first attempt has a 1 s time budget: it saves last.ckpt, exits 3, and the profile's
# `retries` resubmit it; later attempts get the profile's budget (runtime minus a margin).
PAUSE_RESOURCE = (
    f"train:time_budget_s=1 if attempt == 1 and wildcards.experiment == '{PAUSED[1]}' else 0"
)


def _profile_set_resources(wf: Path) -> list[str]:
    """profiles/slurm's set-resources as CLI entries: `--set-resources` on the command line
    replaces the profile's list, so the test's one addition goes with all of the profile's."""
    import yaml

    profile = yaml.safe_load((wf / "profiles/slurm/config.v8+.yaml").read_text())
    return [
        f"{rule}:{name}={value}"
        for rule, resources in profile["set-resources"].items()
        for name, value in resources.items()
    ]


def _run_workflow(wf: Path, *args: str, limit_s: int = 480) -> subprocess.CompletedProcess:
    env = {**os.environ, "HALTING_SLURM_ACCOUNT": ACCOUNT, "HALTING_MAIL_USER": MAIL_USER}
    cmd = [
        "timeout",
        "-s",
        "INT",
        "-k",
        "30",
        str(limit_s),
        sys.executable,
        str(PROMPT_SNAKEMAKE),
        *args,
    ]
    return subprocess.run(
        cmd, cwd=wf, env=env, capture_output=True, text=True, timeout=limit_s + 60
    )


def _sacct_run(run_id: str) -> list[dict[str, str]]:
    """Every job of one Snakemake run (the plugin names them by its run ID), oldest first."""
    cols = ["JobID", "State", "Comment", "Partition", "Account", "ReqTRES", "SubmitLine"]
    out = _check(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            "--name",
            run_id,
            "-S",
            "now-1days",
            "-o",
            ",".join(c + ("%2000" if c == "SubmitLine" else "") for c in cols),
        ]
    )
    jobs = [dict(zip(cols, line.split("|", len(cols) - 1))) for line in out.splitlines() if line]
    return sorted(jobs, key=lambda j: int(j["JobID"]))


def _weights(path: Path) -> dict:
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return {"global_step": ckpt["global_step"], "state_dict": ckpt["state_dict"]}


@pytest.mark.parametrize("cluster", ["accounting"], indirect=True)
def test_workflow_through_slurm_profile(cluster, tmp_path):
    """The tiny config with `--profile profiles/slurm` as users run it: every training and
    evaluation job goes through sbatch with the profile's request; a paused training job is
    resubmitted and resumes to the weights of an uninterrupted run; a rerun submits nothing."""
    from workflow_fixtures.wf import copy_workflow, write_yaml

    wf = copy_workflow(tmp_path / "wf", tiny=WORKFLOW_CONFIG)
    # The config goes in config.yaml itself: Snakemake 9.27 does not pass
    # --replace-workflow-config on to the jobs it submits, so with --configfile the jobs would
    # see config.yaml's experiments merged in (figures and summary would wait for them).
    write_yaml(wf / "config.yaml", WORKFLOW_CONFIG)
    args = [
        "--profile",
        "profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--set-resources",
        *_profile_set_resources(wf),
        PAUSE_RESOURCE,
    ]
    run = _run_workflow(wf, *args)
    assert run.returncode == 0, _failure_report(run, wf)
    run_id = re.search(r"SLURM run ID: (\S+)", run.stdout + run.stderr).group(1)

    pdf = wf / "results/summary.pdf"
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")

    # Every training and evaluation job went through sbatch, with the profile's request.
    jobs = _sacct_run(run_id)
    assert {j["Partition"] for j in jobs} == {"p1"}, jobs
    assert {j["Account"] for j in jobs} == {ACCOUNT}, jobs
    runs = [(b["task"], name, 0) for name, b in WORKFLOW_CONFIG["experiments"].items()]
    for rule in ("train", "evaluate"):
        for task, name, seed in runs:
            comment = f"rule_{rule}_wildcards_{task}_{name}_{seed}"
            mine = [j for j in jobs if j["Comment"] == comment]
            states = [j["State"] for j in mine]
            paused = rule == "train" and (task, name, seed) == PAUSED
            assert states == (["FAILED", "COMPLETED"] if paused else ["COMPLETED"]), (comment, jobs)
            for job in mine:
                assert "gres/gpu:a40=1" in job["ReqTRES"] and "cpu=4" in job["ReqTRES"], job
                line = job["SubmitLine"]
                assert line.count("--gres") == 1 and "--gres=gpu:a40:1" in line, line
                assert f"--mail-user={MAIL_USER}" in line and "--mail-type=END,FAIL" in line
    other = {j["Comment"] for j in jobs} - {
        f"rule_{r}_wildcards_{t}_{n}_{s}" for r in ("train", "evaluate") for t, n, s in runs
    }
    assert other == {"rule_figures", "rule_summary"}, other

    # The paused job resumed from its checkpoint, and its log says from which step.
    task, name, seed = PAUSED
    (ckpt_dir,) = (wf / f"checkpoints/{name}/seed{seed}").iterdir()
    log = (ckpt_dir / "train.log").read_text()
    paused_at = re.search(r"paused at step (\d+)", log)
    resumed_at = re.search(r"resumed from \S+ at step (\d+)", log)
    assert paused_at and resumed_at, log
    assert paused_at.group(1) == resumed_at.group(1), log
    assert 0 < int(paused_at.group(1)) < WORKFLOW_CONFIG["experiments"][name]["max_steps"]

    # Its weights equal those of the same run trained in one go (local profile, same threads).
    ref = copy_workflow(tmp_path / "ref", tiny=WORKFLOW_CONFIG)
    target = f"results/{task}/{name}/seed{seed}/final.ckpt"
    local = _run_workflow(
        ref,
        target,
        "--profile",
        "profiles/local",
        "--configfile",
        "tiny.yaml",
        "--replace-workflow-config",
        "--set-threads",
        "train=4",
        limit_s=300,
    )
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-5000:]
    assert (
        "paused"
        not in next((ref / "checkpoints" / name / f"seed{seed}").iterdir())
        .joinpath("train.log")
        .read_text()
    )
    got, want = _weights(wf / target), _weights(ref / target)
    assert got["global_step"] == want["global_step"]
    assert got["state_dict"].keys() == want["state_dict"].keys()
    for key, tensor in want["state_dict"].items():
        assert got["state_dict"][key].equal(tensor), key

    # A second invocation with nothing changed submits no job.
    again = _run_workflow(wf, *args)
    assert again.returncode == 0, _failure_report(again, wf)
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout + again.stderr
    assert "SLURM jobid" not in again.stdout + again.stderr
    rerun_id = re.search(r"SLURM run ID: (\S+)", again.stdout + again.stderr)
    assert rerun_id is None or _sacct_run(rerun_id.group(1)) == []


# A parity run far longer than the 1-minute Slurm limit of its first attempt.
WALLTIME_CONFIG = {
    "datasets": {},
    "execution": {
        "accelerator": "cpu",
        "log_every_n_steps": 500,
        "save_every_n_steps": None,
        "eval_batch_size": 64,
    },
    "experiments": {
        "slurm_long": {
            "task": "parity",
            "model_type": "act_rnn",
            "halting": "act",
            "bits": 4,
            "hidden_size": 8,
            "time_limit": 4,
            "max_steps": 10_000_000,
            "batch_size": 8,
            "val_size": 32,
            "learning_rate": 1.0e-3,
            "seeds": [0],
        },
    },
}


@pytest.mark.parametrize("cluster", ["accounting"], indirect=True)
def test_a_job_ended_by_the_slurm_time_limit_saves_on_sigterm_and_resumes(cluster, tmp_path):
    """Attempt 1: `-t 1` and our own budget disabled, so Slurm ends it (TIMEOUT): SIGTERM, then
    SIGKILL after KillWait. The SIGTERM makes it save last.ckpt and exit; `retries` resubmit it
    and attempt 2 resumes from that checkpoint (then pauses on a 5 s budget, the last retry)."""
    from workflow_fixtures.wf import copy_workflow, write_yaml

    wf = copy_workflow(tmp_path / "wf", tiny=WALLTIME_CONFIG)
    write_yaml(wf / "config.yaml", WALLTIME_CONFIG)
    profile = [e for e in _profile_set_resources(wf) if not e.startswith("train:runtime=")]
    run = _run_workflow(
        wf,
        "results/parity/slurm_long/seed0/final.ckpt",
        "--profile",
        "profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
        "--retries",
        "1",
        "--set-resources",
        *profile,
        "train:runtime=1 if attempt == 1 else 10",
        "train:time_budget_s=-1 if attempt == 1 else 5",
    )
    assert run.returncode != 0  # attempt 2 paused on its budget with no retry left
    run_id = re.search(r"SLURM run ID: (\S+)", run.stdout + run.stderr).group(1)
    states = [j["State"] for j in _sacct_run(run_id)]
    assert states[0] == "TIMEOUT" and len(states) == 2, (states, _failure_report(run, wf))
    (ckpt_dir,) = (wf / "checkpoints/slurm_long/seed0").iterdir()
    log = (ckpt_dir / "train.log").read_text()
    signalled = re.search(r"paused at step (\d+) \(signal SIGTERM\)", log)
    assert signalled, log[-3000:]
    assert re.search(rf"resumed from \S+last\.ckpt at step {signalled.group(1)} ", log), log
    assert "paused at step" in log.splitlines()[-1] and "(time budget" in log.splitlines()[-1]
