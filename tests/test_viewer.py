"""The Streamlit viewer: its pure helpers, the `halting view` wrapper, and the app itself through
Streamlit's AppTest on checkpoints of every model type trained here (tiny, CPU)."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from halting.config import make_config
from halting.data import toy
from halting.data.grid import (
    GOAL,
    OPEN,
    PAD,
    PATH,
    START,
    WALL,
    canonical_label,
    shortest_path_moves,
)
from halting.models import build_model
from halting.viewer import cli as viewer_cli
from halting.viewer import images, run_files, toy_inputs, traces

VIEWER = viewer_cli.VIEWER

# A 5x5 maze with two shortest S-G paths (around the central wall, either side).
MAZE = np.array(
    [
        [START, OPEN, OPEN, WALL, WALL],
        [OPEN, WALL, OPEN, WALL, WALL],
        [OPEN, OPEN, OPEN, OPEN, OPEN],
        [WALL, WALL, OPEN, WALL, OPEN],
        [WALL, WALL, OPEN, OPEN, GOAL],
    ],
    dtype=np.uint8,
)


def tiny_model(task: str, model_type: str, criterion: str = "act", **extra) -> torch.nn.Module:
    """An untrained model built in-process (the pure helpers need no checkpoint)."""
    values = {
        "task": task,
        "model_type": model_type,
        "halting": criterion,
        "hidden_size": 8,
        **extra,
    }
    if model_type == "universal_transformer":
        values.update(
            ut_act=criterion != "fixed",
            ut_max_hops=4,
            ut_embedding_size=8,
            ut_heads=2,
            ut_key_depth=8,
            ut_value_depth=8,
            ut_filter_size=8,
        )
    else:
        values["time_limit"] = 4
    values.update({"max_epochs": 1, "data_dir": "unused"} if task == "maze" else {"max_steps": 1})
    config = make_config(values)
    meta = {"seq_len": 25, "vocab_size": 6}
    if task == "addition":
        meta["places"] = toy.addition_places(config.sequence_length, config.max_digits)
    torch.manual_seed(0)
    return build_model(config, meta).eval()


# --- images ----------------------------------------------------------------------------------


def test_grid_rgb_paints_each_cell_its_token_colour_and_frames_errors():
    px = 10
    errors = np.zeros((5, 5), dtype=bool)
    errors[2, 3] = True
    img = images.grid_rgb(MAZE, px, errors)
    assert img.shape == (50, 50, 3) and img.dtype == np.uint8
    for r in range(5):
        for c in range(5):
            assert tuple(img[r * px + px // 2, c * px + px // 2]) == tuple(
                images.PALETTE[MAZE[r, c]]
            )
    assert tuple(img[2 * px, 3 * px]) == tuple(images.ERROR_RGB)  # the frame of the wrong cell
    assert tuple(img[2 * px, 2 * px]) != tuple(images.ERROR_RGB)  # its neighbour is not framed
    assert np.array_equal(images.grid_rgb(MAZE.ravel(), px), images.grid_rgb(MAZE, px))
    with pytest.raises(ValueError, match="not square"):
        images.grid_rgb(np.zeros(24, dtype=np.uint8))


def test_heatmap_maps_the_range_ends_to_the_colormap_ends_and_dims_walls():
    values = np.array([[0.0, 1.0], [0.5, 1.0]])
    img = images.heatmap_rgb(
        values, 0.0, 1.0, "viridis", 10, dim=np.array([[False, False], [False, True]])
    )
    table = images.colour_table("viridis")
    assert tuple(img[5, 5]) == tuple(table[0]) and tuple(img[5, 15]) == tuple(table[255])
    assert tuple(img[15, 5]) == tuple(table[128])
    assert (img[15, 15].astype(int) < table[255].astype(int)).all()  # dimmed
    assert images.colourbar_rgb("viridis", 100, 5).shape == (5, 100, 3)
    assert (
        images.cell_pixels(30) == 16
        and images.cell_pixels(2) == 48
        and images.cell_pixels(200) == 6
    )


def test_bits_rgb_colours_minus_zero_plus():
    img = images.bits_rgb(np.array([-1.0, 0.0, 1.0]), 10)
    assert img.shape == (10, 30, 3)
    assert [tuple(img[5, 5 + 10 * i]) for i in range(3)] == [tuple(c) for c in images.BIT_PALETTE]


# --- maze scores and traces ------------------------------------------------------------------


def test_maze_scores_exact_and_valid_optimal():
    label = canonical_label(MAZE)
    right = traces.maze_scores(MAZE, label, label)
    assert right["exact"] and right["valid_optimal"] and right["cell_accuracy"] == 1.0
    other = MAZE.copy()  # another shortest path than the canonical one (which turns down at (2, 2))
    for cell in [(1, 0), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (3, 4)]:
        other[cell] = PATH
    alt = traces.maze_scores(MAZE, label, other)
    assert shortest_path_moves(MAZE) == 8 and (other == PATH).sum() == 7
    assert not alt["exact"] and alt["valid_optimal"]
    assert alt["errors"].sum() == (other != label).sum() > 0
    wrong = label.copy()
    wrong[label == PATH] = OPEN
    bad = traces.maze_scores(MAZE, label, wrong)
    assert not bad["exact"] and not bad["valid_optimal"]
    assert bad["cell_accuracy"] == pytest.approx(1 - (label == PATH).sum() / 25)


def test_cell_errors_skip_pad_cells_and_match_maze_scores():
    label = canonical_label(MAZE)
    other = label.copy()
    other[label == PATH] = OPEN
    errors = traces.cell_errors(label.ravel(), other.ravel())  # flat grids come back square
    assert errors.shape == label.shape
    assert np.array_equal(errors, traces.maze_scores(MAZE, label, other)["errors"])
    padded = label.copy()
    padded[0, 0] = PAD
    assert not traces.cell_errors(padded, other)[0, 0]  # a pad label is never scored


def test_step_accuracy_scores_each_step_on_its_own():
    label = canonical_label(MAZE)
    wrong = label.copy()
    wrong[0, 1] = WALL
    frame = traces.step_accuracy(np.stack([wrong, label]), label)
    assert list(frame.index) == [1, 2]
    assert frame["cell accuracy"].tolist() == pytest.approx([24 / 25, 1.0])
    assert frame["exact"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("model_type", ["universal_transformer", "act_rnn"])
@pytest.mark.parametrize("mode", ["eval", "max"])
def test_run_maze_traces_every_ponder_step(model_type, mode):
    model = tiny_model("maze", model_type)
    trace = traces.run_maze(model, MAZE.ravel(), mode)
    M = 4
    assert trace.prediction.shape == (5, 5) and trace.step_predictions.shape == (M, 5, 5)
    assert trace.per_cell == (model_type == "universal_transformer")
    assert trace.p.shape == ((25 if trace.per_cell else 1), M) and trace.max_steps == M
    assert np.allclose(trace.cumulative_halting(M), 1.0, atol=1e-5)
    assert (np.diff([trace.cumulative_halting(n).sum() for n in range(1, M + 1)]) >= -1e-6).all()
    if mode == "max":  # the readout is step M's output
        assert trace.steps_run == M and np.array_equal(trace.prediction, trace.step_predictions[-1])
    else:
        assert 1 <= trace.steps_run <= M and trace.steps_run == int(np.ceil(trace.steps.max()))
        later = trace.step_predictions[trace.steps_run - 1 :]
        assert (later == later[0]).all()  # halted: each later step repeats the last computed
    out = model(torch.as_tensor(MAZE.ravel()[None].astype(np.int64)), mode=mode)
    assert np.array_equal(trace.prediction.ravel(), out.logits[0].argmax(-1).numpy())
    mean = traces.mean_halting(trace, MAZE.ravel() != WALL)
    assert mean.shape == (M,) and mean.sum() == pytest.approx(1.0, abs=1e-5)


def test_pondernet_trace_is_the_same_on_every_rerun():
    model = tiny_model("maze", "universal_transformer", "pondernet")
    first, second = (traces.run_maze(model, MAZE.ravel(), "eval") for _ in range(2))
    assert np.array_equal(first.steps, second.steps)
    assert np.array_equal(first.prediction, second.prediction)


# --- toy tasks -------------------------------------------------------------------------------


def test_parse_bits_reads_characters_and_numbers():
    assert toy_inputs.parse_bits("+-0+", 6).tolist() == [1, -1, 0, 1, 0, 0]
    assert toy_inputs.parse_bits("1 -1, 0 +1", 4).tolist() == [1, -1, 0, 1]
    assert toy_inputs.parse_bits("1-.", 3).tolist() == [1, -1, 0]
    for text, message in (
        ("+x", "unexpected character"),
        ("1 2", "not one of"),
        ("+++++", "5 entries"),
    ):
        with pytest.raises(ValueError, match=message):
            toy_inputs.parse_bits(text, 4)
    x = toy.parity_batch(3, 0, 1, 8)["x"][0]
    assert np.array_equal(toy_inputs.parse_bits(toy_inputs.format_bits(x), 8), x)
    assert toy_inputs.parity_target(x) == toy.parity_batch(3, 0, 1, 8)["y"][0]


def test_parse_numbers_limits_count_and_digits():
    assert toy_inputs.parse_numbers("12 + 345, 7", 3, 3) == [12, 345, 7]
    for text, message in (
        ("", "at least one"),
        ("1 2 3 4", "trained on 3"),
        ("1234", "more than 3 digits"),
        ("-3", "not a non-negative"),
        ("1.5", "not a non-negative"),
    ):
        with pytest.raises(ValueError, match=message):
            toy_inputs.parse_numbers(text, 3, 3)


def test_number_encoding_and_targets_match_the_generator():
    batch = toy.addition_batch(5, 0, 16, 4, 3)
    places = toy.addition_places(4, 3)
    for x, digits, y in zip(batch["x"], batch["digits"], batch["y"]):
        numbers = toy_inputs.decode_numbers(x, digits)
        assert [len(str(n)) for n in numbers] == digits.tolist()
        assert np.array_equal(toy_inputs.encode_numbers(numbers, 3), x)
        assert np.array_equal(toy_inputs.addition_targets(numbers, places), y)
        assert toy_inputs.decode_places(y[-1]) == str(sum(numbers))


def test_decode_places_reads_least_significant_first():
    B = toy.BLANK
    assert toy_inputs.decode_places(np.array([2, 1, B, B])) == "12"
    assert toy_inputs.decode_places(np.array([0, B, B])) == "0"
    assert toy_inputs.decode_places(np.array([B, B])) == "_"
    assert (
        toy_inputs.decode_places(np.array([3, B, 4])) == "4_3"
    )  # a digit after a blank: not a number


@pytest.mark.parametrize("model_type", ["act_rnn", "universal_transformer"])
def test_parity_by_difficulty_matches_a_direct_evaluation(model_type):
    model = tiny_model("parity", model_type, bits=4)
    config = {"bits": 4, "parity_layout": "random"}
    table = traces.parity_by_difficulty(model, config, per_level=16, seed=2)
    assert list(table.index) == [1, 2, 3, 4] and (table["examples"] == 16).all()
    b = toy.parity_batch(2, 3, 16, 4, "random", k_min=3, k_max=3)
    out = model(torch.from_numpy(b["x"]), mode="eval")
    right = out.logits.argmax(-1).numpy() == b["y"]
    assert table.loc[3, "accuracy"] == pytest.approx(right.mean())
    steps = traces.example_steps(out).numpy()
    assert table.loc[3, "mean steps"] == pytest.approx(steps.mean(), rel=1e-5)
    trace = traces.run_toy(model, b["x"][0])
    assert trace.logits.shape == (2,) and trace.p.shape[1] == 4


@pytest.mark.parametrize("model_type", ["act_rnn", "universal_transformer"])
def test_addition_by_difficulty_groups_steps_by_digits(model_type):
    model = tiny_model("addition", model_type, sequence_length=4, max_digits=2)
    table = traces.addition_by_difficulty(model, {"sequence_length": 4, "max_digits": 2}, size=32)
    assert list(table.index) == [1, 2] and table["examples"].sum() == 32 * 3  # t >= 2 only
    assert table["accuracy"].between(0, 1).all() and (table["mean steps"] >= 1).all()
    trace = traces.run_toy(model, toy_inputs.encode_numbers([12, 3, 45], 2))
    assert trace.logits.shape == (3, toy.addition_places(4, 2), 11) and trace.p.shape[0] == 3


def test_addition_by_difficulty_hands_graves_padding_to_the_model_as_its_unit_mask():
    """Under Graves' distribution the steps past a sequence's end are padding: the model gets
    `present` as its mask, as in training and evaluation (no ponder steps there)."""
    model = tiny_model("addition", "act_rnn", sequence_length=4, max_digits=2)
    config = {"sequence_length": 4, "max_digits": 2, "addition_distribution": "graves"}
    seen = []
    forward = model.forward
    model.forward = lambda x, mask=None, **kw: (seen.append(mask), forward(x, mask=mask, **kw))[1]
    table = traces.addition_by_difficulty(model, config, size=32)
    present = toy.addition_batch(0, 0, 32, 4, 2, "graves")["present"]
    assert seen[0] is not None and seen[0].cpu().numpy().tolist() == present.tolist()
    assert not present.all() and table["examples"].sum() == (present[:, 1:]).sum()


# --- runs and curves -------------------------------------------------------------------------


def test_find_checkpoints_and_run_folders(tmp_path):
    for rel in (
        "a/seed0/final.ckpt",
        "a/seed0/checkpoints/last.ckpt",
        "b/run/final.ckpt",
        "a/seed0/logs/version_0/x.ckpt",
        "a/seed0/stray.ckpt",
        ".hidden/final.ckpt",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = run_files.find_checkpoints(tmp_path)
    assert found == sorted(
        str(tmp_path / r)
        for r in ("a/seed0/checkpoints/last.ckpt", "a/seed0/final.ckpt", "b/run/final.ckpt")
    )
    assert run_files.find_checkpoints(tmp_path / "missing") == []
    assert run_files.run_dir_of(found[0]) == run_files.run_dir_of(found[1]) == tmp_path / "a/seed0"
    assert run_files.metrics_file(tmp_path / "a/seed0") is None
    (tmp_path / "a/seed0/train_metrics.csv").write_text("step\n")
    assert run_files.metrics_file(tmp_path / "a/seed0").name == "train_metrics.csv"
    (tmp_path / "a/seed0/metrics.csv").write_text("step\n")
    assert run_files.metrics_file(tmp_path / "a/seed0").name == "metrics.csv"


def test_smoothing_and_curves():
    assert np.array_equal(run_files.smooth(np.array([1.0, 5.0]), 0.0), [1.0, 5.0])
    assert run_files.smooth(np.full(5, 3.0), 0.9) == pytest.approx(np.full(5, 3.0))  # debiased
    assert run_files.smooth(np.array([0.0, 1.0]), 0.5) == pytest.approx([0.0, 0.5 / 0.75])
    frame = pd.DataFrame(
        {
            "step": [0, 0, 1, 1, 2],
            "epoch": [0] * 5,
            "train/loss": [2.0, np.nan, 1.0, np.nan, 0.5],
            "val/accuracy": [np.nan, 0.5, np.nan, 0.7, np.nan],
            "empty": [np.nan] * 5,
        }
    )
    assert run_files.metric_names(frame) == ["val/accuracy", "train/loss"]
    c = run_files.curve(frame, "val/accuracy", 0.0)
    assert list(c.index) == [0, 1] and c["raw"].tolist() == [0.5, 0.7] == c["smoothed"].tolist()
    assert run_files.default_data_dir({"config": {"data_dir": "d"}}) == "d"
    assert run_files.default_data_dir({"config": {}, "data_meta": {"data_dir": "m"}}) == "m"
    assert run_files.default_data_dir({"config": {}}) == ""


# --- `halting view` --------------------------------------------------------------------------


def view_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    viewer_cli.add_arguments(parser, "view")
    return parser.parse_args(list(argv))


def test_view_command_binds_localhost_and_passes_streamlit_options_through(tmp_path):
    cmd = viewer_cli.streamlit_command(view_args())
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(VIEWER)]
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8501"
    assert flags["--browser.gatherUsageStats"] == "false" and "--server.headless" not in flags
    assert cmd[cmd.index("--") + 1 :] == ["--results", "results"]

    ckpt = tmp_path / "x.ckpt"
    cmd = viewer_cli.streamlit_command(
        view_args(
            "--port",
            "9000",
            "--theme.base",
            "dark",
            "--server.address=0.0.0.0",
            "--no-browser",
            "--checkpoint",
            str(ckpt),
            "--data-dir",
            str(tmp_path),
            "--",
            "--logger.level",
            "info",
        )
    )
    script = cmd[cmd.index("--", 5) + 1 :]
    assert script == [
        "--results",
        "results",
        "--checkpoint",
        str(ckpt),
        "--data-dir",
        str(tmp_path),
    ]
    body = cmd[5 : cmd.index("--", 5)]
    assert body[:4] == ["--theme.base", "dark", "--server.address", "0.0.0.0"]  # given first
    assert body.count("--server.address") == 1  # the user's address replaces 127.0.0.1
    flags = dict(zip(body[::2], body[1::2]))
    assert flags["--server.port"] == "9000" and flags["--server.headless"] == "true"
    assert body[-2:] == ["--logger.level", "info"]  # after `--`: passed on verbatim
    with pytest.raises(SystemExit):
        view_args("--no-such-option", "1")


def test_view_refuses_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not viewer_cli.port_free("127.0.0.1", port)
        assert viewer_cli.run(view_args("--port", str(port)), "view") == 2


def test_view_host_reaches_the_command_and_the_port_check(capsys):
    flags = viewer_cli.streamlit_command(view_args("--host", "0.0.0.0"))[5:]
    assert dict(zip(flags[::2], flags[1::2]))["--server.address"] == "0.0.0.0"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        given_address = ("--host", "0.0.0.0", "--server.address", "localhost")  # wins
        for argv in (("--host", "localhost"), given_address):
            capsys.readouterr()
            assert viewer_cli.run(view_args(*argv, "--port", port), "view") == 2
            assert f"port {port} on localhost is in use" in capsys.readouterr().err


def test_view_refuses_a_missing_checkpoint_or_data_dir_before_starting(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / "x.ckpt").write_bytes(b"")
    with socket.socket() as busy:  # were the path not checked first, the port check would answer
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for argv, line in [
            (
                ("--checkpoint", str(tmp_path / "MISSING")),
                f"--checkpoint {tmp_path}/MISSING: no such file",
            ),
            (("--checkpoint", str(folder)), f"--checkpoint {folder}: is a folder"),
            (
                ("--checkpoint", str(tmp_path / "x.ckpt"), "--data-dir", str(tmp_path / "no")),
                f"--data-dir {tmp_path}/no: no such folder",
            ),
        ]:
            capsys.readouterr()
            assert viewer_cli.run(view_args(*argv, "--port", port), "view") == 2
            err = capsys.readouterr().err
            assert err.startswith(f"halting view: {line}") and err.count("\n") == 1, err


# --- the app (Streamlit's AppTest) on trained fixture checkpoints ----------------------------

TINY_UT = {
    "ut_max_hops": 3,
    "ut_embedding_size": 8,
    "ut_heads": 2,
    "ut_key_depth": 8,
    "ut_value_depth": 8,
    "ut_filter_size": 8,
}
TOY_RUNS = {  # name -> config: every backbone on both toy tasks, every criterion somewhere
    "parity_rnn_act": {
        "task": "parity",
        "model_type": "act_rnn",
        "halting": "act",
        "bits": 6,
        "time_limit": 4,
    },
    "parity_ut_pondernet": {
        "task": "parity",
        "model_type": "universal_transformer",
        "halting": "pondernet",
        "ut_act": True,
        "bits": 6,
        **TINY_UT,
    },
    "addition_rnn_pondernet": {
        "task": "addition",
        "model_type": "act_rnn",
        "halting": "pondernet",
        "sequence_length": 3,
        "max_digits": 2,
        "time_limit": 4,
    },
    "addition_ut_fixed": {
        "task": "addition",
        "model_type": "universal_transformer",
        "halting": "fixed",
        "sequence_length": 3,
        "max_digits": 2,
        **TINY_UT,
    },
}


def train_tiny(run_dir: Path, config: dict) -> Path:
    from halting.training.train import train

    values = {"hidden_size": 8, "batch_size": 8, "seed": 0, **config}
    values.setdefault("max_steps" if values["task"] != "maze" else "max_epochs", 2)
    if values["task"] != "maze":
        values["val_size"] = 16
    train(values, run_dir=run_dir, progress_bar=False, log_every_n_steps=1, val_every_n_steps=1)
    return run_dir / "final.ckpt"


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy_runs")
    return {name: train_tiny(root / name, config) for name, config in TOY_RUNS.items()}


def app(results: Path, checkpoint: Path | str | None = None):
    """The viewer after its first run, with a checkpoint typed into the sidebar if given."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(VIEWER), default_timeout=120)
    at.session_state["results_root"] = str(results)
    at.session_state["checkpoint"] = ""
    at.run()
    if checkpoint is not None:
        at.text_input(key="checkpoint").set_value(str(checkpoint)).run()
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_without_a_checkpoint_the_page_says_what_to_do(tmp_path):
    at = app(tmp_path)
    assert_clean(at)
    assert "Type a checkpoint path" in at.info[0].value


