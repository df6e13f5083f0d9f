"""A run's life at the scale users run it: bounded checkpoints, runs that extend to new totals,
failures that end train.log with `failed:`, and the run status read back from train.log.
(Stop signals, with real processes, are in test_resume.py.)"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import torch

from halting.training import checkpoint as ckpt_io
from halting.training.checkpoint import (
    checkpoint_bytes,
    disk_bound,
    find_resumable,
    load_checkpoint,
)
from halting.training.resume import ConfigMismatch
from halting.training.runlog import run_status
from halting.training.train import NonFiniteError, TrainingPaused, train

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


def _same_weights(a, b) -> bool:
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _periodic(run_dir) -> list[str]:
    return [p.name for p in ckpt_io.periodic_files(run_dir / "checkpoints")]


@pytest.fixture(scope="module")
def ten_steps(tmp_path_factory):
    """TINY trained to 10 steps in one go: the reference of the extended runs."""
    run_dir = tmp_path_factory.mktemp("ten")
    return run_dir, train({**TINY, "max_steps": 10}, run_dir=run_dir, **QUIET)


# --- bounded checkpoints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keep, files",
    [
        (2, ["step=00000009.ckpt", "step=00000010.ckpt"]),
        (0, []),
        (-1, [f"step={k:08d}.ckpt" for k in range(1, 11)]),
    ],
)
def test_keep_checkpoints_bounds_the_periodic_files_and_changes_nothing_else(
    ten_steps, tmp_path, keep, files
):
    metrics = train(
        {**TINY, "max_steps": 10},
        run_dir=tmp_path,
        save_every_n_steps=1,
        keep_checkpoints=keep,
        **QUIET,
    )
    assert _periodic(tmp_path) == files
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert metrics == ten_steps[1]
    assert _same_weights(tmp_path / "final.ckpt", ten_steps[0] / "final.ckpt")


def test_maze_epoch_files_are_bounded_too(tiny_maze_dir, tmp_path):
    config = {
        "task": "maze",
        "data_dir": str(tiny_maze_dir),
        "hidden_size": 8,
        "time_limit": 2,
        "batch_size": 4,
        "max_epochs": 4,
        "seed": 0,
    }
    train(config, run_dir=tmp_path, progress_bar=False, keep_checkpoints=2)  # every epoch
    assert _periodic(tmp_path) == ["epoch=0002-step=00000009.ckpt", "epoch=0003-step=00000012.ckpt"]


def test_a_corrupt_last_ckpt_still_falls_back_to_a_kept_older_file(tmp_path):
    train(TINY, run_dir=tmp_path, save_every_n_steps=2, keep_checkpoints=2, **QUIET)
    ckpts = tmp_path / "checkpoints"
    assert _periodic(tmp_path) == ["step=00000004.ckpt", "step=00000006.ckpt"]
    # last.ckpt is a hard link of step=6: damage done in place damages both
    os.truncate(ckpts / "last.ckpt", (ckpts / "last.ckpt").stat().st_size // 2)
    with pytest.warns(UserWarning, match="skipped unreadable"):
        path, ckpt = find_resumable(ckpts)
    assert path.name == "step=00000004.ckpt" and ckpt["global_step"] == 4


def test_the_start_line_states_the_checkpoint_size_and_the_disk_bound(tmp_path):
    config = {**TINY, "hidden_size": 256, "use_ema": True, "max_steps": 2}
    train(config, run_dir=tmp_path, save_every_n_steps=1, keep_checkpoints=1, **QUIET)
    log = (tmp_path / "train.log").read_text()
    line = next(x for x in log.splitlines() if "checkpoint size about" in x)
    estimate = float(line.split("checkpoint size about ")[1].split(" MB")[0]) * 1e6
    actual = (tmp_path / "checkpoints" / "last.ckpt").stat().st_size
    assert abs(estimate - actual) / actual < 0.05, (estimate, actual)
    # 1 kept + 1 being written + last.ckpt + final.ckpt
    assert "1 periodic (--keep_checkpoints 1) + 1 being written + last.ckpt + final.ckpt" in line


def test_disk_bound_counts_kept_files_or_all_of_them():
    assert disk_bound(100, 2, 1000) == (
        500,
        "2 periodic (--keep_checkpoints 2) + 1 being written + last.ckpt + final.ckpt",
    )
    assert disk_bound(100, -1, 10)[0] == 1300
    assert disk_bound(100, 0, 10) == (200, "last.ckpt + final.ckpt")
    assert disk_bound(100, 5, 2)[0] == 500  # a run with 2 saves never holds 5


def test_checkpoint_bytes_counts_adamw_moments_and_ema():
    layer = torch.nn.Linear(10, 10)  # 110 float32 parameters
    system = torch.nn.Module()
    system.model = layer
    assert checkpoint_bytes(system, ema=False) == int(440 * 3 * 1.01)
    assert checkpoint_bytes(system, ema=True) == int(440 * 4 * 1.01)


def test_keep_checkpoints_below_minus_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--keep_checkpoints must be -1"):
        train(TINY, run_dir=tmp_path, keep_checkpoints=-2, **QUIET)


def _saved_steps(monkeypatch) -> list[int]:
    """Record the step of every checkpoint StepCheckpoints writes."""
    from halting.training.callbacks import StepCheckpoints

    steps, save = [], StepCheckpoints._save_pending
    monkeypatch.setattr(
        StepCheckpoints,
        "_save_pending",
        lambda self, trainer: steps.append(self.pending[0]) or save(self, trainer),
    )
    return steps


def test_last_ckpt_is_refreshed_by_time_without_periodic_files(tmp_path, monkeypatch):
    steps = _saved_steps(monkeypatch)
    train(TINY, run_dir=tmp_path, save_last_every_min=0, **QUIET)  # due after every step
    assert steps == [1, 2, 3, 4, 5, 6] and _periodic(tmp_path) == []
    steps.clear()
    train(TINY, run_dir=tmp_path / "off", save_last_every_min=None, **QUIET)
    assert steps == [6]  # no periodic flag, no refresh: only the final step's last.ckpt


def test_by_default_last_ckpt_is_refreshed_every_five_minutes(tmp_path, monkeypatch):
    from halting.training.callbacks import StepCheckpoints

    seen, init = {}, StepCheckpoints.__init__
    monkeypatch.setattr(
        StepCheckpoints, "__init__", lambda self, *a, **k: seen.update(k) or init(self, *a, **k)
    )
    train(TINY, run_dir=tmp_path, **QUIET)
    assert seen["last_every_s"] == 300.0 and seen["keep"] == 2


# --- runs that extend ---------------------------------------------------------------------------


def test_a_finished_run_extends_to_a_larger_max_steps_as_if_trained_in_one_go(ten_steps, tmp_path):
    train(TINY, run_dir=tmp_path, **QUIET)  # 6 steps, complete
    metrics = train({**TINY, "max_steps": 10}, run_dir=tmp_path, **QUIET)
    log = (tmp_path / "train.log").read_text()
    assert "continuing with new totals (max_steps: 6 -> 10)" in log
    assert "resumed from" in log and log.count("start parity") == 1
    assert metrics == ten_steps[1]
    assert _same_weights(tmp_path / "final.ckpt", ten_steps[0] / "final.ckpt")
    assert (tmp_path / "metrics.csv").read_text() == (ten_steps[0] / "metrics.csv").read_text()
    # a paused run extends as well: and the new total is what the next rerun finds complete
    assert train({**TINY, "max_steps": 10}, run_dir=tmp_path, **QUIET) == metrics
    assert "already complete" in (tmp_path / "train.log").read_text().splitlines()[-1]


def test_a_paused_run_extends_too(ten_steps, tmp_path):
    with pytest.raises(TrainingPaused):
        train(TINY, run_dir=tmp_path, time_budget_min=0, **QUIET)
    assert train({**TINY, "max_steps": 10}, run_dir=tmp_path, **QUIET) == ten_steps[1]
    assert _same_weights(tmp_path / "final.ckpt", ten_steps[0] / "final.ckpt")


def test_a_run_cannot_be_shortened_below_where_it_is(ten_steps, tmp_path):
    train({**TINY, "max_steps": 10}, run_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigMismatch, match=r"trained past max_steps=6 \(it is at step 10\)"):
        train(TINY, run_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigMismatch, match=r"learning_rate: 0.003 -> 0.001"):  # others refuse
        train({**TINY, "max_steps": 12, "learning_rate": 1e-3}, run_dir=tmp_path, **QUIET)


def test_maze_extends_by_max_epochs_and_paths_compare_normalised(tiny_maze_dir, tmp_path):
    config = {
        "task": "maze",
        "data_dir": str(tiny_maze_dir),
        "hidden_size": 8,
        "time_limit": 2,
        "batch_size": 4,
        "max_epochs": 2,
        "seed": 0,
    }
    whole = train({**config, "max_epochs": 3}, run_dir=tmp_path / "whole", progress_bar=False)
    train(config, run_dir=tmp_path / "ext", progress_bar=False)
    spelt = os.path.join(str(tiny_maze_dir), ".", "")  # <dir>/./ : the same folder
    assert (
        train(
            {**config, "max_epochs": 3, "data_dir": spelt},
            run_dir=tmp_path / "ext",
            progress_bar=False,
        )
        == whole
    )
    assert _same_weights(tmp_path / "ext" / "final.ckpt", tmp_path / "whole" / "final.ckpt")
    assert "max_epochs: 2 -> 3" in (tmp_path / "ext" / "train.log").read_text()


# --- failures are logged, and the status is read back -------------------------------------------


def _last_line(run_dir) -> str:
    return (run_dir / "train.log").read_text().splitlines()[-1].split(" ", 2)[2]


def test_a_divergence_with_no_checkpoint_says_so(tmp_path):
    config = {**TINY, "learning_rate": 3e37, "max_steps": 20, "dropout": 0.0}
    with pytest.raises(NonFiniteError):
        train(config, run_dir=tmp_path, **QUIET)
    line = _last_line(tmp_path)
    assert line.startswith("failed: non-finite") and "no checkpoint was written" in line
    assert run_status(tmp_path).state == "failed"


def test_bad_data_ends_the_log_with_failed_naming_the_cause(tiny_maze_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_maze_dir, data)
    (data / "train" / "all__labels.npy").write_bytes(b"not numpy")
    config = {
        "task": "maze",
        "data_dir": str(data),
        "hidden_size": 8,
        "time_limit": 2,
        "batch_size": 4,
        "max_epochs": 1,
    }
    with pytest.raises(Exception):  # noqa: B017  (numpy's error; what matters is the log line)
        train(config, run_dir=tmp_path / "run", progress_bar=False)
    line = _last_line(tmp_path / "run")
    assert line.startswith("failed: ") and "all__labels.npy" in line, line
    status = run_status(tmp_path / "run")
    assert status.state == "failed" and "all__labels.npy" in str(status)


def test_an_exception_inside_fit_is_logged_as_failed(tmp_path, monkeypatch):
    from halting.training.system import HaltingSystem

    def broken(self, batch, batch_idx):
        raise RuntimeError("boom in training_step")

    monkeypatch.setattr(HaltingSystem, "training_step", broken)
    with pytest.raises(RuntimeError, match="boom"):
        train(TINY, run_dir=tmp_path, **QUIET)
    assert _last_line(tmp_path) == "failed: RuntimeError: boom in training_step"
    assert not (tmp_path / "checkpoints" / "train.lock").exists()


def test_run_status_of_complete_paused_killed_running_and_new_runs(tmp_path):
    assert run_status(tmp_path / "none").state == "not started"
    train(TINY, run_dir=tmp_path / "done", **QUIET)
    assert (run_status(tmp_path / "done").state, run_status(tmp_path / "done").step) == (
        "complete",
        6,
    )
    with pytest.raises(TrainingPaused):
        train(TINY, run_dir=tmp_path / "paused", time_budget_min=0, **QUIET)
    status = run_status(tmp_path / "paused")
    assert (status.state, status.step) == ("paused", 1) and "time budget" in status.line
    # a run killed by SIGKILL: its log ends at progress lines, and no live process holds the lock
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "train.log").write_text(
        "2026-01-01 00:00:00 start parity/act_rnn/act seed 0\n"
        "2026-01-01 00:00:01 step 50/100 epoch 0 (1 s)\n"
    )
    assert (run_status(killed).state, run_status(killed).step) == ("killed", 50)
    (killed / "checkpoints" / "train.lock").write_text(
        json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname()})
    )
    assert run_status(killed).state == "running"


def test_a_gpu_asked_for_without_one_is_one_clear_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="--accelerator gpu") as err:
        train(TINY, run_dir=tmp_path, accelerator="gpu", **QUIET)
    assert "\n" not in str(err.value)


# --- the progress line on a terminal ------------------------------------------------------------


def test_on_a_terminal_the_progress_line_shows_step_loss_accuracy_and_speed(tmp_path, capsys):
    train(TINY, run_dir=tmp_path, progress_bar=True, log_every_n_steps=1, val_every_n_steps=2)
    err = capsys.readouterr().err
    last = err.split("\r")[-1]
    assert last.startswith("step 6/6  loss ") and "accuracy " in last and "steps/s" in last
    assert "Epoch 0" not in err  # not Lightning's batch-of-epoch bar


def test_off_a_terminal_plain_lines_only(tmp_path, capsys):
    train(TINY, run_dir=tmp_path, log_every_n_steps=3, val_every_n_steps=2)  # stderr: not a tty
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
    assert "step 3/6 epoch 0" in captured.out


# --- the status where users look: the viewer's training page, halting summary ----------------


def test_the_viewer_training_page_shows_the_run_status(tmp_path):
    from streamlit.testing.v1 import AppTest

    import halting.viewer.app as viewer

    with pytest.raises(TrainingPaused):
        train(TINY, run_dir=tmp_path / "run", time_budget_min=0, **QUIET)
    at = AppTest.from_file(viewer.__file__, default_timeout=120)
    at.session_state["results_root"] = str(tmp_path)
    at.session_state["checkpoint"] = ""
    at.run()
    at.text_input(key="checkpoint").set_value(str(tmp_path / "run/checkpoints/last.ckpt")).run()
    at.radio(key="page").set_value("Training").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value for w in at.warning] == ["Run status: paused at step 1"]


def test_halting_summary_names_unfinished_runs(tmp_path, capsys):
    """A workflow layout: one failed run in checkpoints/, no published result of it."""
    from halting.report import cli as report

    failed = tmp_path / "checkpoints/parity_act/seed1/abc123"
    (failed / "checkpoints").mkdir(parents=True)
    (failed / "train.log").write_text(
        "2026-01-01 00:00:00 start parity/act_rnn/act seed 1\n"
        "2026-01-01 00:00:05 failed: RuntimeError: boom\n"
    )
    done = tmp_path / "checkpoints/parity_act/seed0/def456"
    train(TINY, run_dir=done, **QUIET)
    (tmp_path / "results").mkdir()
    lines = report.report_unfinished(tmp_path / "results")
    assert lines == [f"unfinished: {failed.resolve()}: failed: RuntimeError: boom"]
    assert lines[0] in capsys.readouterr().err
    # `halting summary` prints them even when nothing is published yet
    assert (
        report.run(
            SimpleNamespace(
                results=str(tmp_path / "results"),
                runs=None,
                out=str(tmp_path / "results/summary.pdf"),
            ),
            "summary",
        )
        == 2
    )
    assert "unfinished: " in capsys.readouterr().err


def test_status_of_a_published_run_follows_run_json_to_its_checkpoint_folder(tmp_path):
    from halting.training.runlog import status_of

    ckpt_dir = tmp_path / "checkpoints/parity_act/seed0/abc"
    train(TINY, run_dir=ckpt_dir, **QUIET)
    published = tmp_path / "results/parity/parity_act/seed0"
    published.mkdir(parents=True)
    assert status_of(published) is None
    (published / "run.json").write_text(
        json.dumps({"checkpoint_dir": "checkpoints/parity_act/seed0/abc"})
    )
    status = status_of(published)
    assert (status.state, status.step) == ("complete", 6)


# --- mixed precision (the GPU's bf16-mixed, reproduced on the CPU) ------------------------------


@pytest.mark.parametrize(
    "model",
    [
        {"task": "parity", "halting": "act"},
        {"task": "parity", "halting": "pondernet"},
        {
            "task": "parity",
            "model_type": "universal_transformer",
            "ut_act": True,
            "hidden_size": 16,
            "ut_embedding_size": 8,
            "ut_heads": 2,
            "ut_key_depth": 8,
            "ut_value_depth": 8,
            "ut_filter_size": 16,
            "ut_max_hops": 3,
            "time_limit": 16,
            "bits": 16,
        },
    ],
)
def test_bf16_mixed_trains_every_criterion_and_backbone(tmp_path, model):
    config = {**TINY, **model, "dropout": 0.0}
    if config.get("model_type") == "universal_transformer":
        config.pop("time_limit")
    metrics = train(config, run_dir=tmp_path, precision="bf16-mixed", accelerator="cpu", **QUIET)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_the_halting_logits_are_float32_under_autocast():
    from halting.models.ponder import step_logits

    unit = torch.nn.Linear(4, 1)
    xs = [torch.randn(3, 4, requires_grad=True) for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        values = [unit(x).squeeze(-1).detach() for x in xs]
        logits = step_logits(values, [x.to(torch.bfloat16) for x in xs], unit)
    assert values[0].dtype == torch.bfloat16 and logits.dtype == torch.float32
    logits.sum().backward()
    assert unit.weight.grad.dtype == torch.float32 and xs[0].grad.dtype == torch.float32
