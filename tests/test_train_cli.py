"""`halting train`: the runbook's commands (sections 5, 6, 9) parse to the same settings and
train; inapplicable flags are errors; exit statuses."""

from __future__ import annotations

import json
import shlex

import pytest

from halting.cli import main
from halting.training.cli import build, parser

# The runbook's commands with `python train.py` / `python tasks/*.py` replaced by `halting train`
# (the `CUDA_VISIBLE_DEVICES=0` prefix and `| tee` suffix are the shell's business).
RUNBOOK = {
    "5-1 act_rnn maze": """--task maze --model_type act_rnn --data_dir data/maze-30x30-hard-1k
        --batch_size 128 --max_epochs 1000 --hidden_size 512 --time_limit 16
        --time_penalty_start 0.0 --time_penalty_warmup_steps 5000 --time_penalty 0.001
        --learning_rate 1e-4 --weight_decay 1.0 --lr_warmup_epochs 5 --log_every_n_steps 1
        --use_ema --default_root_dir OUT --save_every_n_epochs 1""",
    "5-2 ut maze": """--task maze --model_type universal_transformer
        --data_dir data/maze-30x30-hard-1k --batch_size 128 --max_epochs 1000 --hidden_size 512
        --ut_embedding_size 64 --ut_heads 4 --ut_key_depth 256 --ut_value_depth 256
        --ut_filter_size 256 --ut_max_hops 6 --ut_act --ut_act_loss_weight 0.001
        --learning_rate 1e-4 --weight_decay 1.0 --lr_warmup_epochs 5 --log_every_n_steps 1
        --use_ema --default_root_dir OUT --save_every_n_epochs 1""",
    "6 act_rnn restart": """--task maze --model_type act_rnn --data_dir data/maze-30x30-hard-1k
        --batch_size 128 --max_epochs 1000 --hidden_size 512 --time_limit 16
        --time_penalty_start 0.0 --time_penalty_warmup_steps 5000 --time_penalty 0.001
        --learning_rate 1e-4 --weight_decay 1.0 --lr_warmup_epochs 5 --log_every_n_steps 1
        --use_ema --default_root_dir OUT --resume_ckpt OUT/checkpoints/last.ckpt""",
    "6 ut restart": """--task maze --model_type universal_transformer
        --data_dir data/maze-30x30-hard-1k --batch_size 128 --max_epochs 1000 --hidden_size 512
        --ut_embedding_size 64 --ut_heads 4 --ut_key_depth 256 --ut_value_depth 256
        --ut_filter_size 256 --ut_max_hops 6 --ut_act --ut_act_loss_weight 0.001
        --learning_rate 1e-4 --weight_decay 1.0 --lr_warmup_epochs 5 --log_every_n_steps 1
        --use_ema --default_root_dir OUT --resume_ckpt OUT/checkpoints/last.ckpt""",
    "9-2 addition": """--task addition --max_steps 200000 --sequence_length 5 --max_digits 5
        --hidden_size 512 --time_penalty 0.001 --time_limit 20 --batch_size 32
        --learning_rate 1e-4 --data_workers 1""",
    "9-3 parity": """--task parity --max_steps 200000 --bits 16 --hidden_size 64
        --time_penalty 0.001 --time_limit 20 --batch_size 32 --learning_rate 1e-4
        --data_workers 1""",
}
RUNTIME_FLAGS = {
    "default_root_dir",
    "resume_ckpt",
    "log_every_n_steps",
    "save_every_n_epochs",
    "data_workers",
}
# Tiny values for the size flags, so that every runbook command also trains here.
TINY = {
    "--batch_size": "4",
    "--max_epochs": "1",
    "--max_steps": "3",
    "--hidden_size": "8",
    "--time_limit": "3",
    "--ut_embedding_size": "8",
    "--ut_heads": "2",
    "--ut_key_depth": "8",
    "--ut_value_depth": "8",
    "--ut_filter_size": "8",
    "--ut_max_hops": "2",
    "--bits": "4",
    "--sequence_length": "3",
    "--max_digits": "2",
    "--data_workers": "0",
    "--time_penalty_warmup_steps": "2",
    "--lr_warmup_epochs": "1",
    "--log_every_n_steps": "2",
}


def _args(text: str) -> list[str]:
    return shlex.split(" ".join(text.split()))


def _shrink(argv: list[str], run_dir, data_dir=None) -> list[str]:
    out = []
    for i, token in enumerate(argv):
        previous = argv[i - 1] if i else ""
        if previous in TINY:
            token = TINY[previous]
        elif previous == "--data_dir":
            token = str(data_dir)
        elif previous in ("--default_root_dir", "--resume_ckpt"):
            token = token.replace("OUT", str(run_dir))
        out.append(token)
    return out


