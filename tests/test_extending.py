"""docs/extending.md's worked examples: a task (Majority) and a halting criterion (expected
steps), each one file plus its registration, train and evaluate through the whole pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import halting.criteria
import halting.tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs/examples"))
from expected_steps import ExpectedSteps  # noqa: E402
from majority import Majority, majority_batch  # noqa: E402


@pytest.fixture
def registered(monkeypatch):
    """The examples' registration lines: one entry in each registry, nothing else."""
    monkeypatch.setitem(halting.tasks.TASKS, "majority", Majority())
    monkeypatch.setitem(halting.criteria.CRITERIA, "expected_steps", ExpectedSteps)


def test_majority_batches_are_seeded_and_labelled_by_the_sign_of_the_sum():
    a, b = majority_batch(3, 5, 64, 9), majority_batch(3, 5, 64, 9)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["x"], majority_batch(3, 6, 64, 9)["x"])
    np.testing.assert_array_equal(a["y"], (a["x"].sum(1) > 0).astype(np.int64))
    np.testing.assert_array_equal(a["margin"], np.abs(a["x"].sum(1)))


def test_expected_steps_hand_computed():
    # lambda = 0.5, 0.5, (1 on the last step): p = 0.5, 0.25, 0.25; E[n] = 0.5 + 0.5 + 0.75
    crit = ExpectedSteps()
    logits = torch.tensor([[0.0, 0.0, 5.0]], requires_grad=True)
    states = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 2.0]])]
    r = crit.finish(crit.init_state(torch.ones(1, dtype=torch.bool)), logits, states, 3)
    torch.testing.assert_close(r.p[0], torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(r.cost, torch.tensor([1.75]))
    torch.testing.assert_close(r.state[0], torch.tensor([1.0, 0.75]))  # 0.5 s1 + .25 s2 + .25 s3
    r.cost.sum().backward()  # dE[n]/dlogit_1 = -lambda_1 (1 - lambda_1) (E[n | n > 1] - 1) < 0
    assert logits.grad[0, 0] < 0 and logits.grad[0, 2] == 0  # lambda_M = 1: no gradient


@pytest.mark.parametrize(
    "values",
    [
        {"task": "majority", "halting": "act"},
        {"task": "parity", "halting": "expected_steps"},
        {
            "task": "majority",
            "halting": "expected_steps",
            "model_type": "universal_transformer",
            "ut_act": True,
            "ut_max_hops": 3,
            "ut_key_depth": 8,
            "ut_value_depth": 8,
            "ut_filter_size": 8,
            "ut_embedding_size": 8,
            "ut_heads": 2,
        },
    ],
    ids=["majority-act", "parity-expected_steps", "majority-ut-expected_steps"],
)
def test_the_examples_train_and_evaluate(registered, tmp_path, values):
    from halting.evaluation.evaluate import evaluate
    from halting.training.train import train

    config = {"bits": 5, "hidden_size": 8, "batch_size": 16, "val_size": 32, "max_steps": 4}
    if values.get("model_type") != "universal_transformer":
        config["time_limit"] = 3
    config.update(values)
    metrics = train(config, run_dir=tmp_path / "run", progress_bar=False, val_every_n_steps=2)
    assert np.isfinite(metrics["val/loss_total"])
    report = evaluate(tmp_path / "run/final.ckpt", out_dir=tmp_path / "eval", device="cpu")
    saved = json.loads((tmp_path / "eval/eval.json").read_text())
    assert saved["task"] == values["task"] and saved["criterion"] == values["halting"]
    for mode in ("learned", "max_steps"):
        assert 0.0 <= saved[mode]["accuracy"] <= 1.0
        assert 1.0 <= saved[mode]["steps_mean"] <= 3.0
    assert report["max_steps"]["steps_mean"] == 3.0  # every unit runs M steps