def test_bad_checkpoints_show_an_error_not_a_traceback(tmp_path, toy_runs):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    cut = tmp_path / "cut.ckpt"
    data = toy_runs["parity_rnn_act"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    at = app(tmp_path)
    for path, says in (
        (tmp_path / "missing.ckpt", "No such file"),
        (tmp_path, "not found"),
        (text, "CorruptCheckpoint"),
        (foreign, "not a halting checkpoint"),
        (cut, "CorruptCheckpoint"),
    ):
        at.text_input(key="checkpoint").set_value(str(path)).run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) == 1 and "Cannot load checkpoint" in at.error[0].value
        assert says in at.error[0].value
    at.text_input(key="checkpoint").set_value(str(toy_runs["parity_rnn_act"])).run()
    assert_clean(at)  # and a good one afterwards loads


@pytest.mark.parametrize("name", ["parity_rnn_act", "parity_ut_pondernet"])
def test_parity_page(toy_runs, name):
    at = app(toy_runs[name].parent.parent, toy_runs[name])
    assert_clean(at)
    assert at.get("subheader")[0].value.startswith("Parity")
    first = at.text_input(key=f"bits:{toy_runs[name]}").value  # a random input, k = bits // 2
    assert len(first) == 6 and sum(c != "0" for c in first) == 3
    at.text_input(key=f"bits:{toy_runs[name]}").set_value("+-+0++").run()
    assert_clean(at)
    assert "target 0" in markdown(at)  # four +1 entries: even
    assert at.metric[1].value == "5"  # non-zero entries
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 3  # halting bars (+ per-position steps for the UT), difficulty x2
    table = at.dataframe[0].value
    assert list(table.index) == [1, 2, 3, 4, 5, 6] and (table["examples"] == 64).all()

    at.radio(key="mode").set_value("all M steps (max)").run()
    assert_clean(at)
    M = TOY_RUNS[name].get("time_limit") or TOY_RUNS[name]["ut_max_hops"]
    assert float(at.metric[0].value) == M  # every unit ran the limit

    at.number_input(key="k").set_value(2).run()
    at.button[0].click().run()  # "Random input" with k = 2 non-zero entries
    after = at.text_input(key=f"bits:{toy_runs[name]}").value
    assert len(after) == 6 and sum(c != "0" for c in after) == 2
    at.text_input(key=f"bits:{toy_runs[name]}").set_value("+x").run()
    assert not at.exception and "Cannot read the input" in at.error[0].value