@pytest.mark.parametrize("name", RUNBOOK)
def test_runbook_command_parses_to_the_runbook_values(name):
    argv = _args(RUNBOOK[name])
    config, kwargs = build(parser().parse_args(argv))
    flags = {
        argv[i][2:]: argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else True
        for i in range(len(argv))
        if argv[i].startswith("--")
    }
    for flag, value in flags.items():
        if flag in RUNTIME_FLAGS:
            key = {"default_root_dir": "run_dir", "resume_ckpt": "resume"}.get(flag, flag)
            assert str(kwargs[key]) == value, flag
        elif value is True:
            assert getattr(config, flag) is True, flag
        else:
            assert getattr(config, flag) == type(getattr(config, flag))(value), flag
    if "default_root_dir" not in flags:  # the toy commands: a run folder named by the config
        assert kwargs["run_dir"] == f"runs/{config.task}-{config.model_type}-{config.digest()}"


@pytest.mark.parametrize("name", ["9-2 addition", "9-3 parity"])
def test_runbook_toy_commands_train(name, tmp_path, capsys):
    argv = _shrink(_args(RUNBOOK[name]), tmp_path) + [
        "--default_root_dir",
        str(tmp_path),
        "--val_size",
        "8",
        "--no-progress_bar",
    ]
    assert main(["train", *argv]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out.split("halting train: complete: ", 1)[1].splitlines()[0])
    assert "val/loss_total" in metrics and (tmp_path / "final.ckpt").is_file()
    assert "validation at step 3" in (tmp_path / "train.log").read_text()


@pytest.mark.parametrize(
    "argv, bad",
    [
        ("--task parity --max_steps 5 --ut_heads 4", "ut_heads"),
        (
            "--task maze --data_dir d --max_epochs 1 --model_type universal_transformer --ut_act "
            "--time_limit 16",
            "time_limit",
        ),  # given at its default value: still an error
        ("--task addition --max_steps 5 --bits 8", "bits"),
        ("--task parity --max_steps 5 --halting fixed --time_penalty 0.01", "time_penalty"),
        ("--task parity --max_steps 5 --save_every_n_epochs 1", "save_every_n_epochs"),
        ("--task maze --data_dir d --max_epochs 1 --val_every_n_steps 5", "val_every_n_steps"),
        ("--task maze --data_dir d --max_epochs 1 --ema_decay 0.9", "ema_decay"),
    ],
)
def test_inapplicable_flag_is_an_error(argv, bad, capsys):
    assert main(["train", *argv.split()]) == 2
    err = capsys.readouterr().err
    assert f"--{bad}" in err and "does not apply" in err.replace("do(es)", "does")


def test_unknown_flag_and_bad_value_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "parity", "--max_steps", "5", "--time_limt", "3"])
    assert exc.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # a choice field's flag lists its choices
        main(["train", "--task", "parity", "--max_steps", "5", "--model_type", "lstm"])
    assert exc.value.code == 2
    assert (
        "argument --model_type: invalid choice: 'lstm' (choose from "
        "'act_rnn', 'universal_transformer')"
    ) in capsys.readouterr().err.replace("\n", " ")
    assert main(["train", "--task", "parity", "--max_steps", "5", "--bits", "0"]) == 2
    assert capsys.readouterr().err == (
        "halting train: error: flags: config field 'bits' must be >= 1, got 0\n"
    )


def test_toy_task_with_max_epochs_is_refused(tmp_path, capsys):
    argv = ["train", "--task", "parity", "--max_epochs", "3", "--default_root_dir", str(tmp_path)]
    assert main(argv) == 2
    assert "max_epochs does not apply to task parity" in capsys.readouterr().err


