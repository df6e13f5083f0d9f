"""run.json has one writer (halting.training.run_json): the workflow, the test fixtures and
`halting train` write it; `halting.report.runs` reads it back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_runs import write_run  # noqa: E402

from halting.cli import main  # noqa: E402
from halting.config import make_config  # noqa: E402
from halting.report.runs import find_run_dirs, load_run  # noqa: E402
from halting.training.run_json import run_json_text, run_record, write_run_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = {  # docs/interfaces.md, "Result folders"
    "experiment",
    "task",
    "model_type",
    "criterion",
    "tau",
    "seed",
    "dataset",
    "maze_size",
    "config",
    "code_version",
    "data_manifest",
    "train_seconds",
    "checkpoint_dir",
}
FROM_CONFIG = {"task", "model_type", "criterion", "tau", "seed", "config"}


def _glue():
    sys.path.insert(0, str(ROOT / "workflow_scripts"))
    try:
        import glue
    finally:
        sys.path.remove(str(ROOT / "workflow_scripts"))
    return glue


def test_the_record_takes_identity_and_config_from_the_config():
    config = make_config({"task": "parity", "max_steps": 5, "halting": "fixed", "seed": 3})
    record = run_record(config, experiment="parity_fixed")
    assert set(record) == KEYS
    assert record["experiment"] == "parity_fixed"
    assert (record["task"], record["model_type"], record["criterion"]) == (
        "parity",
        "act_rnn",
        "fixed",
    )
    assert (record["tau"], record["seed"], record["config"]) == (0.0, 3, config.to_dict())
    assert all(record[k] is None for k in KEYS - FROM_CONFIG - {"experiment"})


def test_the_workflow_record_is_the_indented_sorted_json_of_its_fields(tmp_path):
    manifest = {"dataset": "maze-30x30-hard-1k", "sha256": "ab12", "size": 30}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    config = make_config(
        {"task": "maze", "data_dir": "data/maze-30x30-hard-1k", "max_epochs": 2, "seed": 1}
    )
    params = SimpleNamespace(
        dataset="maze-30x30-hard-1k", code_version="0.1.0", checkpoint_dir="checkpoints/m/seed1/h"
    )
    datasets = {"maze-30x30-hard-1k": {"size": 30, "n_train": 1000}}
    fields = _glue().run_fields(params, datasets, [str(tmp_path / "manifest.json")])
    path = tmp_path / "run.json"
    write_run_json(path, config, experiment="maze_act_rnn", train_seconds=12.5, **fields)
    expected = {
        "experiment": "maze_act_rnn",
        "task": "maze",
        "model_type": "act_rnn",
        "criterion": "act",
        "tau": config.time_penalty,
        "seed": 1,
        "dataset": "maze-30x30-hard-1k",
        "maze_size": 30,
        "data_manifest": manifest,
        "config": config.to_dict(),
        "code_version": "0.1.0",
        "train_seconds": 12.5,
        "checkpoint_dir": "checkpoints/m/seed1/h",
    }
    assert path.read_text() == json.dumps(expected, indent=2, sort_keys=True) + "\n"

    toy = SimpleNamespace(dataset="", code_version="0.1.0", checkpoint_dir="c")
    fields = _glue().run_fields(toy, datasets, [])
    assert (fields["dataset"], fields["maze_size"], fields["data_manifest"]) == (None, None, None)


def test_fixture_runs_are_written_by_the_writer_and_read_back(tmp_path):
    run_dir = write_run(tmp_path, "parity", ("p", "act_rnn", "pondernet", 0.01, 0.9, 4.0), 2)
    text = (run_dir / "run.json").read_text()
    meta = json.loads(text)
    config = make_config(meta["config"])
    assert text == run_json_text(run_record(config, **{k: meta[k] for k in KEYS - FROM_CONFIG}))
    run = load_run(run_dir)
    assert (run.task, run.experiment, run.meta["criterion"], run.meta["tau"]) == (
        "parity",
        "p",
        "pondernet",
        0.01,
    )
    assert run.meta["seed"] == 2


def test_run_folders_are_found_at_any_depth_sorted(tmp_path):
    results = tmp_path / "results"
    for rel in ("parity/b/seed1", "parity/a/seed0", "mine/deeper/parity-run", "."):
        (results / rel).mkdir(parents=True, exist_ok=True)
        (results / rel / "run.json").write_text("{}")
    (results / "figures").mkdir()  # no run.json: not a run
    elsewhere = tmp_path / "elsewhere" / "seed0"
    elsewhere.mkdir(parents=True)
    (elsewhere / "run.json").write_text("{}")
    (results / "parity" / "c").mkdir()
    (results / "parity" / "c" / "seed0").symlink_to(elsewhere)  # the workflow's pattern, linked
    found = find_run_dirs(results)
    assert found == sorted(found)
    rel = [p.relative_to(results).as_posix() for p in found]
    assert rel == [
        ".",
        "mine/deeper/parity-run",
        "parity/a/seed0",
        "parity/b/seed1",
        "parity/c/seed0",
    ]


def test_halting_train_then_evaluate_then_figures_on_one_run_folder(tmp_path, capsys):
    """The three commands of docs/interfaces.md ("Result folders") outside the workflow."""
    run_dir = tmp_path / "parity_tiny"
    train = ["--task", "parity", "--bits", "4", "--hidden_size", "8", "--time_limit", "3"]
    train += ["--batch_size", "4", "--max_steps", "3", "--val_size", "8", "--no-progress_bar"]
    assert main(["train", *train, "--default_root_dir", str(run_dir)]) == 0
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["experiment"], meta["task"], meta["dataset"], meta["maze_size"]) == (
        "parity_tiny",
        "parity",
        None,
        None,
    )
    assert meta["config"]["max_steps"] == 3 and meta["train_seconds"] > 0
    ckpt = str(run_dir / "final.ckpt")
    evaluate = ["--out", str(run_dir), "--device", "cpu", "--n_examples", "16", "--no_progress"]
    assert main(["evaluate", ckpt, *evaluate]) == 0
    figures = tmp_path / "figures"
    assert main(["figures", "--results", str(run_dir), "--out", str(figures)]) == 0
    drawn = {p.name for p in figures.glob("*.pdf")}
    assert "accuracy_vs_ponder_parity.pdf" in drawn, drawn
    assert "training_parity.pdf" in drawn, drawn  # from the run folder's metrics.csv
    assert str(figures / "accuracy_vs_ponder_parity.pdf") in capsys.readouterr().out
    # a new attempt that does not finish takes the run.json of the old final.ckpt away
    restart = ["--default_root_dir", str(run_dir), "--restart", "--time_budget_min", "0"]
    assert main(["train", *train, *restart]) == 3
    assert not (run_dir / "final.ckpt").exists() and not (run_dir / "run.json").exists()