@pytest.mark.parametrize("name", ["addition_rnn_pondernet", "addition_ut_fixed"])
def test_addition_page(toy_runs, name):
    at = app(toy_runs[name].parent.parent, toy_runs[name])
    assert_clean(at)
    key = f"numbers:{toy_runs[name]}"
    at.text_input(key=key).set_value("12 34 5").run()
    assert_clean(at)
    rows = at.dataframe[0].value
    assert rows["number"].tolist() == [12, 34, 5]
    assert rows["running sum"].tolist() == ["12", "46", "51"]
    assert rows["right"].iloc[0] == "—" and set(rows["right"].iloc[1:]) <= {"✓", "✗"}
    assert "Final sum 51" in markdown(at)
    difficulty = at.dataframe[1].value
    assert list(difficulty.index) == [1, 2] and difficulty["examples"].sum() == 256 * 2
    at.button[0].click().run()
    assert_clean(at)
    assert 1 <= len(toy_inputs.parse_numbers(at.text_input(key=key).value, 3, 2)) <= 3
    at.text_input(key=key).set_value("1 2 3 4").run()
    assert not at.exception and "trained on 3" in at.error[0].value


def test_training_page_draws_the_chosen_curves_and_the_config(toy_runs):
    ckpt = toy_runs["parity_rnn_act"]
    at = app(ckpt.parent.parent, ckpt)
    at.radio(key="page").set_value("Training").run()
    assert_clean(at)
    chosen = at.multiselect(key=f"metrics:{ckpt}").value
    assert chosen == ["train/loss_total", "val/accuracy", "val/steps"]
    assert len(at.get("vega_lite_chart")) == 3
    at.multiselect(key=f"metrics:{ckpt}").set_value(["train/grad_norm"]).run()
    at.slider(key="smoothing").set_value(0.0).run()
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 1
    config = at.dataframe[0].value["value"]
    assert config["task"] == '"parity"' and config["bits"] == "6"
    assert json.loads(at.json[0].value)["data_meta"]["bits"] == 6


