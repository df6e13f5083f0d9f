"""Evaluation: eval.json / per_example.parquet / examples.npz in the interface's format, metrics
checked on a hand-made case with forced outputs, checkpoints (EMA), atomic writes, the CLI."""

from __future__ import annotations

import argparse
import json
import math
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from halting.cli import main as cli_main
from halting.config import make_config
from halting.criteria import HaltingOutput
from halting.data import toy
from halting.data.grid import (
    CHARSET,
    GOAL,
    OPEN,
    PATH,
    START,
    WALL,
    bfs_parents,
    canonical_label,
    shortest_path_moves,
)
from halting.evaluation import evaluate as ev
from halting.models import build_model
from halting.tasks import get_task
from halting.training.checkpoint import atomic_save, load_checkpoint
from halting.training.system import HaltingSystem

MAZE_SIDE = 6
TASK_KEYS = {
    "maze": {"exact_accuracy", "accuracy", "path_f1", "valid_optimal_rate"},
    "parity": {"accuracy"},
    "addition": {"accuracy_place", "accuracy_sequence"},
}
STEP_KEYS = {
    "steps_mean",
    "steps_median",
    "steps_p90",
    "steps_max",
    "forced_halt_rate",
    "forced_halt_rate_examples",
    "penalty",
}
TOP_KEYS = {
    "task",
    "experiment",
    "model_type",
    "criterion",
    "tau",
    "seed",
    "n_examples",
    "headline",
    "code_version",
    "max_ponder",
    "learned",
    "max_steps",
}
PER_EXAMPLE = ["example_id", "mode", "difficulty", "correct", "steps_mean", "steps_max"]
TASK_CONFIG = {
    "parity": {"bits": 6, "val_size": 24},
    "maze": {},
    "addition": {"sequence_length": 3, "max_digits": 2, "val_size": 24},
}


# --- fixtures: tiny models, a tiny maze folder, checkpoints ------------------------------------


def tiny_config(task: str, model_type: str, criterion: str, **extra) -> dict:
    c = {
        "task": task,
        "model_type": model_type,
        "halting": criterion,
        "hidden_size": 8,
        "max_steps": 3,
        "batch_size": 8,
        "seed": 3,
        **TASK_CONFIG[task],
        **extra,
    }
    if model_type == "act_rnn":
        c["time_limit"] = 4
    else:
        c.update(
            ut_act=criterion != "fixed",
            ut_max_hops=3,
            ut_embedding_size=8,
            ut_heads=2,
            ut_key_depth=8,
            ut_value_depth=8,
            ut_filter_size=8,
        )
    return c


def random_maze(rng: np.random.Generator, side: int = MAZE_SIDE) -> np.ndarray:
    """A random grid, ~25% walls, S and G at random open cells with G reachable."""
    while True:
        grid = np.where(rng.random((side, side)) < 0.25, WALL, OPEN).astype(np.uint8)
        s, g = rng.choice(side * side, size=2, replace=False)
        grid.flat[s], grid.flat[g] = START, GOAL
        dist, _ = bfs_parents(grid)
        if dist.flat[g] > 1:
            return grid


def write_maze_folder(root: Path, n: int = 10, seed: int = 0) -> Path:
    """A tiny maze dataset folder in HRM's format (train and test), canonical labels."""
    from halting.data.maze_format import write_split

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        grids = np.stack([random_maze(rng) for _ in range(n)])
        labels = np.stack([canonical_label(g) for g in grids])
        write_split(root / split, grids.reshape(n, -1), labels.reshape(n, -1))
    (root / "identifiers.json").write_text(json.dumps(["<blank>"]))
    return root


@pytest.fixture(scope="module")
def maze_dir(tmp_path_factory) -> Path:
    return write_maze_folder(tmp_path_factory.mktemp("maze") / "maze-6x6")


def data_meta_for(config: dict, maze_dir: Path | None = None) -> dict:
    cfg = make_config(config)
    if cfg.task == "maze":
        return {
            "task": "maze",
            "vocab_size": 6,
            "seq_len": MAZE_SIDE**2,
            "size": MAZE_SIDE,
            "data_dir": str(maze_dir),
        }
    from halting.tasks import get_task

    return get_task(cfg.task).data_meta(cfg)


