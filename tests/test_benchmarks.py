"""benchmarks/scale.py and benchmarks/gpu.py stay runnable: scale.py's per-experiment function
at a tiny size for one timed step, its whole command on the smallest real experiment, the
projections' arithmetic, and gpu.py's skip without CUDA."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _fullsize  # noqa: E402
import scale  # noqa: E402

TINY_UT = {
    "hidden_size": 64,
    "ut_embedding_size": 8,
    "ut_key_depth": 16,
    "ut_value_depth": 16,
    "ut_filter_size": 64,
    "batch_size": 4,
}


def test_rehearse_tiny_maze_ut_one_step(tiny_maze_dir):
    r = scale.rehearse("maze_ut", data_dir=tiny_maze_dir, overrides=TINY_UT, steps=1, warmup=1)
    assert len(r["step_s_all"]) == 1 and r["step_s"] > 0 and r["val_batch_s"] > 0
    assert 1.0 <= r["ponder_steps"] <= r["max_ponder"] == 6  # ut_max_hops of config.yaml
    # weights as EMA average and as raw weights, AdamW's two moments: four copies at least
    weights = 4 * r["params"]
    assert 4 * weights <= r["ckpt_bytes"] < 4 * weights + 200_000
    assert r["data_meta"]["size"] == 6 and r["peak_rss_bytes"] > 0 and r["peak_cuda_bytes"] is None
    # the full run's schedule comes from config.yaml's dataset (1000 train, 1000 test mazes)
    assert (r["steps_per_epoch"], r["total_steps"]) == (250, 1000 * 250)
    # config.yaml's execution: a save every 25 epochs (6250 steps) and every 500 steps: 40 + 500
    # writes, 20 of them at the same step (multiples of 12500)
    assert (r["val_batches"], r["saves"]) == (1000 * 250, 520)
    assert r["save_s"] > 0
    compute_s = r["total_steps"] * r["step_s"] + r["val_batches"] * r["val_batch_s"]
    run_s = compute_s + 520 * r["save_s"]
    assert r["run_s"] == pytest.approx(run_s)
    assert r["chunks"] == math.ceil(run_s / (230 * 60))
    assert r["run_at_M_s"] == pytest.approx(compute_s * 6 / r["ponder_steps"] + 520 * r["save_s"])
    # keep 2 + 1 being written + last.ckpt + final.ckpt, as `halting train` states it
    assert r["disk_bound_bytes"] == 5 * r["ckpt_bytes"]


def test_scale_command_on_parity_fixed_at_full_size():
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "scale.py"),
            "--experiments",
            "parity_fixed",
            "--steps",
            "1",
            "--keep",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    header, line = done.stdout.splitlines()[1:3]
    assert header.split()[:3] == ["experiment", "step", "ex/s"] and "disk (keep 3)" in header
    cells = line.split()
    assert cells[0] == "parity_fixed" and "20.0/20" in cells  # fixed depth: all M = 20 steps
    assert "200000" in cells and "FAILED" not in done.stdout


def test_schedule_counts_validation_at_the_workflows_cadence():
    config = _fullsize.load_config()
    parity = _fullsize.experiment_config(config, "parity_act")
    plan = _fullsize.schedule(parity, None, {"save_every_n_steps": 500})
    # 200000 steps, validation every 1000 steps of ceil(1000 / 32) batches, a save every 500
    assert plan == {
        "steps_per_epoch": None,
        "total_steps": 200000,
        "val_batches_per_epoch": None,
        "val_batches": 200 * 32,
        "saves": 400,
        "saves_per_epoch": None,
    }
    spec = {**_fullsize.dataset_spec(config, "maze_act_rnn"), "aug": True}
    maze = _fullsize.experiment_config(config, "maze_act_rnn", data_dir="unused")
    execution = {"save_every_n_steps": 500, "save_every_n_epochs": 1}
    plan = _fullsize.schedule(maze, spec, execution)  # aug8: 8000 mazes in batches of 128
    # a save at every epoch end and every 500 steps; steps 31500 and 63000 are both
    assert plan == {
        "steps_per_epoch": 63,
        "total_steps": 63000,
        "val_batches_per_epoch": 8,
        "val_batches": 8000,
        "saves": 1000 + 126 - 2,
        "saves_per_epoch": 1124 / 1000,
    }


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.0123, "12 ms"),
        (4.56, "4.6 s"),
        (600, "10 min"),
        (3 * 3600, "3.0 h"),
        (5 * 86400, "5.0 d"),
    ],
)
def test_duration(seconds, text):
    assert _fullsize.duration(seconds) == text


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")
def test_gpu_benchmark_skips_without_cuda():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("no CUDA GPU: skipped")


# --- benchmarks/paper_goals.py ------------------------------------------------------------------


def _set_headline(run_dir: Path, value: float) -> None:
    import json

    ev = json.loads((run_dir / "eval.json").read_text())
    ev["learned"][ev["headline"]] = value
    (run_dir / "eval.json").write_text(json.dumps(ev))


def test_paper_goals_table_says_met_or_by_how_much_it_falls_short(tmp_path, capsys):
    import yaml

    sys.path.insert(0, str(Path(__file__).parent))
    import paper_goals
    from fixtures_runs import write_run

    root = Path(__file__).resolve().parents[1]
    preset = yaml.safe_load((root / "presets/paper-cpu.yaml").read_text())
    results = tmp_path / "results"
    names = preset["run_experiments"]
    for name in names[:-1]:  # the last experiment's run is missing
        block = preset["experiments"][name]
        model = block["model_type"]
        tau = block.get("time_penalty", block.get("ut_act_loss_weight"))
        for seed in block["seeds"]:
            run_dir = write_run(
                results, block["task"], (name, model, block["halting"], tau, 0.9, 3.0), seed
            )
            _set_headline(run_dir, {"parity16_act": 0.995 - 0.01 * seed}.get(name, 0.5))
    assert (
        paper_goals.main(
            [
                "--results",
                str(results),
                "--config",
                str(root / "presets/paper-cpu.yaml"),
                "--per-difficulty",
                "parity16_act",
                "maze12_act_rnn",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    rows = {
        line.split(" | ")[2] + " | " + line.split(" | ")[1]: line
        for line in out.splitlines()
        if line.startswith("| ") and (" | >= " in line or " | <= " in line)
    }
    # parity16_act seeds 99.5, 98.5, 97.5: mean 98.5% (short of 99 by 0.5), lowest 97.5% (met)
    assert "| 98.5% | short by 0.5 points |" in rows["mean accuracy over seeds | parity16_act"]
    assert "| 97.5% | met |" in rows["lowest seed's accuracy | parity16_act"]
    assert "| 50.0% | met |" in rows["accuracy | parity16_fixed1"]
    assert "| 50.0% | short by 45.0 points |" in rows["sequence accuracy | addition_graves_act"]
    assert f"missing run folders: {results}/maze/{names[-1]}/seed0" in out
    assert f"| {names[-1]} | 0 | missing |" in out
    # per difficulty: parity's 16 values as they are, the maze's path lengths in 8 bins
    parity = out[out.index("parity16_act (all seeds):") :].splitlines()
    assert parity[1] == "| difficulty | " + " | ".join(str(k) for k in range(1, 17)) + " |"
    assert (
        parity[5].startswith("| examples | ")
        and sum(map(int, parity[5][13:-2].split(" | "))) == 360
    )
    maze = out[out.index("maze12_act_rnn (all seeds):") :].splitlines()
    assert maze[1].count(" | ") == 8 and maze[1].split(" | ")[1] == "110-129"


@pytest.mark.parametrize(
    "sense, target, unit, value, text",
    [
        (">=", 0.99, "%", 0.985, "short by 0.5 points"),
        (">=", 0.99, "%", 0.99, "met"),
        ("<=", 0.60, "%", 0.62, "short by 2.0 points"),
        ("<=", -0.8, "", -0.9, "met"),
        (">=", 0.9, "", 0.5, "short by 0.400"),
        (
            ">=",
            0.9,
            "",
            math.nan,
            "short: undefined, the ponder steps (or the difficulty) do not vary",
        ),
    ],
)
def test_paper_goal_verdicts(sense, target, unit, value, text):
    import paper_goals

    goal = paper_goals.Goal("x", ("e",), "m", lambda g: value, sense, target, unit)
    assert paper_goals.verdict(goal, value) == text
    assert paper_goals.verdict(goal, value, measured=False) == "not measured"  # no runs
