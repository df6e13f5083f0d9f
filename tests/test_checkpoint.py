"""Checkpoint files: atomic writes, corrupt-file detection and fallback, the run lock, and
load_model rebuilding each model type from a checkpoint alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import halting
from halting.training import checkpoint as ck
from halting.training.train import train

TINY = {
    "task": "parity",
    "bits": 4,
    "hidden_size": 8,
    "time_limit": 3,
    "batch_size": 8,
    "max_steps": 30,
    "val_size": 16,
    "learning_rate": 3e-3,
    "seed": 5,
}
# keep_checkpoints=-1: every periodic file stays, for the fallback tests to cut them one by one
RUNTIME = {
    "save_every_n_steps": 10,
    "val_every_n_steps": 10,
    "log_every_n_steps": 10,
    "progress_bar": False,
    "keep_checkpoints": -1,
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("tiny")
    metrics = train({**TINY, "use_ema": True, "ema_decay": 0.8}, run_dir=run_dir, **RUNTIME)
    return run_dir, metrics


def _truncate_copy(path: Path, keep: float = 0.5) -> None:
    """Replace `path` by a truncated copy (a new file: the periodic twin it links stays intact)."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: int(len(data) * keep)])


# --- atomic writes and reads -----------------------------------------------------------------


def test_atomic_save_roundtrip_leaves_no_temporary(tmp_path):
    obj = {"state_dict": {"w": torch.arange(4.0)}, "hyper_parameters": {"config": {"a": 1}}}
    ck.atomic_save(obj, tmp_path / "x.ckpt")
    ck.atomic_save({**obj, "global_step": 2}, tmp_path / "x.ckpt")  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt"]
    loaded = ck.load_checkpoint(tmp_path / "x.ckpt")
    assert loaded["global_step"] == 2 and torch.equal(loaded["state_dict"]["w"], torch.arange(4.0))


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", None, "cut"])
def test_unreadable_or_foreign_checkpoints_are_corrupt(tmp_path, content, mmap):
    path = tmp_path / "last.ckpt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)  # readable, but not a halting checkpoint
    elif content == "cut":
        ck.atomic_save({"state_dict": {"w": torch.zeros(64)}, "hyper_parameters": {}}, path)
        _truncate_copy(path, keep=0.9)
    else:
        path.write_bytes(content)
    with pytest.raises(ck.CorruptCheckpoint):
        ck.load_checkpoint(path, mmap=mmap)


def test_checkpoint_with_an_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": Path("/etc")}}, path)
    with pytest.raises(ck.CorruptCheckpoint, match="weights_only|Unsupported|global"):
        ck.load_checkpoint(path)


def test_training_checkpoints_load_with_weights_only(tiny_run):
    run_dir, _ = tiny_run
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert names == ["last.ckpt", "step=00000010.ckpt", "step=00000020.ckpt", "step=00000030.ckpt"]
    for path in [*(run_dir / "checkpoints").glob("*.ckpt"), run_dir / "final.ckpt"]:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        hp = ckpt["hyper_parameters"]
        assert hp["model_type"] == "act_rnn" and hp["task"] == "parity"
        assert hp["criterion"] == "act" and hp["code_version"] == halting.__version__
        assert hp["config"]["bits"] == 4 and hp["data_meta"]["bits"] == 4


# --- finding the checkpoint to resume from ---------------------------------------------------


def test_find_resumable_prefers_last_then_falls_back_with_a_warning(tiny_run, tmp_path):
    src = tiny_run[0] / "checkpoints"
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for p in src.glob("*.ckpt"):
        (ckpts / p.name).write_bytes(p.read_bytes())
    path, ckpt = ck.find_resumable(ckpts)
    assert path.name == "last.ckpt" and ckpt["global_step"] == 30
    # killed after writing step=30 but before relinking last.ckpt: the newer file wins
    (ckpts / "last.ckpt").write_bytes((ckpts / "step=00000020.ckpt").read_bytes())
    path, ckpt = ck.find_resumable(ckpts)
    assert path.name == "step=00000030.ckpt" and ckpt["global_step"] == 30
    _truncate_copy(ckpts / "last.ckpt")
    _truncate_copy(ckpts / "step=00000030.ckpt", keep=0.9)
    with pytest.warns(UserWarning, match="last.ckpt.*step=00000020.ckpt"):
        path, ckpt = ck.find_resumable(ckpts)
    assert path.name == "step=00000020.ckpt" and ckpt["global_step"] == 20
    for p in ckpts.glob("step=*.ckpt"):
        _truncate_copy(p)
    with pytest.warns(UserWarning, match="no readable checkpoint"):
        assert ck.find_resumable(ckpts) is None
    assert ck.find_resumable(tmp_path / "absent") is None