def save_checkpoint(path: Path, config: dict, data_meta: dict, seed: int = 0) -> HaltingSystem:
    """A checkpoint in train.py's final.ckpt format, from a freshly initialised system."""
    torch.manual_seed(seed)
    system = HaltingSystem(config, data_meta, "test-version")
    atomic_save(
        {
            "state_dict": system.state_dict(),
            "hyper_parameters": dict(system.hparams),
            "global_step": 0,
            "epoch": 0,
        },
        path,
    )
    return system


# --- eval.json / per_example.parquet / examples.npz over tasks x models ------------------------

CASES = [
    ("parity", "act_rnn", "act"),
    ("parity", "universal_transformer", "pondernet"),
    ("addition", "act_rnn", "pondernet"),
    ("addition", "universal_transformer", "act"),
    ("maze", "act_rnn", "fixed"),
    ("maze", "universal_transformer", "act"),
]


def _maze_extra(task: str, maze_dir: Path) -> dict:
    return {"data_dir": str(maze_dir), "max_steps": None, "max_epochs": 1} if task == "maze" else {}


@pytest.mark.parametrize("task,model_type,criterion", CASES)
def test_outputs_format_and_ranges(tmp_path, maze_dir, task, model_type, criterion):
    config = tiny_config(task, model_type, criterion, **_maze_extra(task, maze_dir))
    meta = data_meta_for(config, maze_dir)
    save_checkpoint(tmp_path / "final.ckpt", config, meta)
    out = tmp_path / "out" / "nested"
    report = ev.evaluate(
        tmp_path / "final.ckpt",
        out_dir=out,
        device="cpu",
        batch_size=7,
        experiment="exp1",
        progress=False,
    )
    cfg = make_config(config)
    M = cfg.max_ponder
    assert json.loads((out / "eval.json").read_text()) == report
    assert TOP_KEYS <= set(report)
    n = 10 if task == "maze" else 24
    assert (
        report["task"],
        report["experiment"],
        report["model_type"],
        report["criterion"],
        report["seed"],
        report["n_examples"],
        report["headline"],
        report["max_ponder"],
        report["code_version"],
    ) == (task, "exp1", model_type, criterion, 3, n, get_task(task).headline, M, "test-version")
    assert report["tau"] == cfg.tau
    for mode in ("learned", "max_steps"):
        m = report[mode]
        expected = (
            TASK_KEYS[task]
            | STEP_KEYS
            | ({"expected_steps_mean"} if criterion == "pondernet" else set())
        )
        assert set(m) == expected
        for key in TASK_KEYS[task] | {"forced_halt_rate", "forced_halt_rate_examples"}:
            assert 0.0 <= m[key] <= 1.0, (mode, key, m[key])
        assert 1.0 <= m["steps_mean"] <= m["steps_max"] <= M
        assert m["steps_median"] <= m["steps_p90"] <= m["steps_max"]
        assert m["penalty"] >= 0.0 and math.isfinite(m["penalty"])
        if criterion == "fixed":
            assert m["penalty"] == 0.0
    mx = report["max_steps"]
    assert (mx["steps_mean"], mx["steps_max"], mx["forced_halt_rate"]) == (M, M, 1.0)
    if criterion == "fixed":
        assert report["learned"]["steps_mean"] == M

    df = pd.read_parquet(out / "per_example.parquet")
    assert list(df.columns[:6]) == PER_EXAMPLE and len(df) == 2 * n
    assert df["correct"].dtype == bool
    for mode in ("learned", "max_steps"):
        rows = df[df["mode"] == mode]
        assert rows["example_id"].tolist() == list(range(n))
        assert rows["correct"].mean() == pytest.approx(report[mode][get_task(task).headline])
        assert rows["steps_mean"].mean() == pytest.approx(report[mode]["steps_mean"])
        assert rows["steps_max"].max() <= M and (rows["steps_max"] >= rows["steps_mean"]).all()
    assert (df[df["mode"] == "max_steps"]["steps_mean"] == M).all()
    if task == "maze":
        ex = np.load(out / "examples.npz")
        k = 8
        assert ex["inputs"].shape == ex["labels"].shape == ex["predictions"].shape == (k, 6, 6)
        assert ex["inputs"].dtype == ex["predictions"].dtype == np.uint8
        assert ex["steps"].dtype == np.float32 and ex["steps"].shape == (k, 6, 6)
        assert ex["example_id"].tolist() == list(range(k))
        learned = df[df["mode"] == "learned"].iloc[:k]
        np.testing.assert_allclose(
            ex["steps"].reshape(k, -1).mean(1), learned["steps_mean"], rtol=1e-6
        )
        assert learned["difficulty"].tolist() == [shortest_path_moves(g) for g in ex["inputs"]]
    else:
        assert not (out / "examples.npz").exists()


