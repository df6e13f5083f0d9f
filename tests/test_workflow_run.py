"""The workflow for real, on the CPU: the tiny config end to end, a training job killed with
SIGKILL and resumed, and a training job that runs out of its time budget, exits 3 and is
retried. Each runs in a temporary copy of the workflow (tests/workflow_fixtures/wf.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workflow_fixtures.wf import TINY, copy_workflow, pending, snakemake, tiny_config, write_yaml

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

# One parity run long enough to be killed or paused half way (a few seconds of CPU).
LONG = {
    "datasets": {},
    "execution": {"accelerator": "cpu", "log_every_n_steps": 10, "save_every_n_steps": 10},
    "experiments": {
        "long_parity": {
            "task": "parity",
            "model_type": "act_rnn",
            "halting": "act",
            "bits": 4,
            "hidden_size": 16,
            "time_limit": 4,
            "max_steps": 300,
            "batch_size": 16,
            "val_size": 64,
            "learning_rate": 1.0e-3,
            "seeds": [0],
        },
    },
}
LONG_RUN = "results/parity/long_parity/seed0"


def need(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module)


def checkpoint_folder(wf: Path) -> Path:
    (folder,) = (wf / "checkpoints/long_parity/seed0").iterdir()
    return folder


def final_state(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_training(a: Path, b: Path) -> None:
    """Two published runs are the same run: equal weights, metrics and metrics.csv."""
    import pandas as pd
    import torch

    ca, cb = final_state(a / "final.ckpt"), final_state(b / "final.ckpt")
    assert ca["global_step"] == cb["global_step"]
    assert ca["metrics"] == cb["metrics"]
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, tensor in ca["state_dict"].items():
        assert torch.equal(tensor, cb["state_dict"][key]), key
    pd.testing.assert_frame_equal(
        pd.read_csv(a / "train_metrics.csv"), pd.read_csv(b / "train_metrics.csv")
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """long_parity trained in one go: the reference for the killed and the paused runs."""
    need("halting.training.train")
    wf = copy_workflow(tmp_path_factory.mktemp("uninterrupted") / "wf", tiny=LONG)
    snakemake(wf, f"{LONG_RUN}/final.ckpt", *TINY)
    return wf / LONG_RUN


# --- end to end ---------------------------------------------------------------------------------


def test_tiny_config_end_to_end(tmp_path: Path):
    need(
        "halting.training.train",
        "halting.evaluation.evaluate",
        "halting.data.maze",
        "halting.report.figures",
        "halting.report.summary",
    )
    wf = copy_workflow(tmp_path / "wf")
    snakemake(wf, *TINY, "--cores", "2")
    config = tiny_config()
    for name, block in config["experiments"].items():
        run = wf / f"results/{block['task']}/{name}/seed0"
        files = ["final.ckpt", "train_metrics.csv", "run.json", "eval.json", "per_example.parquet"]
        files += ["examples.npz"] if block["task"] == "maze" else []
        for f in files:
            assert (run / f).is_file() and (run / f).stat().st_size > 0, run / f
        meta = json.loads((run / "run.json").read_text())
        assert (meta["experiment"], meta["task"], meta["seed"]) == (name, block["task"], 0)
        assert meta["config"]["hidden_size"] == block["hidden_size"]
        for kind in ("train", "evaluate"):
            assert (wf / f"logs/{kind}/{block['task']}/{name}/seed0.log").is_file()
            assert (wf / f"logs/{kind}/{block['task']}/{name}/seed0.benchmark.tsv").is_file()
        (ckpt_dir,) = (wf / f"checkpoints/{name}/seed0").iterdir()
        assert "complete at step" in (ckpt_dir / "train.log").read_text()
    assert (wf / "data/maze-6x6/manifest.json").is_file()
    assert (wf / "logs/build_dataset/maze-6x6.log").is_file()
    figures = [p for p in (wf / "results/figures").iterdir() if not p.name.startswith(".")]
    assert {"training_parity.pdf", "training_addition.pdf", "training_maze.pdf"} <= {
        p.name for p in figures
    }
    assert all(p.suffix == ".pdf" and p.stat().st_size > 0 for p in figures)
    for suffix in ("pdf", "csv", "tex"):
        assert (wf / f"results/summary.{suffix}").stat().st_size > 0
    assert pending(wf, *TINY) == set()

    # An identical rebuild of the dataset retrains nothing.
    manifest = wf / "data/maze-6x6/manifest.json"
    before = manifest.read_bytes(), manifest.stat().st_mtime_ns
    snakemake(wf, "data/maze-6x6/manifest.json", *TINY, "--forcerun", "build_dataset")
    assert manifest.read_bytes() == before[0] and manifest.stat().st_mtime_ns > before[1]
    assert pending(wf, *TINY) == set()

    # Editing one experiment reruns its training and evaluation, the figures and the summary.
    config["experiments"]["tiny_maze"]["time_limit"] = 2
    write_yaml(wf / "tiny.yaml", config)
    run = "results/maze/tiny_maze/seed0"
    assert pending(wf, *TINY) == {
        f"{run}/{f}"
        for f in (
            "final.ckpt",
            "train_metrics.csv",
            "run.json",
            "eval.json",
            "per_example.parquet",
            "examples.npz",
        )
    } | {"results/figures", "results/summary.pdf", "results/summary.csv", "results/summary.tex"}


# --- resuming -------------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_sigkilled_training_resumes_and_equals_an_uninterrupted_run(
    tmp_path: Path, uninterrupted: Path
):
    wf = copy_workflow(tmp_path / "wf", tiny=LONG)
    args = [sys.executable, "-m", "snakemake", f"{LONG_RUN}/final.ckpt", *TINY]
    with open(tmp_path / "first.log", "w") as out:
        proc = subprocess.Popen(args, cwd=wf, stdout=out, stderr=subprocess.STDOUT)
    try:
        killed = None
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            ckpts = list((wf / "checkpoints").glob("long_parity/seed0/*/checkpoints/step=*.ckpt"))
            if not ckpts:
                continue
            trainers = [p for p in descendants(proc.pid) if ".train.py" in cmdline(p)]
            if trainers and not list((wf / "checkpoints").glob("long_parity/seed0/*/final.ckpt")):
                os.kill(trainers[-1], signal.SIGKILL)
                killed = trainers[-1]
        assert killed is not None, (tmp_path / "first.log").read_text()[-3000:]
        assert proc.wait(timeout=300) != 0  # the job failed: it was killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (wf / LONG_RUN / "final.ckpt").exists()

    snakemake(wf, f"{LONG_RUN}/final.ckpt", *TINY)
    log = (checkpoint_folder(wf) / "train.log").read_text()
    resumed = re.search(r"resumed from \S+last\.ckpt at step (\d+)", log)
    assert resumed and 0 < int(resumed.group(1)) < 300, log[-3000:]
    assert "resumed from" in (wf / "logs/train/parity/long_parity/seed0.log").read_text()
    assert_same_training(wf / LONG_RUN, uninterrupted)


def test_time_budget_pauses_exit_3_retry_resumes(tmp_path: Path, uninterrupted: Path):
    """A 1 s budget on the first attempt (none after): exit 3, Snakemake retries, it resumes."""
    wf = copy_workflow(tmp_path / "wf", tiny=LONG)
    proc = snakemake(
        wf,
        f"{LONG_RUN}/final.ckpt",
        *TINY,
        "--retries",
        "1",
        "--set-resources",
        "train:time_budget_s=1 if attempt == 1 else 0",
    )
    assert "non-zero exit status 3" in proc.stderr
    log = (checkpoint_folder(wf) / "train.log").read_text()
    paused = re.search(r"paused at step (\d+)", log)
    assert paused, log[-3000:]
    assert f"at step {paused.group(1)} " in log.split("paused at step", 1)[1]  # resumed there
    assert "complete at step 300" in log
    assert_same_training(wf / LONG_RUN, uninterrupted)


def test_forcerun_publishes_the_finished_run_again_without_retraining(
    tmp_path: Path, uninterrupted: Path
):
    wf = tmp_path / "wf"
    shutil.copytree(uninterrupted.parents[3], wf, symlinks=True)
    snakemake(wf, f"{LONG_RUN}/final.ckpt", *TINY, "--forcerun", "train")
    log = (checkpoint_folder(wf) / "train.log").read_text()
    assert log.count("start parity") == 1 and "already complete" in log
    assert_same_training(wf / LONG_RUN, uninterrupted)


def test_raising_max_steps_continues_the_checkpoint_and_reruns_only_what_depends(
    tmp_path: Path, uninterrupted: Path
):
    """max_steps 300 -> 400 in the config: the train job reruns (its params changed) in the same
    checkpoint folder and continues from step 300; its weights equal a 400-step run's."""
    import torch

    wf = tmp_path / "wf"
    shutil.copytree(uninterrupted.parents[3], wf, symlinks=True)
    longer = json.loads(json.dumps(LONG))
    longer["experiments"]["long_parity"]["max_steps"] = 400
    write_yaml(wf / "tiny.yaml", longer)
    dry = snakemake(wf, f"{LONG_RUN}/eval.json", *TINY, "--dry-run")
    assert re.search(r"train\s+1", dry.stdout) and "params" in dry.stdout.lower(), dry.stdout
    snakemake(wf, f"{LONG_RUN}/eval.json", *TINY)
    folder = checkpoint_folder(wf)  # still the one folder
    log = (folder / "train.log").read_text()
    assert log.count("start parity") == 1 and "continuing with new totals" in log, log[-2000:]
    assert re.search(r"resumed from \S+ at step 300", log) and "complete at step 400" in log
    ref = copy_workflow(tmp_path / "ref", tiny=longer)
    snakemake(ref, f"{LONG_RUN}/final.ckpt", *TINY)
    got = final_state(wf / LONG_RUN / "final.ckpt")
    want = final_state(ref / LONG_RUN / "final.ckpt")
    assert got["global_step"] == want["global_step"] == 400
    for key, tensor in want["state_dict"].items():
        assert torch.equal(got["state_dict"][key], tensor), key
    # back to 300: refused (a run is never shortened), saying what to do in the workflow
    write_yaml(wf / "tiny.yaml", LONG)
    refused = snakemake(wf, f"{LONG_RUN}/final.ckpt", *TINY, check=False)
    job_log = (wf / "logs/train/parity/long_parity/seed0.log").read_text()
    assert refused.returncode != 0 and "cannot be shortened" in job_log, job_log[-2000:]
    assert f"rm -r {folder.relative_to(wf)}" in job_log
