"""On a CUDA GPU (`make gpu-check`; skipped without one): the runbook's maze ACT-RNN and UT
(config.yaml's `maze_act_rnn` and `maze_ut` at their full size) train a few steps in fp32 and
bf16-mixed, resume on the GPU to the same bits as an uninterrupted run under deterministic
settings, and evaluate on the GPU as on the CPU.

Maze data: the reference copy of maze-30x30-hard-1k next to the checkout when present, else
128 + 128 generated 30x30 mazes (one batch per epoch).
"""

from __future__ import annotations

import os

# cuBLAS reads its workspace setting when it starts; ":4096:8" makes its GEMMs deterministic
# (https://docs.nvidia.com/cuda/cublas/#results-reproducibility). Set before any CUDA work.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import math  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import halting  # noqa: E402
from halting.config import make_config  # noqa: E402
from halting.evaluation.evaluate import evaluate_model, load_eval_data  # noqa: E402
from halting.training.checkpoint import load_checkpoint  # noqa: E402
from halting.training.train import TrainingPaused, train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _fullsize  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

MAZES = ("maze_act_rnn", "maze_ut")
STEPS = 3  # optimiser steps of every run here
RUNTIME = {"accelerator": "gpu", "progress_bar": False, "log_every_n_steps": 1}


@pytest.fixture(scope="module")
def config_yaml() -> dict:
    return _fullsize.load_config()


@pytest.fixture(scope="module")
def maze_dir(config_yaml, tmp_path_factory) -> Path:
    spec = _fullsize.dataset_spec(config_yaml, "maze_act_rnn")
    return _fullsize.maze_data_dir(
        spec, 128, log=lambda *_: None, generated=tmp_path_factory.mktemp("maze30")
    )


def _config(config_yaml, maze_dir, name):
    """The experiment at its full size, stopped after STEPS optimiser steps."""
    return _fullsize.experiment_config(config_yaml, name, maze_dir, {"max_steps": STEPS})


@contextmanager
def _deterministic():
    """Deterministic CUDA kernels, attention by the math backend (plain matmuls and softmax,
    whose backward has no atomics); the previous settings come back afterwards."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("name", MAZES)
def test_runbook_maze_trains_on_cuda(name, precision, config_yaml, maze_dir, tmp_path):
    config = _config(config_yaml, maze_dir, name)
    torch.cuda.reset_peak_memory_stats()
    metrics = train(config, run_dir=tmp_path, precision=precision, **RUNTIME)
    final = load_checkpoint(tmp_path / "final.ckpt")
    weights = sum(t.numel() * t.element_size() for t in final["state_dict"].values())
    assert torch.cuda.max_memory_allocated() > 3 * weights  # weights, grads, Adam: on the GPU
    assert final["global_step"] == STEPS and final["metrics"] == metrics
    assert {"val/exact_accuracy", "val/path_f1", "val/loss_total", "val/steps"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert all(torch.isfinite(t).all() for t in final["state_dict"].values())
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == STEPS and last["optimizer_states"][0]["state"]
    assert last["current_model_state"].keys() == final["state_dict"].keys()  # EMA: raw weights


@pytest.mark.parametrize("name", MAZES)
def test_resume_on_cuda_equals_uninterrupted(name, config_yaml, maze_dir, tmp_path):
    config = _config(config_yaml, maze_dir, name)
    with _deterministic():
        reference = train(config, run_dir=tmp_path / "a", **RUNTIME)
        pauses = []
        while True:  # a time budget of 0 pauses after every step; each call resumes
            try:
                resumed = train(config, run_dir=tmp_path / "b", time_budget_min=0, **RUNTIME)
                break
            except TrainingPaused as exc:
                pauses.append(exc.step)
    assert pauses == list(range(1, STEPS)) and resumed == reference
    a, b = (load_checkpoint(tmp_path / run / "final.ckpt") for run in "ab")
    assert a["global_step"] == b["global_step"] == STEPS
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    la, lb = (load_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt") for run in "ab")
    for key, value in la["current_model_state"].items():  # the raw (non-EMA) weights
        assert torch.equal(value, lb["current_model_state"][key]), key
    for sa, sb in zip(
        la["optimizer_states"][0]["state"].values(), lb["optimizer_states"][0]["state"].values()
    ):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    metrics_a, metrics_b = ((tmp_path / run / "metrics.csv").read_text() for run in "ab")
    assert metrics_a == metrics_b


@pytest.mark.parametrize("name", MAZES)
def test_evaluate_on_cuda_matches_cpu(name, config_yaml, maze_dir, tmp_path):
    train(_config(config_yaml, maze_dir, name), run_dir=tmp_path, **RUNTIME)
    model, info = halting.load_model(tmp_path / "final.ckpt")
    config = make_config(dict(info["config"]))
    data = load_eval_data(config, info["data_meta"], n_examples=64)
    # all M steps, no halting decision in between: the logits agree to float32 rounding
    inputs = torch.from_numpy(data["inputs"][:16])
    with torch.no_grad():
        on_cpu = model.cpu()(inputs, mode="max").logits
        on_gpu = model.cuda()(inputs.cuda(), mode="max").logits.cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)
    cpu = evaluate_model(model, config, data, device="cpu", batch_size=32)
    gpu = evaluate_model(model, config, data, device="cuda", batch_size=32)
    assert cpu.modes.keys() == gpu.modes.keys()
    for mode, values in cpu.modes.items():
        assert gpu.modes[mode].keys() == values.keys()
        for key, value in values.items():  # a near-tie may flip one cell or one halting step
            assert gpu.modes[mode][key] == pytest.approx(value, rel=1e-3, abs=0.02), (mode, key)
    same_steps = (cpu.per_example["steps_mean"] == gpu.per_example["steps_mean"]).mean()
    assert same_steps >= 0.95
    assert (cpu.per_example["example_id"] == gpu.per_example["example_id"]).all()