def test_truncated_last_ckpt_resume_falls_back_and_matches(tiny_run, tmp_path):
    """A run whose last.ckpt (and newest periodic file) are cut resumes from step 10 with a
    warning and still ends with the uninterrupted run's weights."""
    run_dir = tmp_path / "run"
    first = train({**TINY, "use_ema": True, "ema_decay": 0.8}, run_dir=run_dir, **RUNTIME)
    assert first == tiny_run[1]
    (run_dir / "final.ckpt").unlink()
    (run_dir / "checkpoints" / "step=00000030.ckpt").unlink()
    (run_dir / "checkpoints" / "step=00000020.ckpt").write_bytes(b"")
    _truncate_copy(run_dir / "checkpoints" / "last.ckpt", keep=0.3)
    with pytest.warns(UserWarning, match="unreadable"):
        again = train({**TINY, "use_ema": True, "ema_decay": 0.8}, run_dir=run_dir, **RUNTIME)
    assert "resumed from" in (run_dir / "train.log").read_text()
    assert "step=00000010.ckpt at step 10" in (run_dir / "train.log").read_text()
    assert again == first
    a = ck.load_checkpoint(run_dir / "final.ckpt")["state_dict"]
    b = ck.load_checkpoint(tiny_run[0] / "final.ckpt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert (run_dir / "metrics.csv").read_text() == (tiny_run[0] / "metrics.csv").read_text()


# --- the run lock ----------------------------------------------------------------------------


def test_lock_is_exclusive_and_released(tmp_path):
    with ck.RunLock(tmp_path) as lock:
        owner = json.loads(lock.path.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(ck.LockHeld, match=f"process {os.getpid()}") as held:
            ck.RunLock(tmp_path).acquire()
        assert f"lock file {lock.path}" in str(held.value) and "delete" in str(held.value)
    assert not (tmp_path / ck.LOCK).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    (tmp_path / ck.LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    said = []
    with ck.RunLock(tmp_path, log=said.append):
        assert json.loads((tmp_path / ck.LOCK).read_text())["pid"] == os.getpid()
    assert said and f"dead process {pid}" in said[0]


def test_lock_of_another_host_is_not_taken(tmp_path):
    (tmp_path / ck.LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(ck.LockHeld, match="elsewhere.example"):
        ck.RunLock(tmp_path).acquire()
    assert (tmp_path / ck.LOCK).exists()


def test_second_trainer_on_a_locked_run_is_refused(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from halting.training.checkpoint import RunLock; "
            f"RunLock({str(tmp_path / 'checkpoints')!r}).acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ck.LockHeld, match=f"process {holder.pid}"):
            train(TINY, run_dir=tmp_path, **RUNTIME)
    finally:
        holder.kill()
        holder.wait()
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))


# --- load_model ------------------------------------------------------------------------------


def test_load_model_returns_ema_weights_in_eval_mode(tiny_run):
    run_dir, _ = tiny_run
    model, info = halting.load_model(run_dir / "checkpoints" / "last.ckpt")
    ckpt = ck.load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert not model.training and info["ema"] and info["global_step"] == 30
    assert type(model).__name__ == "ACTRNN" and info["model_type"] == "act_rnn"
    raw = {k[len("model.") :]: v for k, v in ckpt["current_model_state"].items()}
    state = model.state_dict()
    assert all(torch.equal(state[k], ckpt["state_dict"]["model." + k]) for k in state)
    assert any(not torch.equal(state[k], raw[k]) for k in state)  # EMA differs from raw
    final, _ = halting.load_model(run_dir / "final.ckpt")
    assert all(torch.equal(final.state_dict()[k], state[k]) for k in state)


@pytest.mark.parametrize(
    "extra",
    [
        {"model_type": "act_rnn", "halting": "pondernet"},
        {"model_type": "act_rnn", "halting": "fixed", "rnn_cell_type": "lstm"},
        {
            "model_type": "universal_transformer",
            "ut_act": True,
            "ut_max_hops": 3,
            "ut_embedding_size": 8,
            "ut_heads": 2,
            "ut_key_depth": 8,
            "ut_value_depth": 8,
            "ut_filter_size": 8,
        },
        {
            "model_type": "universal_transformer",
            "halting": "fixed",
            "ut_max_hops": 2,
            "ut_embedding_size": 8,
            "ut_heads": 2,
            "ut_key_depth": 8,
            "ut_value_depth": 8,
            "ut_filter_size": 8,
        },
    ],
)
def test_load_model_rebuilds_each_model_type(tmp_path, extra):
    config = {**TINY, "max_steps": 4, **extra}
    if extra["model_type"] != "act_rnn":
        config.pop("time_limit")
    train(config, run_dir=tmp_path, save_every_n_steps=2, val_every_n_steps=2, progress_bar=False)
    model, info = halting.load_model(tmp_path / "final.ckpt")
    assert info["model_type"] == extra["model_type"] and info["config"]["halting"] == extra.get(
        "halting", "act"
    )
    from halting.data import toy

    batch = toy.parity_val_set(0, 5, 4)
    with torch.no_grad():
        out = model(torch.from_numpy(batch["x"]), mode="eval")
    assert out.logits.shape == (5, 2) and torch.isfinite(out.logits).all()
    ckpt = ck.load_checkpoint(tmp_path / "final.ckpt")
    assert {"model." + k for k in model.state_dict()} == set(ckpt["state_dict"])


def test_load_model_without_ema_and_on_a_device_string(tiny_run, tmp_path):
    train({**TINY, "max_steps": 2}, run_dir=tmp_path, progress_bar=False)
    model, info = ck.load_model(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu")
    assert not info["ema"] and next(model.parameters()).device.type == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Lightning, no unpickling warnings on this path
        ck.load_checkpoint(tmp_path / "final.ckpt")
