"""Smoke: every backbone x task x criterion trains a few steps on CPU, validates and evaluates."""

from __future__ import annotations

import itertools

import pytest
import torch

from halting import load_model
from halting.training.train import train

UT = dict(
    ut_embedding_size=8,
    ut_heads=2,
    ut_key_depth=8,
    ut_value_depth=8,
    ut_filter_size=16,
    ut_max_hops=3,
)
TASKS = {
    "parity": dict(bits=5, val_size=16),
    "addition": dict(sequence_length=3, max_digits=2, val_size=16),
    "maze": dict(),
}


def smoke_config(task: str, model_type: str, criterion: str, maze_dir) -> dict:
    cfg = dict(
        task=task,
        model_type=model_type,
        halting=criterion,
        hidden_size=8,
        batch_size=4,
        max_steps=3,
        seed=1,
        **TASKS[task],
    )
    if task == "maze":
        cfg["data_dir"] = str(maze_dir)
    if model_type == "act_rnn":
        cfg["time_limit"] = 3
    else:
        cfg.update(UT, ut_act=criterion != "fixed")
    return cfg


@pytest.mark.parametrize(
    "task,model_type,criterion",
    list(
        itertools.product(
            TASKS, ["act_rnn", "universal_transformer"], ["act", "pondernet", "fixed"]
        )
    ),
)
def test_trains_validates_and_reloads(task, model_type, criterion, request, tmp_path):
    maze_dir = request.getfixturevalue("tiny_maze_dir") if task == "maze" else None
    cfg = smoke_config(task, model_type, criterion, maze_dir)
    metrics = train(
        cfg, run_dir=tmp_path, progress_bar=False, log_every_n_steps=1, val_every_n_steps=3
    )
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert 0.0 <= metrics["val/accuracy"] <= 1.0
    model, info = load_model(tmp_path / "final.ckpt")
    assert info["model_type"] == model_type and info["criterion"] == criterion
    assert info["task"] == task