def test_training_page_names_a_malformed_run_file_and_rereads_it_when_rewritten(toy_runs, tmp_path):
    source = toy_runs["parity_rnn_act"].parent
    run = tmp_path / "run"
    run.mkdir()
    for name in ("final.ckpt", run_files.metrics_file(source).name):
        (run / name).write_bytes((source / name).read_bytes())
    (run / "eval.json").write_text("{not json")
    at = app(tmp_path, run / "final.ckpt")
    at.radio(key="page").set_value("Training").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and str(run / "eval.json") in at.error[0].value
    (run / "eval.json").write_text('{"learned": {"accuracy": 0.5}}')
    at.run()
    assert_clean(at)
    assert json.loads(at.json[-1].value) == {"learned": {"accuracy": 0.5}}


def test_runs_under_the_results_folder_can_be_picked(toy_runs):
    root = toy_runs["parity_rnn_act"].parent.parent
    at = app(root)
    assert_clean(at)
    options = at.selectbox(key="run_pick").options
    wanted = str(toy_runs["addition_ut_fixed"])
    assert wanted in options and str(root / "parity_rnn_act/checkpoints/last.ckpt") in options
    at.selectbox(key="run_pick").set_value(wanted).run()
    assert_clean(at)
    assert at.text_input(key="checkpoint").value == wanted
    assert at.get("subheader")[0].value == "Addition · universal_transformer · fixed"