def test_config_file_with_flags_overriding(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("task: addition\nmax_steps: 100\nsequence_length: 4\nhidden_size: 32\n")
    config, _ = build(parser().parse_args(["--config", str(path), "--hidden_size", "16"]))
    assert (config.task, config.max_steps, config.sequence_length, config.hidden_size) == (
        "addition",
        100,
        4,
        16,
    )
    path.write_text(json.dumps({"task": "parity", "max_steps": 1, "sequence_lenght": 4}))
    with pytest.raises(ValueError, match="sequence_lenght"):
        build(parser().parse_args(["--config", str(path)]))


def test_config_file_errors_name_the_file(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    run_dir = ["--default_root_dir", str(tmp_path / "run")]
    path.write_text("task: parity\nmax_steps: 3\nhiden_size: 8\nbitz: 4\n")
    for flags in ([], ["--bits", "4"]):  # the unknown keys are the file's, flags or not
        assert main(["train", "--config", str(path), *flags, *run_dir]) == 2
        assert capsys.readouterr().err == (
            f"halting train: error: --config {path}: unknown key(s) bitz, hiden_size\n"
        )
    path.write_text("task: parity\nmax_steps: 3\nrnn_cell_type: lstn\n")
    assert main(["train", "--config", str(path), *run_dir]) == 2
    assert capsys.readouterr().err.startswith(
        f"halting train: error: --config {path}: config field 'rnn_cell_type' must be one of"
    )
    assert main(["train", "--config", str(path), "--seed", "1", *run_dir]) == 2
    assert f"error: --config {path} and flags: config field" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _help_entries(text: str) -> dict[str, tuple[str, str]]:
    """`--flag` -> (its invocation, e.g. `--task {maze,parity,addition}`, its help text) from
    argparse's --help output, where a help text may continue on the lines below."""
    entries, flag = {}, None
    for line in text.splitlines():
        if line.startswith("  -"):
            invocation, _, help_ = line.strip().partition("  ")
            flag = invocation.split()[0].rstrip(",")
            entries[flag] = (invocation, help_.strip())
        elif flag and line.startswith(" " * 8) and line.strip():
            invocation, help_ = entries[flag]
            entries[flag] = (invocation, f"{help_} {line.strip()}".strip())
        else:
            flag = None
    return entries


def test_help_describes_every_experiment_flag_by_its_config_comment(capsys):
    from dataclasses import fields

    from halting.config import ExperimentConfig, field_docs

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    entries = _help_entries(capsys.readouterr().out)
    for f in fields(ExperimentConfig):
        invocation, text = entries[f"--{f.name}"]
        doc, choices = field_docs()[f.name]
        assert text and not text.startswith("(config field"), (f.name, text)
        assert " ".join(text.split()).startswith(" ".join(doc.split())), (f.name, text, doc)
        if choices:
            assert invocation == f"--{f.name} {{{','.join(choices)}}}", invocation
    assert entries["--rnn_cell_type"] == (
        "--rnn_cell_type {gru,lstm,tanh_rnn}",
        "ACT-RNN recurrent cell: gru | lstm | tanh_rnn (default: gru)",
    )


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("bad.yaml", "task: parity\n  max_steps: [1\n", "not valid YAML"),
        ("bad.json", '{"task": "parity",', "not valid JSON"),
        ("list.yaml", "- task\n- parity\n", "holds a list"),
        ("empty.yml", "", "holds nothing"),
    ],
)
def test_bad_config_file_is_a_usage_error_naming_the_file(tmp_path, capsys, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    assert main(["train", "--config", str(path), "--default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and problem in err and "expected a mapping of config fields" in err
    assert not (tmp_path / "checkpoints").exists()


def test_exit_statuses_pause_resume_and_mismatch(tmp_path, capsys):
    base = [
        "train",
        "--task",
        "parity",
        "--bits",
        "4",
        "--hidden_size",
        "8",
        "--batch_size",
        "4",
        "--max_steps",
        "3",
        "--val_size",
        "8",
        "--default_root_dir",
        str(tmp_path),
        "--no-progress_bar",
    ]
    assert main([*base, "--time_budget_min", "0"]) == 3
    assert "PAUSED (exit 3)" in capsys.readouterr().out
    assert main([*base, "--learning_rate", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "learning_rate: 0.0001 -> 0.5" in err and "--restart" in err
    assert main(base) == 0
    assert "resumed from" in (tmp_path / "train.log").read_text()
    assert main([*base, "--learning_rate", "0.5", "--restart"]) == 0


def test_missing_resume_checkpoint_is_a_usage_error(tmp_path, capsys):
    argv = [
        "train",
        "--task",
        "parity",
        "--max_steps",
        "2",
        "--default_root_dir",
        str(tmp_path),
        "--resume_ckpt",
        str(tmp_path / "nope.ckpt"),
    ]
    assert main(argv) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_restart_with_a_resume_checkpoint_is_a_usage_error(tmp_path, capsys):
    argv = [
        "train",
        "--task",
        "parity",
        "--max_steps",
        "2",
        "--default_root_dir",
        str(tmp_path),
        "--restart",
        "--resume_ckpt",
        str(tmp_path / "x.ckpt"),
    ]
    assert main(argv) == 2
    assert "--restart cannot be combined with --resume_ckpt" in capsys.readouterr().err


@pytest.mark.parametrize("value, expected", [("2", 2), ("auto", "auto"), ("0,1", "0,1")])
def test_devices_flag_is_a_count_when_numeric(value, expected):
    _, kwargs = build(
        parser().parse_args(["--task", "parity", "--max_steps", "5", "--devices", value])
    )
    assert kwargs["devices"] == expected
