"""The Python API `halting.training.train.train`: resume rules, pauses, outputs, safety stops."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_checkpoint import _truncate_copy

import halting
from halting.config import make_config
from halting.data import toy
from halting.data.modules import EpochBatches, epoch_permutation
from halting.tasks import get_task
from halting.training.callbacks import Guard
from halting.training.checkpoint import CorruptCheckpoint, load_checkpoint
from halting.training.resume import ConfigMismatch, merge_metrics
from halting.training.train import NonFiniteError, TrainingPaused, _oom_message, train

TINY = {
    "task": "parity",
    "bits": 4,
    "hidden_size": 8,
    "time_limit": 3,
    "batch_size": 8,
    "max_steps": 6,
    "val_size": 16,
    "learning_rate": 3e-3,
    "seed": 2,
    "dropout": 0.2,
}
QUIET = {"progress_bar": False, "log_every_n_steps": 1, "val_every_n_steps": 2}


def _weights(path):
    return load_checkpoint(path)["state_dict"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref")
    metrics = train(TINY, run_dir=run_dir, **QUIET)
    return run_dir, metrics


def test_reference_run_outputs(reference):
    run_dir, metrics = reference
    assert set(metrics) >= {"val/accuracy", "val/loss_total", "val/steps"}
    assert (run_dir / "final.ckpt").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    train_rows = [r for r in rows if r["train/loss_total"]]
    val_rows = [r for r in rows if r["val/accuracy"]]
    assert len(train_rows) == 6 and len(val_rows) == 3  # every step; validation every 2
    # a train row's step is the updates before its batch; a val row's, the updates its weights had
    assert [r["step"] for r in train_rows] == ["0", "1", "2", "3", "4", "5"]
    assert [r["step"] for r in val_rows] == ["2", "4", "6"]
    assert all(float(r["train/grad_norm"]) > 0 for r in train_rows)
    assert float(val_rows[-1]["val/accuracy"]) == metrics["val/accuracy"]
    log = (run_dir / "train.log").read_text()
    assert "step 6/6" in log and "validation at step 6" in log and "complete at step 6" in log
    assert not (run_dir / "checkpoints" / "train.lock").exists()


def test_pausing_every_step_then_resuming_equals_the_uninterrupted_run(reference, tmp_path):
    """time_budget_min=0 pauses after every step: six attempts, auto-resumed, one result."""
    pauses = []
    for _ in range(10):
        try:
            metrics = train(TINY, run_dir=tmp_path, time_budget_min=0, **QUIET)
            break
        except TrainingPaused as exc:
            pauses.append(exc.step)
    assert pauses == [1, 2, 3, 4, 5]
    assert metrics == reference[1]
    assert _same_weights(_weights(tmp_path / "final.ckpt"), _weights(reference[0] / "final.ckpt"))
    assert (tmp_path / "metrics.csv").read_text() == (reference[0] / "metrics.csv").read_text()
    log = (tmp_path / "train.log").read_text()
    assert log.count("resumed from") == 5 and "paused at step 5" in log
    assert len(list((tmp_path / "logs").glob("version_*"))) == 6


def test_a_resume_reads_its_checkpoint_once(reference, tmp_path, monkeypatch):
    with pytest.raises(TrainingPaused):
        train(TINY, run_dir=tmp_path, time_budget_min=0, **QUIET)
    reads, load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: reads.append(str(f)) or load(f, *a, **k))
    assert train(TINY, run_dir=tmp_path, **QUIET) == reference[1]
    assert reads == [str(tmp_path / "checkpoints" / "last.ckpt")]


def test_changed_config_refuses_naming_the_keys_and_restart_starts_over(reference, tmp_path):
    with pytest.raises(TrainingPaused):
        train(TINY, run_dir=tmp_path, time_budget_min=0, **QUIET)
    changed = {**TINY, "learning_rate": 1e-3, "hidden_size": 16}
    with pytest.raises(
        ConfigMismatch, match=r"hidden_size: 8 -> 16; learning_rate: 0.003 -> 0.001"
    ):
        train(changed, run_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigMismatch, match="learning_rate"):  # an explicit path is checked too
        train(changed, run_dir=tmp_path, resume=tmp_path / "checkpoints" / "last.ckpt", **QUIET)
    train(changed, run_dir=tmp_path, restart=True, **QUIET)
    log = (tmp_path / "train.log").read_text()
    assert "restart: removed last.ckpt" in log and "resumed from" not in log
    assert (
        load_checkpoint(tmp_path / "final.ckpt")["hyper_parameters"]["config"]["hidden_size"] == 16
    )
    # the folder now holds the new config: the old one is refused in turn
    with pytest.raises(ConfigMismatch, match="hidden_size: 16 -> 8"):
        train(TINY, run_dir=tmp_path, **QUIET)


def test_validation_uses_the_ema_weights_and_final_ckpt_holds_them(tmp_path):
    config = {**TINY, "dropout": 0.0, "use_ema": True, "ema_decay": 0.5, "val_size": 64}
    metrics = train(config, run_dir=tmp_path, **QUIET)
    model, info = halting.load_model(tmp_path / "final.ckpt")
    val = toy.parity_val_set(config["seed"], 64, 4)
    with torch.no_grad():
        out = model(torch.from_numpy(val["x"]), mode="eval")
    accuracy = (out.logits.argmax(-1).numpy() == val["y"]).mean()
    assert info["ema"] and metrics["val/accuracy"] == pytest.approx(accuracy, abs=1e-7)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert not _same_weights(last["state_dict"], last["current_model_state"])


def test_divergence_stops_naming_the_step_and_keeps_finite_checkpoints(tmp_path):
    config = {**TINY, "learning_rate": 3e37, "max_steps": 20, "dropout": 0.0}
    with pytest.raises(NonFiniteError, match=r"non-finite (loss|gradient).* at step \d+"):
        train(config, run_dir=tmp_path, save_every_n_steps=1, **QUIET)
    ckpts = list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert ckpts and not (tmp_path / "final.ckpt").exists()
    for path in ckpts:
        assert all(torch.isfinite(v).all() for v in _weights(path).values())
    assert "failed: non-finite" in (tmp_path / "train.log").read_text()


def test_guard_names_which_check_fired():
    """A non-finite loss whose gradients are finite (e.g. a term without parameters) reaches the
    loss check, which runs after the optimizer step; a non-finite gradient stops before it."""
    trainer, guard = SimpleNamespace(global_step=4), Guard()
    module = torch.nn.Linear(2, 1)
    module.log = lambda *args, **kwargs: None
    module(torch.ones(1, 2)).sum().backward()
    guard.on_before_optimizer_step(trainer, module, None)  # finite: no error
    guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(1.0)}, None, 0)
    with pytest.raises(NonFiniteError, match=r"^non-finite loss \(inf\) at step 4$"):
        guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(float("inf"))}, None, 0)
    module.bias.grad[0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"^non-finite gradient norm \(nan\) at step 5$"):
        guard.on_before_optimizer_step(trainer, module, None)


def test_guard_lets_a_grad_scaler_skip_overflow_steps_then_stops():
    """Under 16-mixed the GradScaler skips a step whose (unscaled) gradients overflowed and
    halves its scale; Guard stops only after max_scaler_skips such steps in a row."""
    module = torch.nn.Linear(2, 1)
    logged = []
    module.log = lambda name, value, **kwargs: logged.append(name)
    scaler = torch.amp.GradScaler("cpu")
    fp16 = SimpleNamespace(global_step=7, precision_plugin=SimpleNamespace(scaler=scaler))
    fp32 = SimpleNamespace(global_step=7, precision_plugin=SimpleNamespace(scaler=None))
    guard = Guard(max_scaler_skips=2)

    def grads(value: float) -> None:
        module.weight.grad = torch.full_like(module.weight, value)

    grads(float("inf"))
    guard.on_before_optimizer_step(fp16, module, None)  # skipped by the scaler: no error
    guard.on_before_optimizer_step(fp16, module, None)
    assert guard.skipped == 2 and logged == []  # a non-finite norm is never logged
    grads(1.0)
    guard.on_before_optimizer_step(fp16, module, None)  # a finite step resets the count
    assert guard.skipped == 0 and logged == ["train/grad_norm"]
    grads(float("nan"))
    for _ in range(2):
        guard.on_before_optimizer_step(fp16, module, None)
    with pytest.raises(
        NonFiniteError,
        match=r"at step 8: the 16-mixed GradScaler skipped 3 "
        r"steps in a row \(scale now 6.55e\+04\)",
    ):
        guard.on_before_optimizer_step(fp16, module, None)
    with pytest.raises(NonFiniteError, match=r"^non-finite gradient norm \(nan\) at step 8$"):
        Guard().on_before_optimizer_step(fp32, module, None)  # bf16 / 32-true: no scaler


def test_unreadable_final_ckpt_means_not_complete(reference, tmp_path):
    assert train(TINY, run_dir=tmp_path, **QUIET) == reference[1]
    _truncate_copy(tmp_path / "final.ckpt")
    assert train(TINY, run_dir=tmp_path, **QUIET) == reference[1]  # resumed at step 6
    log = (tmp_path / "train.log").read_text()
    assert "already complete" not in log and "last.ckpt at step 6" in log
    assert load_checkpoint(tmp_path / "final.ckpt")["global_step"] == 6


def test_unreadable_resume_ckpt_falls_back_to_the_newest_readable(reference, tmp_path):
    train(TINY, run_dir=tmp_path, save_every_n_steps=2, **QUIET)
    ckpts = tmp_path / "checkpoints"
    (tmp_path / "final.ckpt").unlink()
    (ckpts / "step=00000006.ckpt").unlink()
    _truncate_copy(ckpts / "last.ckpt")
    with (
        pytest.warns(UserWarning, match="falling back to the newest readable checkpoint"),
        pytest.warns(UserWarning, match="skipped unreadable.*last.ckpt.*step=00000004"),
    ):
        metrics = train(
            TINY, run_dir=tmp_path, resume=ckpts / "last.ckpt", save_every_n_steps=2, **QUIET
        )
    assert "step=00000004.ckpt at step 4" in (tmp_path / "train.log").read_text()
    assert metrics == reference[1]
    assert _same_weights(_weights(tmp_path / "final.ckpt"), _weights(reference[0] / "final.ckpt"))
    for path in ckpts.glob("*.ckpt"):
        _truncate_copy(path)
    with pytest.warns(UserWarning), pytest.raises(CorruptCheckpoint):  # nothing readable left
        train(TINY, run_dir=tmp_path, resume=ckpts / "last.ckpt", **QUIET)


def test_maze_validates_every_n_epochs_and_at_the_end(tiny_maze_dir, tmp_path):
    config = {
        "task": "maze",
        "data_dir": str(tiny_maze_dir),
        "hidden_size": 8,
        "time_limit": 3,
        "batch_size": 4,
        "max_epochs": 3,
        "seed": 1,
    }  # 3 steps per epoch
    metrics = train(
        config, run_dir=tmp_path, val_every_n_epochs=2, progress_bar=False, log_every_n_steps=1
    )
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len([r for r in rows if r["val/exact_accuracy"]]) == 2  # epoch 2, and the end
    assert float(rows[-1]["val/exact_accuracy"]) == metrics["val/exact_accuracy"]
    assert [r["step"] for r in rows if r["val/exact_accuracy"]] == ["6", "9"]
    log = (tmp_path / "train.log").read_text()
    assert "validation at step 6" in log and "validation at step 9" in log
    assert "validation at step 3" not in log
    # max_steps inside an epoch: the last validation runs after fit, at the same step convention
    metrics = train(
        {**config, "max_steps": 4},
        run_dir=tmp_path / "steps",
        val_every_n_epochs=1,
        progress_bar=False,
        log_every_n_steps=1,
    )
    rows = list(csv.DictReader(open(tmp_path / "steps" / "metrics.csv")))
    assert [r["step"] for r in rows if r["val/exact_accuracy"]] == ["3", "4"]
    assert float(rows[-1]["val/exact_accuracy"]) == metrics["val/exact_accuracy"]


def test_out_of_memory_message_names_the_run_and_the_flags():
    config = make_config(
        {
            "task": "maze",
            "data_dir": "d",
            "model_type": "universal_transformer",
            "ut_act": True,
            "batch_size": 128,
            "max_epochs": 1,
        }
    )
    text = _oom_message(config, torch.OutOfMemoryError("CUDA out of memory"))
    for part in (
        "universal_transformer",
        "maze",
        "batch_size=128",
        "hidden_size=512",
        "ut_max_hops=6",
        "--batch_size",
        "--ut_max_hops",
        "bf16-mixed",
    ):
        assert part in text


def test_toy_tasks_refuse_epochs():
    with pytest.raises(ValueError, match="max_epochs does not apply to task parity"):
        train({**TINY, "max_epochs": 2}, run_dir="unused")
    with pytest.raises(ValueError, match="lr_warmup_epochs"):
        train({**TINY, "lr_warmup_epochs": 1}, run_dir="unused")


def test_toy_stream_is_a_function_of_the_step_with_and_without_workers():
    config = make_config(
        {**TINY, "task": "addition", "sequence_length": 3, "max_digits": 2, "bits": 16}
    )
    for workers in (0, 2):
        dm = get_task("addition").datamodule(config, data_workers=workers)
        from halting.data.modules import StepStream

        loader = dm._loader(StepStream(dm._make_batch, start=7))
        it = iter(loader)
        got = [next(it) for _ in range(5)]
        del it
        for i, batch in enumerate(got):
            ref = toy.addition_batch(config.seed, 7 + i, 8, 3, 2)
            assert all(np.array_equal(batch[k].numpy(), ref[k]) for k in ref)


def test_maze_epoch_batches_resume_mid_epoch():
    n, size, seed = 10, 3, 4
    full = [b for e in range(2) for b in EpochBatches(n, size, seed, lambda e=e: e * 4)]
    assert len(full) == 8 and sorted(sum(full[:4], [])) == list(range(10))
    assert sum(full[:4], []) == epoch_permutation(seed, 0, n).tolist()
    for g in range(8):  # an epoch (re)started at global step g continues at batch g mod 4
        rest = list(EpochBatches(n, size, seed, lambda g=g: g))
        assert rest == full[g : (g // 4 + 1) * 4]


def test_merge_metrics_keeps_one_row_per_logged_step(tmp_path):
    logs = tmp_path / "logs"
    (logs / "version_0").mkdir(parents=True)
    (logs / "version_1").mkdir()
    (logs / "version_0" / "metrics.csv").write_text(
        "epoch,step,train/loss\n0,0,1.0\n0,1,0.9\n0,2,0.8\n0,3,0.7\n0,4,0."
    )  # cut by a kill
    (logs / "version_1" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/acc\n0,2,0.8,\n0,2,,0.5\n0,3,0.7,\n0,4,0.6,\n"
    )
    merge_metrics(tmp_path)
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "epoch,step,train/loss,val/acc",
        "0,0,1.0,",
        "0,1,0.9,",
        "0,2,0.8,",
        "0,2,,0.5",
        "0,3,0.7,",
        "0,4,0.6,",
    ]


def test_final_step_is_validated_and_a_resume_at_the_end_changes_nothing(tmp_path):
    """max_steps off the validation grid: the last step is validated anyway; a run killed
    between its last checkpoint and final.ckpt resumes, trains nothing, and ends identical."""
    config = {
        **TINY,
        "task": "addition",
        "sequence_length": 3,
        "max_digits": 2,
        "bits": 16,
        "halting": "pondernet",
        "max_steps": 5,
        "time_limit": 3,
    }
    runtime = {**QUIET, "val_every_n_steps": 2, "log_every_n_steps": 2}
    first = train(config, run_dir=tmp_path / "a", **runtime)
    csv_a = (tmp_path / "a" / "metrics.csv").read_text()
    assert first and csv_a.count("\n") == 1 + 3 + 3  # train and val rows at steps 2, 4 and 5
    (tmp_path / "a" / "final.ckpt").unlink()
    again = train(config, run_dir=tmp_path / "a", **runtime)
    assert again == first and (tmp_path / "a" / "metrics.csv").read_text() == csv_a
    assert "resumed from" in (tmp_path / "a" / "train.log").read_text()


def test_data_workers_do_not_change_the_run(reference, tmp_path):
    metrics = train(TINY, run_dir=tmp_path, data_workers=2, **QUIET)
    assert metrics == reference[1]
    assert _same_weights(_weights(tmp_path / "final.ckpt"), _weights(reference[0] / "final.ckpt"))


def test_same_seed_gives_identical_metrics_csv_and_a_rerun_trains_nothing(reference, tmp_path):
    assert train(TINY, run_dir=tmp_path, **QUIET) == reference[1]
    assert (tmp_path / "metrics.csv").read_text() == (reference[0] / "metrics.csv").read_text()
    before = (tmp_path / "final.ckpt").stat().st_mtime_ns
    assert train(TINY, run_dir=tmp_path, **QUIET) == reference[1]  # complete: returns at once
    assert (tmp_path / "final.ckpt").stat().st_mtime_ns == before
    assert "already complete" in (tmp_path / "train.log").read_text()


def test_train_seconds_accumulate_over_attempts(tmp_path):
    """final.ckpt's train_seconds is the wall time of every attempt, not only the last."""
    with pytest.raises(TrainingPaused):
        train(TINY, run_dir=tmp_path, time_budget_min=0, **QUIET)
    first = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    first_seconds = first["callbacks"]["StepCheckpoints"]["train_seconds"]
    assert first_seconds > 0
    train(TINY, run_dir=tmp_path, **QUIET)
    final = load_checkpoint(tmp_path / "final.ckpt")
    assert final["train_seconds"] > first_seconds


def test_a_training_call_builds_its_config_and_criterion_once(tmp_path, monkeypatch):
    """train(config) passes the job's ExperimentConfig and criterion down: nothing rebuilds
    them (the system, the model, the data module and the checkpoints read the one object)."""
    import halting.config as config_module
    import halting.criteria as criteria_module
    from halting.models import build_model as real_build_model

    config = make_config(TINY)
    built = {"configs": 0, "criteria": 0, "models": 0}
    post_init = config_module.ExperimentConfig.__post_init__

    def counting_post_init(self):
        built["configs"] += 1
        post_init(self)

    def counting_build_criterion(c):
        built["criteria"] += 1
        return criteria_module.criterion_class(c.criterion).from_config(c)

    def counting_build_model(c, data_meta):
        assert c is config  # the very object the job built
        built["models"] += 1
        return real_build_model(c, data_meta)

    monkeypatch.setattr(config_module.ExperimentConfig, "__post_init__", counting_post_init)
    monkeypatch.setattr("halting.models.build_criterion", counting_build_criterion)
    monkeypatch.setattr("halting.training.system.build_model", counting_build_model)
    train(config, run_dir=tmp_path / "run", **QUIET)
    assert built == {"configs": 0, "criteria": 1, "models": 1}