# --- the maze page ---------------------------------------------------------------------------

MAZE_RUNS = {
    "maze_ut_act": {
        "task": "maze",
        "model_type": "universal_transformer",
        "halting": "act",
        "ut_act": True,
        **TINY_UT,
    },
    "maze_rnn_act": {
        "task": "maze",
        "model_type": "act_rnn",
        "halting": "act",
        "rnn_encoder": "conv",
        "time_limit": 4,
    },
}


def maze_folder(path: Path, size: int = 8, n_test: int = 12, seed: int = 0) -> Path:
    """A tiny generated Maze-Hard-style dataset folder (HRM format)."""
    from halting.data.maze import build_dataset

    build_dataset(
        path,
        size=size,
        n_train=32,
        n_test=n_test,
        seed=seed,
        progress=False,
        log=lambda message: None,
    )
    return path


@pytest.fixture(scope="module")
def maze_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("maze_runs")
    data = maze_folder(root / "data")
    return {
        name: train_tiny(root / "results" / name, {**config, "data_dir": str(data)})
        for name, config in MAZE_RUNS.items()
    }


def captions(at) -> list[str]:
    return [c for image in at.image for c in image.captions if c]


@pytest.mark.parametrize("name", list(MAZE_RUNS))
def test_maze_page(maze_runs, name):
    from halting.data.maze_format import load_maze_split

    ckpt = maze_runs[name]
    at = app(ckpt.parent.parent, ckpt)
    assert_clean(at)
    data_dir = ckpt.parent.parent.parent / "data"
    assert at.text_input(key=f"data_dir:{ckpt}").value == str(data_dir)  # the checkpoint's
    test = load_maze_split(data_dir, "test")
    moves = (test.labels == PATH).sum(1) + 1
    text = markdown(at)
    assert f"Maze 0 of test · shortest path {moves[0]} moves" in text
    assert "exact]" in text and "valid-optimal]" in text
    per_cell = name.startswith("maze_ut")
    M = MAZE_RUNS[name].get("ut_max_hops") or MAZE_RUNS[name]["time_limit"]
    assert captions(at)[:3] == ["Input", "Label (canonical shortest path)", "Prediction"]
    steps_run = at.slider(key="step").value
    assert 1 <= steps_run <= M and f"Output of step {steps_run}" in captions(at)
    if per_cell:  # per-cell ponder heatmaps for the UT
        assert "Ponder steps per cell" in captions(at)
        assert len(at.image) == 8  # 4 grids, 2 heatmaps, 2 colour scales
    else:
        assert len(at.image) == 4 and "P(halted by step" in at.metric[3].label

    at.number_input(key="index").set_value(3).run()
    assert_clean(at)
    assert f"Maze 3 of test · shortest path {moves[3]} moves" in markdown(at)
    for n in (1, M):
        at.slider(key="step").set_value(n).run()
        assert_clean(at)
        assert f"Output of step {n}" in captions(at)
        if per_cell:
            assert f"P(halted by step {n}) per cell" in captions(at)
        else:
            assert at.metric[3].label == f"P(halted by step {n})"
            if n == M:  # all the halting mass is spent by the limit
                assert float(at.metric[3].value) == pytest.approx(1.0, abs=1e-3)
    at.toggle(key="mark_errors").set_value(False).run()
    assert_clean(at)

    at.radio(key="pick").set_value("pick by difficulty").run()
    level = int(moves.max())
    at.select_slider(key="difficulty").set_value(level).run()
    assert_clean(at)
    first = int(np.flatnonzero(moves == level)[0])
    assert f"Maze {first} of test · shortest path {level} moves" in markdown(at)

    at.radio(key="mode").set_value("all M steps (max)").run()
    assert_clean(at)
    steps = at.metric[2].value
    assert steps == (f"{M}.00 mean · {M} max" if per_cell else f"{M}.00")
    at.selectbox(key="split").set_value("train").run()
    assert_clean(at)
    assert " of train · " in markdown(at)


