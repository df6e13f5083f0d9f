"""Run the Snakemake workflow in a temporary copy, so that tests never touch the repo's results/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent
WORKFLOW = (
    "Snakefile",
    "rules",
    "workflow_scripts",
    "envs",
    "schemas",
    "config.yaml",
    "profiles",
    "presets",
)
TINY = ["--profile", "profiles/local", "--configfile", "tiny.yaml", "--replace-workflow-config"]
SLURM_ENV = {"HALTING_SLURM_ACCOUNT": "acct42", "HALTING_MAIL_USER": "me@example.org"}


def copy_workflow(dst: Path, tiny: dict | None = None) -> Path:
    """The workflow files (and tiny.yaml, or `tiny` written in its place) under dst."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst / name)
    if tiny is None:
        shutil.copy2(FIXTURES / "tiny.yaml", dst / "tiny.yaml")
    else:
        write_yaml(dst / "tiny.yaml", tiny)
    return dst


def tiny_config() -> dict:
    return yaml.safe_load((FIXTURES / "tiny.yaml").read_text())


def write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def snakemake(
    cwd: Path, *args: str, env: dict | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`snakemake ARGS` in cwd with this interpreter; stdout and stderr captured as text."""
    full_env = {**os.environ, **(env or {})}
    for name in SLURM_ENV:  # only where a test sets them
        if env is None or name not in env:
            full_env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def summary(cwd: Path, *args: str, env: dict | None = None) -> dict[str, tuple[str, str]]:
    """`snakemake --summary`: output file -> (rule, plan)."""
    out = snakemake(cwd, *args, "--summary", env=env).stdout
    rows = [line.split("\t") for line in out.splitlines() if "\t" in line]
    header = rows[0]
    i_file, i_rule, i_plan = header.index("output_file"), header.index("rule"), header.index("plan")
    return {r[i_file]: (r[i_rule], r[i_plan]) for r in rows[1:]}


def pending(cwd: Path, *args: str, env: dict | None = None) -> set[str]:
    """Files whose jobs would run (plan `update pending` in --summary)."""
    return {f for f, (_, plan) in summary(cwd, *args, env=env).items() if plan == "update pending"}


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The `Job stats` table of a dry run: rule -> number of jobs."""
    lines = dry_run_output.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def fake_outputs(cwd: Path, *args: str) -> None:
    """Create every output of the DAG as a placeholder, then record Snakemake's metadata with
    `--touch --forceall`: the state after a complete run, without running a job."""
    for path, (rule, _) in summary(cwd, *args).items():
        target = cwd / path
        if path.endswith(("/train", "/test")) or path == "results/figures":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"placeholder of {rule}\n")
    snakemake(cwd, *args, "--touch", "--forceall")
