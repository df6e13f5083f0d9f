"""`halting build-maze` and `halting maze-stats` through the real command-line entry point."""

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from halting.cli import main
from halting.data import cli as maze_cli
from halting.data import maze, maze_format

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "maze-30x30-hard-1k"
SMALL = [
    "--size",
    "10",
    "--min-path-moves",
    "20",
    "--n-train",
    "8",
    "--n-test",
    "4",
    "--workers",
    "1",
    "--quiet",
]


def test_runbook_command_parses_unchanged():
    parser = argparse.ArgumentParser()
    maze_cli.add_arguments(parser, "build-maze")
    args = parser.parse_args(
        "preprocess-data --output-dir data/maze-30x30-hard-1k-aug8 "
        "--subsample-size 1000 --aug".split()
    )
    assert (args.step, args.output_dir, args.subsample_size, args.aug) == (
        "preprocess-data",
        "data/maze-30x30-hard-1k-aug8",
        1000,
        True,
    )
    assert (args.source, args.size, args.n_train, args.n_test, args.seed) == (
        "generate",
        None,
        1000,
        1000,
        0,
    )


def test_runbook_shaped_build_and_stats(tmp_path, capsys):
    out = tmp_path / "maze-aug8"
    argv = [
        "build-maze",
        "preprocess-data",
        "--output-dir",
        str(out),
        "--subsample-size",
        "5",
        "--aug",
        "--manifest",
        str(tmp_path / "manifest.json"),
    ] + SMALL
    assert main(argv) == 0
    train = maze_format.load_maze_split(out, "train")
    assert train.inputs.shape == (40, 100) and train.meta["total_groups"] == 5
    assert json.loads((out / "identifiers.json").read_text()) == ["<blank>"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sha256"] == maze.content_hash(out) and manifest["n_train"] == 40
    capsys.readouterr()
    assert main(["maze-stats", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert f"{out}/train" in table[0] and f"{out}/test" in table[0]
    rows = {line[:20].strip(): line[20:].split() for line in table[1:]}
    assert rows["mazes"] == ["40", "4"] and rows["grid size"] == ["10", "10"]
    assert int(rows["path moves min"][0]) >= 20


@pytest.mark.skipif(not (REAL / "train").is_dir(), reason="reference data folder absent")
def test_stats_side_by_side_with_the_real_data(tmp_path, capsys):
    assert main(["build-maze", "--output-dir", str(tmp_path / "d")] + SMALL) == 0
    capsys.readouterr()
    assert main(["maze-stats", "--json", str(tmp_path / "d"), str(REAL)]) == 0
    stats = json.loads(capsys.readouterr().out)
    real = stats[f"{REAL}/train"]
    assert (
        real["mazes"] == 1000 and real["path_moves_min"] == 109 and real["path_moves_median"] == 112
    )
    assert abs(real["wall_fraction_mean"] - 0.37) < 0.005 and len(stats) == 4


def test_errors_exit_1_with_the_reason(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["build-maze", "--output-dir", str(out), "--source", "csv"] + SMALL) == 1
    assert "--csv-dir" in capsys.readouterr().err
    assert (
        main(
            [
                "build-maze",
                "--output-dir",
                str(out),
                "--source",
                "csv",
                "--csv-dir",
                str(tmp_path / "no"),
                "--quiet",
            ]
        )
        == 1
    )
    assert "train.csv: missing" in capsys.readouterr().err and not out.exists()
    assert main(["build-maze", "--output-dir", str(out)] + SMALL + ["--n-train", "0"]) == 1
    assert "--n-train 0" in capsys.readouterr().err
    for flag in ("--subsample-size", "--workers"):  # checked by build_dataset, reported alike
        assert main(["build-maze", "--output-dir", str(out)] + SMALL + [flag, "0"]) == 1
        assert (
            f"{flag} 0: expected a positive integer" in capsys.readouterr().err and not out.exists()
        )
    assert main(["build-maze", "--output-dir", str(out), "--csv-dir", str(tmp_path)] + SMALL) == 1
    assert "apply to --source csv only" in capsys.readouterr().err
    assert main(["build-maze", "--output-dir", str(out)] + SMALL) == 0
    assert main(["build-maze", "--output-dir", str(out)] + SMALL) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["build-maze", "--output-dir", str(out), "--force", "--seed", "3"] + SMALL) == 0
    np.save(out / "test" / "all__labels.npy", np.zeros((4, 99), np.uint8))
    assert main(["maze-stats", str(out)]) == 1
    assert "all__labels.npy: expected uint8 (4, 100)" in capsys.readouterr().err
    assert main(["maze-stats", str(tmp_path)]) == 1
    assert "no train/ or test/" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path, monkeypatch, capsys, terminal):
    if terminal:
        monkeypatch.setattr(sys, "stderr", Terminal())
    loud = [flag for flag in SMALL if flag != "--quiet"]
    assert main(["build-maze", "--output-dir", str(tmp_path / "d")] + loud) == 0
    err = sys.stderr.getvalue() if terminal else capsys.readouterr().err
    assert ("maze/s" in err and "\r" in err) == terminal, err  # tqdm redraws its line with \r
    logged = [
        line.split()[0]
        for line in err.replace("\r", "\n").splitlines()
        if line.strip() and "maze/s" not in line
    ]
    assert logged == ["generating", "tested", "wrote"], err  # the log lines, bar or not


def test_a_subsample_larger_than_the_pool_is_refused(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["build-maze", "--output-dir", str(out), "--subsample-size", "9"] + SMALL) == 1
    err = capsys.readouterr().err
    assert "--subsample-size 9: more than the 8 train mazes to draw from (--n-train 8)" in err
    assert not out.exists()


def test_help_is_fast_and_torch_free():
    code = (
        "import sys\nfrom halting.cli import main\n"
        "try:\n    main(['build-maze', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "--subsample-size" in result.stdout and "--min-path-moves" in result.stdout
    assert result.stdout.strip().endswith("NO-TORCH")