def test_maze_dataset_problems_show_an_error(maze_runs, tmp_path):
    ckpt = maze_runs["maze_ut_act"]
    at = app(ckpt.parent.parent, ckpt)
    at.text_input(key=f"data_dir:{ckpt}").set_value(str(tmp_path / "missing")).run()
    assert not at.exception and "Cannot load the test split" in at.error[0].value
    other = maze_folder(tmp_path / "six", size=6)
    at.text_input(key=f"data_dir:{ckpt}").set_value(str(other)).run()
    assert not at.exception and "trained on 64" in at.error[0].value


def test_a_maze_example_renders_well_under_a_second(maze_runs):
    ckpt = maze_runs["maze_ut_act"]
    at = app(ckpt.parent.parent, ckpt)  # loads the model and the split (cached from here on)
    took = []
    for index in (1, 2, 3):
        start = time.perf_counter()
        at.number_input(key="index").set_value(index).run()
        took.append(time.perf_counter() - start)
        assert_clean(at)
    assert min(took) < 0.5, took


def test_unused_fields_are_those_the_run_does_not_apply():
    config = make_config({"task": "addition", "model_type": "act_rnn", "max_steps": 1}).to_dict()
    unused = run_files.unused_fields(config)
    assert {"bits", "ut_max_hops", "data_dir", "lambda_p"} <= unused
    assert not {"sequence_length", "time_limit", "time_penalty", "act_eps"} & unused
    assert run_files.unused_fields({**config, "from_a_newer_version": 1}) == set()