def test_toy_data_is_the_training_validation_set():
    """split "test" is exactly the validation set training used (parity extrapolation: k > bits/2);
    split "train" the first training batches (k <= bits/2)."""
    config = make_config(
        tiny_config(
            "parity",
            "act_rnn",
            "act",
            bits=8,
            val_size=30,
            parity_extrapolate=True,
            parity_layout="prefix",
        )
    )
    test = ev.load_eval_data(config, {})
    val = toy.parity_val_set(3, 30, 8, layout="prefix", extrapolate=True)
    for key in val:
        np.testing.assert_array_equal(test[key], val[key])
    assert (test["difficulty"] == val["k"]).all() and test["difficulty"].min() > 4
    train = ev.load_eval_data(config, {}, split="train", n_examples=20)
    first = toy.parity_batch(3, 0, 8, 8, layout="prefix", k_min=1, k_max=4)
    np.testing.assert_array_equal(train["x"][:8], first["x"])
    assert len(train["x"]) == 20 and train["difficulty"].max() <= 4
    add = make_config(tiny_config("addition", "act_rnn", "act", val_size=5))
    data = ev.load_eval_data(add, {}, n_examples=3)
    digits = toy.addition_val_set(3, 5, 3, 2)["digits"][:3]
    np.testing.assert_allclose(data["difficulty"], digits.sum(1) / 3)


# --- a hand-made maze case with forced outputs ----------------------------------------------


def grid(*rows: str) -> np.ndarray:
    return np.array([[CHARSET.index(c) + 1 for c in row] for row in rows], dtype=np.int64)


# S (0,0) -> G (2,4): 6 moves; the canonical path goes down then right along row 2, another
# shortest path goes right along row 0 and down column 4.
MAZE = grid("S    ", " # # ", "    G", " ### ", "     ")
ROW0_PATH = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 4)]


def _forced_case():
    a = MAZE.copy()
    b = MAZE.copy()
    b[4, 4] = WALL  # off every shortest path: a different input, the same canonical label
    c = MAZE.copy()
    c[4, 0] = WALL
    inputs = np.stack([a, b, c])
    labels = np.stack([canonical_label(g) for g in inputs])
    other = b.copy()
    for cell in ROW0_PATH:
        other[cell] = PATH
    learned = np.stack([labels[0], other, c])  # exact; another shortest path; input copy
    return inputs, labels, learned


