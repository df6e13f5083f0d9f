"""Maze training on a tiny generated dataset: the runbook's maze commands (sections 5 and 6)
train, epochs resume exactly (mid-epoch and at epoch ends), load_model rebuilds maze models."""

from __future__ import annotations

import pytest
import torch
from test_train_cli import RUNBOOK, _args, _shrink

import halting
from halting.cli import main
from halting.config import make_config
from halting.data.maze import content_hash
from halting.data.maze_format import load_maze_split
from halting.data.modules import MazeDataModule, epoch_permutation
from halting.training.checkpoint import load_checkpoint
from halting.training.train import TrainingPaused, train


def _config(tiny_maze_dir, **extra):
    return {
        "task": "maze",
        "data_dir": str(tiny_maze_dir),
        "hidden_size": 8,
        "time_limit": 3,
        "batch_size": 4,
        "max_epochs": 2,
        "learning_rate": 3e-3,
        "seed": 1,
        **extra,
    }


def test_datamodule_meta_and_batches(tiny_maze_dir):
    dm = MazeDataModule(make_config(_config(tiny_maze_dir)))
    assert dm.data_meta == {
        "task": "maze",
        "vocab_size": 6,
        "seq_len": 36,
        "size": 6,
        "n_train": 10,
        "n_test": 4,
        "steps_per_epoch": 3,
        "data_dir": str(tiny_maze_dir),
        "dataset_hash": content_hash(tiny_maze_dir),
    }
    train_split = load_maze_split(tiny_maze_dir, "train")
    order = epoch_permutation(1, 1, 10)  # epoch 1 = global steps 3..5
    batch = dm.train_batch(4)
    assert batch["index"].tolist() == order[4:8].tolist()
    assert torch.equal(batch["inputs"], torch.from_numpy(train_split.inputs[order[4:8]]).long())
    assert batch["labels"].dtype == torch.int64 and dm.train_batch(5)["index"].shape == (2,)
    val = list(dm.val_dataloader())
    assert [b["index"].tolist() for b in val] == [[0, 1, 2, 3]]


@pytest.mark.parametrize(
    "name, restart", [("5-1 act_rnn maze", "6 act_rnn restart"), ("5-2 ut maze", "6 ut restart")]
)
def test_runbook_maze_commands_train_then_restart_command_resumes(
    name, restart, tiny_maze_dir, tmp_path
):
    run_dir = tmp_path / "run"
    argv = _shrink(_args(RUNBOOK[name]), run_dir, tiny_maze_dir) + ["--no-progress_bar"]
    assert main(["train", *argv, "--time_budget_min", "0"]) == 3  # paused after one step
    argv = _shrink(_args(RUNBOOK[restart]), run_dir, tiny_maze_dir) + ["--no-progress_bar"]
    assert main(["train", *argv]) == 0
    log = (run_dir / "train.log").read_text()
    assert "resumed from" in log and "complete at step 3" in log  # 1 epoch of 3 batches of 4
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert names == ["epoch=0000-step=00000003.ckpt", "last.ckpt"]
    model, info = halting.load_model(run_dir / "final.ckpt")
    assert info["task"] == "maze" and info["ema"] and info["data_meta"]["size"] == 6


def test_maze_pauses_at_every_step_resume_exactly(tiny_maze_dir, tmp_path):
    config = _config(tiny_maze_dir, use_ema=True, dropout=0.1, lr_warmup_epochs=1)
    runtime = {"progress_bar": False, "log_every_n_steps": 1}
    reference = train(config, run_dir=tmp_path / "a", **runtime)
    pauses = []
    while True:
        try:
            resumed = train(config, run_dir=tmp_path / "b", time_budget_min=0, **runtime)
            break
        except TrainingPaused as exc:
            pauses.append(exc.step)
    assert pauses == [1, 2, 3, 4, 5]  # across the epoch boundary at step 3
    assert resumed == reference and set(reference) >= {"val/exact_accuracy", "val/path_f1"}
    a = load_checkpoint(tmp_path / "a" / "final.ckpt")
    b = load_checkpoint(tmp_path / "b" / "final.ckpt")
    assert a["global_step"] == b["global_step"] == 6
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (tmp_path / "a" / "metrics.csv").read_text() == (
        tmp_path / "b" / "metrics.csv"
    ).read_text()
    names = sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("*.ckpt"))
    assert names == ["epoch=0000-step=00000003.ckpt", "epoch=0001-step=00000006.ckpt", "last.ckpt"]


@pytest.mark.parametrize(
    "extra, cls",
    [
        ({"rnn_encoder": "conv"}, "ACTRNN"),
        (
            {
                "model_type": "universal_transformer",
                "ut_act": True,
                "ut_max_hops": 2,
                "ut_embedding_size": 8,
                "ut_heads": 2,
                "ut_key_depth": 8,
                "ut_value_depth": 8,
                "ut_filter_size": 8,
                "time_limit": 16,
            },
            "UniversalTransformer",
        ),
    ],
)
def test_load_model_on_maze_models(tiny_maze_dir, tmp_path, extra, cls):
    config = _config(tiny_maze_dir, max_epochs=1, **extra)
    if config.get("model_type") == "universal_transformer":
        config.pop("time_limit")
    train(config, run_dir=tmp_path, progress_bar=False)
    model, info = halting.load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert type(model).__name__ == cls and not model.training
    inputs = torch.from_numpy(load_maze_split(tiny_maze_dir, "test").inputs).long()
    with torch.no_grad():
        out = model(inputs, mode="eval")
    assert out.logits.shape == (4, 36, 6)