def test_switching_models_and_datasets_with_fewer_steps_or_mazes_keeps_widgets_in_range(
    toy_runs, maze_runs, tmp_path
):
    parity = toy_runs["parity_rnn_act"]  # 6 bits
    at = app(parity.parent.parent, parity)
    at.number_input(key="k").set_value(6).run()
    two_bits = train_tiny(tmp_path / "two_bits", {**TOY_RUNS["parity_rnn_act"], "bits": 2})
    at.text_input(key="checkpoint").set_value(str(two_bits)).run()
    assert_clean(at)
    assert 1 <= at.number_input(key="k").value <= 2

    rnn, ut = maze_runs["maze_rnn_act"], maze_runs["maze_ut_act"]  # M = 4 and 3
    at.text_input(key="checkpoint").set_value(str(rnn)).run()
    at.slider(key="step").set_value(4).run()
    at.number_input(key="index").set_value(11).run()  # the last of 12 test mazes
    at.text_input(key="checkpoint").set_value(str(ut)).run()
    assert_clean(at)
    assert 1 <= at.slider(key="step").value <= 3

    few = maze_folder(tmp_path / "few", n_test=5)
    at.text_input(key=f"data_dir:{ut}").set_value(str(few)).run()
    assert_clean(at)
    index = at.number_input(key="index").value
    assert 0 <= index <= 4 and f"Maze {index} of test" in markdown(at)
    at.radio(key="pick").set_value("pick by difficulty").run()
    at.select_slider(key="difficulty").set_value(at.select_slider(key="difficulty").options[-1])
    at.number_input(key="match").set_value(at.number_input(key="match").max).run()
    other = maze_folder(tmp_path / "other", seed=1)  # other path lengths
    at.text_input(key=f"data_dir:{ut}").set_value(str(other)).run()
    assert_clean(at)

    at.text_input(key="checkpoint").set_value(str(parity)).run()  # k = 6 kept across a maze
    at.number_input(key="k").set_value(6).run()
    at.text_input(key="checkpoint").set_value(str(ut)).run()
    at.text_input(key="checkpoint").set_value(str(two_bits)).run()
    assert_clean(at)
    assert 1 <= at.number_input(key="k").value <= 2