@pytest.mark.parametrize("units", ["cell", "puzzle"])
def test_metrics_on_forced_outputs(tmp_path, monkeypatch, units):
    """Hand-computed maze metrics, step summaries and the batch-size-weighted penalty."""
    inputs, labels, learned = _forced_case()
    N, L, M = 3, 25, 3
    if units == "cell":  # per-position halting (UT): example 1 has 5 cells forced to M
        steps = np.ones((N, L))
        steps[1] = 2.0
        steps[1, :5] = 3.0
        steps[2] = 3.0
    else:  # per-puzzle halting (ACT-RNN)
        steps = np.array([[1.0], [2.0], [3.0]])
    key = {inputs[i].tobytes(): i for i in range(N)}
    config = {
        "task": "maze",
        "model_type": "universal_transformer",
        "halting": "act",
        "ut_act": True,
        "ut_max_hops": M,
        "hidden_size": 8,
        "ut_embedding_size": 8,
        "ut_heads": 2,
        "ut_key_depth": 8,
        "ut_value_depth": 8,
        "ut_filter_size": 8,
        "data_dir": "unused",
        "max_epochs": 1,
    }
    model = build_model(make_config(config), {"vocab_size": 6, "seq_len": L})

    def forward(x, mask=None, mode=None, record_steps=False):
        rows = [key[r.numpy().tobytes()] for r in x]
        pred = torch.from_numpy(labels[rows] if mode == "max" else learned[rows])  # (B, 5, 5)
        s = (
            torch.full((len(rows), steps.shape[1]), float(M))
            if mode == "max"
            else torch.from_numpy(steps[rows]).float()
        )
        p = F.one_hot(s.long() - 1, M).float()  # (B, U, M)
        return HaltingOutput(
            logits=10.0 * F.one_hot(pred.flatten(1), 6).float(),
            p=p,
            halt_prob=torch.zeros_like(p),
            steps=s,
            remainder=torch.zeros_like(s),
            ponder_cost=s.mean(),
            unit_mask=torch.ones_like(s, dtype=torch.bool),
        )

    monkeypatch.setattr(model, "forward", forward)
    data = {
        "inputs": inputs.reshape(N, L),
        "labels": labels.reshape(N, L),
        "example_id": np.array([10, 11, 12]),
        "difficulty": np.array([6, 6, 6]),
    }
    res = ev.evaluate_model(model, config, data, batch_size=2)  # batches of 2 and 1

    got = res.modes["learned"]
    assert got["exact_accuracy"] == pytest.approx(1 / 3)
    assert got["valid_optimal_rate"] == pytest.approx(2 / 3)
    assert got["accuracy"] == pytest.approx((25 + 15 + 20) / 75)  # 10 and 5 path cells wrong
    assert got["path_f1"] == pytest.approx(2 * 5 / (2 * 5 + 5 + 10))  # TP 5, FP 5, FN 10
    per_ex = [1.0, 2.2, 3.0] if units == "cell" else [1.0, 2.0, 3.0]
    assert got["steps_mean"] == pytest.approx(np.mean(per_ex))
    assert got["steps_median"] == pytest.approx(per_ex[1])
    assert got["steps_p90"] == pytest.approx(per_ex[1] + 0.8 * (per_ex[2] - per_ex[1]))
    assert got["steps_max"] == 3.0
    assert got["forced_halt_rate"] == pytest.approx(30 / 75 if units == "cell" else 1 / 3)
    assert got["forced_halt_rate_examples"] == pytest.approx(2 / 3 if units == "cell" else 1 / 3)
    # penalty: batch costs (per_ex[0] + per_ex[1]) / 2 and per_ex[2], weighted by sizes 2 and 1
    assert got["penalty"] == pytest.approx(np.mean(per_ex))
    mx = res.modes["max_steps"]
    assert (mx["exact_accuracy"], mx["valid_optimal_rate"], mx["accuracy"], mx["path_f1"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert (mx["steps_mean"], mx["forced_halt_rate"], mx["penalty"]) == (3.0, 1.0, 3.0)

    df = res.per_example
    rows = df[df["mode"] == "learned"]
    assert rows["example_id"].tolist() == [10, 11, 12]
    assert rows["correct"].tolist() == [True, False, False]
    assert rows["valid_optimal"].tolist() == [True, True, False]
    assert rows["token_accuracy"].tolist() == pytest.approx([1.0, 0.6, 0.8])
    assert rows["steps_mean"].tolist() == pytest.approx(per_ex)
    assert rows["steps_max"].tolist() == ([1.0, 3.0, 3.0] if units == "cell" else per_ex)
    assert rows["forced"].tolist() == [False, units == "cell", True]
    assert df[df["mode"] == "max_steps"]["correct"].all()

    ex = res.examples
    np.testing.assert_array_equal(ex["predictions"], learned.astype(np.uint8))
    np.testing.assert_array_equal(ex["inputs"], inputs.astype(np.uint8))
    np.testing.assert_array_equal(ex["labels"], labels.astype(np.uint8))
    np.testing.assert_array_equal(ex["example_id"], [10, 11, 12])
    want_steps = np.broadcast_to(steps, (N, L)).reshape(N, 5, 5)
    np.testing.assert_array_equal(ex["steps"], want_steps.astype(np.float32))


@pytest.mark.parametrize("model_type", ["act_rnn", "universal_transformer"])
def test_fixed_depth_runs_one_forward_for_both_modes(monkeypatch, model_type):
    """Fixed depth ignores the forward mode, so one forward per batch serves both modes."""
    config = tiny_config("parity", model_type, "fixed")
    torch.manual_seed(0)
    model = build_model(make_config(config), data_meta_for(config)).eval()
    data = ev.load_eval_data(make_config(config), {})  # 24 examples
    with torch.no_grad():
        a, b = (model(torch.from_numpy(data["x"]), mode=m) for m in ("eval", "max"))
    assert torch.equal(a.logits, b.logits) and torch.equal(a.steps, b.steps)
    calls, forward = [], model.forward

    def counted(x, **kw):
        calls.append(kw["mode"])
        return forward(x, **kw)

    monkeypatch.setattr(model, "forward", counted)
    res = ev.evaluate_model(model, config, data, batch_size=10)  # batches of 10, 10, 4
    assert calls == ["eval"] * 3
    assert res.modes["learned"] == res.modes["max_steps"]
    df = res.per_example.drop(columns="mode")
    pd.testing.assert_frame_equal(
        df.iloc[:24].reset_index(drop=True), df.iloc[24:].reset_index(drop=True)
    )


# --- reproducibility, devices ------------------------------------------------------------------


def test_pondernet_sampling_is_seeded_and_rng_restored(tmp_path):
    config = tiny_config("parity", "act_rnn", "pondernet", lambda_p=0.5, val_size=64)
    save_checkpoint(tmp_path / "c.ckpt", config, data_meta_for(config))
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = ev.evaluate(tmp_path / "c.ckpt", out_dir=tmp_path / "a", device="cpu", batch_size=16)
    assert torch.equal(torch.rand(3), before)  # the caller's RNG stream is untouched
    b = ev.evaluate(tmp_path / "c.ckpt", out_dir=tmp_path / "b", device="cpu", batch_size=16)
    assert a == b
    pa = pd.read_parquet(tmp_path / "a" / "per_example.parquet")
    pd.testing.assert_frame_equal(pa, pd.read_parquet(tmp_path / "b" / "per_example.parquet"))
    learned = pa[pa["mode"] == "learned"]["steps_mean"]
    assert learned.nunique() > 1  # the sampled halting does vary across examples
    assert "expected_steps" in pa.columns


def test_resolve_device():
    assert ev.resolve_device("cpu") == torch.device("cpu")
    auto = ev.resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert ev.resolve_device("gpu").type == "cuda"
    else:
        with pytest.raises(ev.EvaluationInputError, match="CUDA is not available"):
            ev.resolve_device("gpu")


# --- atomic writes -----------------------------------------------------------------------------


def test_failed_write_leaves_no_partial_files(tmp_path, monkeypatch):
    config = tiny_config("parity", "act_rnn", "act")
    save_checkpoint(tmp_path / "c.ckpt", config, data_meta_for(config))
    out = tmp_path / "out"
    out.mkdir()
    (out / "eval.json").write_text('{"stale": true}')

    def broken_to_parquet(self, path, **kw):
        path.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken_to_parquet)
    with pytest.raises(OSError, match="disk full"):
        ev.evaluate(tmp_path / "c.ckpt", out_dir=out, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == []  # no temp file, no stale eval.json
    monkeypatch.undo()
    ev.evaluate(tmp_path / "c.ckpt", out_dir=out, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["eval.json", "per_example.parquet"]


# --- checkpoints from a real training run: EMA weights, the CLI --------------------------------


@pytest.fixture(scope="module")
def trained_ema_run(tmp_path_factory) -> Path:
    from halting.training.train import train

    run_dir = tmp_path_factory.mktemp("ema_run")
    config = tiny_config(
        "parity", "act_rnn", "act", max_steps=4, use_ema=True, ema_decay=0.5, learning_rate=0.05
    )
    train(
        config,
        run_dir=run_dir,
        accelerator="cpu",
        log_every_n_steps=1,
        val_every_n_steps=4,
        progress_bar=False,
    )
    return run_dir


def test_evaluates_ema_weights(trained_ema_run, tmp_path, monkeypatch):
    """last.ckpt of an EMA run holds the average in state_dict and the raw weights in
    current_model_state: the model evaluated carries the average."""
    ckpt = load_checkpoint(trained_ema_run / "checkpoints" / "last.ckpt")
    assert "current_model_state" in ckpt
    seen = {}
    real = ev.evaluate_model

    def spy(model, *args, **kwargs):
        seen["state"] = {k: v.clone() for k, v in model.state_dict().items()}
        return real(model, *args, **kwargs)

    monkeypatch.setattr(ev, "evaluate_model", spy)
    report = ev.evaluate(
        trained_ema_run / "checkpoints" / "last.ckpt", out_dir=tmp_path, device="cpu"
    )
    assert report["ema"] is True
    ema = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items()}
    raw = {k[len("model.") :]: v for k, v in ckpt["current_model_state"].items()}
    assert set(seen["state"]) == set(ema)
    assert all(torch.equal(seen["state"][k], ema[k]) for k in ema)
    assert any(not torch.equal(seen["state"][k], raw[k]) for k in raw)


def test_cli_on_a_trained_checkpoint(trained_ema_run, tmp_path, capsys):
    out = tmp_path / "res"
    rc = cli_main(
        [
            "evaluate",
            str(trained_ema_run / "final.ckpt"),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--batch_size",
            "5",
            "--n_examples",
            "11",
            "--experiment",
            "e1",
            "--no_progress",
        ]
    )
    assert rc == 0
    report = json.loads((out / "eval.json").read_text())
    assert (report["experiment"], report["n_examples"], report["criterion"]) == ("e1", 11, "act")
    assert len(pd.read_parquet(out / "per_example.parquet")) == 22
    assert "accuracy" in capsys.readouterr().out


def test_cli_bad_checkpoint_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "nope" / "final.ckpt"
    rc = cli_main(["evaluate", str(missing), "--out", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(missing) in err and "\n" not in err and "Traceback" not in err
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    rc = cli_main(["evaluate", str(garbage), "--out", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(garbage) in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def _not_a_checkpoint(path: Path, kind: str) -> None:
    """Write a file that is not a halting checkpoint to `path`."""
    if kind == "text":
        path.write_text("step,loss\n1,0.5\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    elif kind == "object":  # a torch file holding an object a weights_only read refuses
        torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(lr=1)}, path)
    elif kind == "weights":
        torch.save({"weights": torch.zeros(2)}, path)
    elif kind == "foreign lightning":
        torch.save({"state_dict": {}, "hyper_parameters": {"lr": 0.1}}, path)


@pytest.mark.parametrize("kind", ["text", "empty", "zip", "object", "weights", "foreign lightning"])
def test_cli_says_a_file_is_not_a_halting_checkpoint(tmp_path, capsys, kind):
    path = tmp_path / "model.ckpt"
    _not_a_checkpoint(path, kind)
    rc = cli_main(["evaluate", str(path), "--out", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"halting evaluate: error: {path} is not a halting checkpoint ("), err
    assert "weights_only" not in err and "safe_globals" not in err, err


def test_missing_maze_folder_is_a_clear_error(tmp_path, maze_dir):
    config = tiny_config("maze", "act_rnn", "act", **_maze_extra("maze", maze_dir))
    save_checkpoint(tmp_path / "m.ckpt", config, data_meta_for(config, maze_dir))
    with pytest.raises(ev.EvaluationInputError, match="nowhere"):
        ev.evaluate(
            tmp_path / "m.ckpt", data_dir=tmp_path / "nowhere", out_dir=tmp_path / "o", device="cpu"
        )
    report = ev.evaluate(
        tmp_path / "m.ckpt",
        data_dir=maze_dir,
        out_dir=tmp_path / "o",
        device="cpu",
        split="train",
        n_examples=4,
    )
    assert report["n_examples"] == 4 and report["split"] == "train"


BAD_INPUTS = {  # case -> what the one-line message must name
    "no maze folder": r"no maze data folder: pass data_dir \(--data\)",
    "split": "split must be 'test' or 'train', got 'val'",
    "n_examples": "n_examples must be >= 1, got 0",
    "batch_size": "batch_size must be >= 1, got 0",
    "no examples": r"no examples to evaluate: data\['example_id'\] is empty; pass load_eval_data",
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_are_named_in_the_error(case):
    config = tiny_config("parity", "act_rnn", "act")
    cfg = make_config(config)
    data = ev.load_eval_data(cfg, {}, n_examples=3)
    model = build_model(cfg, data_meta_for(config))
    no_folder = SimpleNamespace(task="maze", data_dir=None)  # make_config requires data_dir
    calls = {
        "no maze folder": lambda: ev.load_eval_data(no_folder, {}),
        "split": lambda: ev.load_eval_data(cfg, {}, split="val"),
        "n_examples": lambda: ev.load_eval_data(cfg, {}, n_examples=0),
        "batch_size": lambda: ev.evaluate_model(model, cfg, data, batch_size=0),
        "no examples": lambda: ev.evaluate_model(model, cfg, {k: v[:0] for k, v in data.items()}),
    }
    with pytest.raises(ev.EvaluationInputError, match=BAD_INPUTS[case]):
        calls[case]()


MAZE_HARD = Path("/work/shared/maze-30x30-hard-1k")


@pytest.mark.skipif(not MAZE_HARD.is_dir(), reason="reference Maze-Hard folder absent")
def test_maze_hard_difficulty_is_the_shortest_path_length():
    """On the real test split: shortest paths of 109-153 moves (the dataset's README)."""
    config = make_config({"task": "maze", "data_dir": str(MAZE_HARD), "max_epochs": 1})
    data = ev.load_eval_data(config, {"seq_len": 900}, n_examples=25)
    assert data["inputs"].shape == (25, 900) and data["inputs"].dtype == np.int64
    assert 109 <= data["difficulty"].min() and data["difficulty"].max() <= 153
    with pytest.raises(ev.EvaluationInputError, match="trained on 36"):
        ev.load_eval_data(config, {"seq_len": 36}, n_examples=2)


# --- PonderNet: E[n] and the KL of the full distribution, whatever the batch -------------------


@pytest.mark.parametrize("model_type", ["act_rnn", "universal_transformer"])
def test_pondernet_expected_steps_and_kl_do_not_depend_on_the_batch(tmp_path, model_type):
    """A unit's E[n] and KL are its own: evaluated alone (batch 1) or among 127 others that halt
    later, they agree. (Stopping at the batch's last halting step gave a parity ACT-RNN E[n]
    1.03 vs 1.25 and KL 1.09 vs 0.63, averaged over examples.)"""
    from halting.training.train import train

    config = tiny_config(
        "parity",
        model_type,
        "pondernet",
        val_size=128,
        max_steps=4,
        learning_rate=0.05,
        lambda_p=0.3,
    )
    train(
        config,
        run_dir=tmp_path / "run",
        accelerator="cpu",
        log_every_n_steps=1,
        val_every_n_steps=4,
        progress_bar=False,
    )
    reports, tables = {}, {}
    for size in (1, 128):
        reports[size] = ev.evaluate(
            tmp_path / "run" / "final.ckpt",
            out_dir=tmp_path / str(size),
            device="cpu",
            batch_size=size,
        )
        tables[size] = pd.read_parquet(tmp_path / str(size) / "per_example.parquet")
    for column in ("expected_steps", "kl"):
        np.testing.assert_allclose(tables[1][column], tables[128][column], rtol=0, atol=1e-6)
    for mode in ("learned", "max_steps"):
        for key in ("expected_steps_mean", "penalty"):
            assert reports[1][mode][key] == pytest.approx(reports[128][mode][key], abs=1e-6)
        rows = tables[128][tables[128]["mode"] == mode]
        assert rows["kl"].mean() == pytest.approx(reports[128][mode]["penalty"], rel=1e-5)
        assert rows["expected_steps"].mean() == pytest.approx(
            reports[128][mode]["expected_steps_mean"], rel=1e-6
        )


def test_graves_addition_trains_and_evaluates_only_the_numbers_present(tmp_path):
    """Training and evaluation hand the model addition's `present` mask: padding takes no
    steps in per_example.parquet, and the difficulty is digits per number present."""
    from halting.models import build_model
    from halting.training.system import HaltingSystem
    from halting.training.train import train

    config = make_config(
        {
            "task": "addition",
            "addition_distribution": "graves",
            "sequence_length": 4,
            "max_digits": 2,
            "hidden_size": 8,
            "time_limit": 4,
            "batch_size": 8,
            "max_steps": 3,
            "val_size": 40,
        }
    )
    train(config, run_dir=tmp_path, progress_bar=False)
    system = HaltingSystem(config.to_dict(), {"places": 3}, "test")
    drawn = toy.addition_batch(0, 0, 16, 4, 2, "graves")
    batch = {k: torch.from_numpy(v) for k, v in drawn.items()}
    out = system(batch, mode="eval")
    assert out.steps[~batch["present"]].eq(0).all() and out.steps[batch["present"]].ge(1).all()

    model = build_model(config, {"places": 3}).eval()
    data = ev.load_eval_data(config, {"places": 3})
    result = ev.evaluate_model(model, config, data, batch_size=16)
    learned = result.per_example[result.per_example["mode"] == "learned"].set_index("example_id")
    lengths = data["present"].sum(1)
    assert set(lengths.tolist()) == {1, 2, 3, 4}
    for i in [int(np.argmax(lengths == k)) for k in (1, 3)]:
        with torch.no_grad():
            alone = model(torch.from_numpy(data["x"][i : i + 1, : lengths[i]]), mode="eval")
        assert learned.loc[i, "steps_mean"] == pytest.approx(float(alone.steps.float().mean()))
        assert learned.loc[i, "difficulty"] == data["digits"][i, : lengths[i]].mean()
