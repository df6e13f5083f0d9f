"""run.json has one writer (halting.report.run_json): the workflow, the test fixtures and
`halting train` write it; `halting.report.runs` reads it back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_runs import write_run  # noqa: E402

from halting.config import make_config  # noqa: E402
from halting.report.run_json import run_json_text, run_record, write_run_json  # noqa: E402
from halting.report.runs import load_run  # noqa: E402

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
