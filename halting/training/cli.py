"""`halting train`: the runbook's `train.py` / `tasks/parity.py` / `tasks/addition.py` flags.

One flag per ExperimentConfig field (same name, same meaning; booleans as `--flag` /
`--no-flag`), plus the runtime flags below. Only the flags actually typed count as given: a
given flag that does not apply to the chosen task, model or criterion is an error.
Exit status: 0 complete, 3 paused by --time_budget_min or by SIGTERM / SIGUSR1 (run the same
command to resume),
2 usage or config error, 1 training failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from halting.config import ExperimentConfig, field_docs, inapplicable_fields, make_config
from halting.tasks import get_task

# Runtime flags: where and how a run executes; not part of the experiment config.
RUNTIME = {
    "default_root_dir": (
        str,
        "run folder (checkpoints/, metrics.csv, train.log, final.ckpt); "
        "default runs/<task>-<model_type>-<config hash>",
    ),
    "resume_ckpt": (
        str,
        "resume from this checkpoint (default: the run folder's last.ckpt "
        "when its config equals this one)",
    ),
    "time_budget_min": (
        float,
        "train at most this many minutes of this process's wall time, "
        "then save last.ckpt and exit 3 (SIGTERM / SIGUSR1 do the same)",
    ),
    "accelerator": (str, "cpu | gpu | auto (default auto)"),
    "devices": (str, "devices to use (default 1)"),
    "precision": (str, "32-true (default) | bf16-mixed | 16-mixed"),
    "log_every_n_steps": (int, "a log line / metrics.csv row every N steps (default 50)"),
    "save_every_n_steps": (int, "also keep checkpoints/step=N.ckpt every N steps"),
    "save_every_n_epochs": (
        int,
        "maze: keep checkpoints/epoch=E-step=N.ckpt every N epochs (default 1)",
    ),
    "keep_checkpoints": (
        int,
        "keep only the newest N periodic checkpoints besides last.ckpt "
        "and final.ckpt (default 2; 0 keeps none; -1 keeps all)",
    ),
    "save_last_every_min": (float, "also refresh last.ckpt every this many minutes (default 5)"),
    "val_every_n_steps": (
        int,
        "toy tasks: validate every N steps (default max_steps/10, at most 1000)",
    ),
    "val_every_n_epochs": (int, "maze: validate every N epochs (default 1)"),
    "data_workers": (int, "DataLoader worker processes (default 0)"),
}
_EPOCH_ONLY = {"save_every_n_epochs", "val_every_n_epochs"}
_STEP_ONLY = {"val_every_n_steps"}


def _field_type(annotation: Any) -> type:
    """int / float / str from a dataclass annotation such as 'int | None'."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "str")
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if name in str(text).split(" | "):
            return kind
    return str


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    exp = parser.add_argument_group("experiment (config fields)")
    docs = field_docs()  # the fields' comments in halting/config.py, their only description
    for f in fields(ExperimentConfig):
        kind = _field_type(f.type)
        doc, choices = docs[f.name]
        text = f"{doc} (default: {'none' if f.default is None else f.default})"
        if kind is bool:
            exp.add_argument(
                f"--{f.name}",
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=text,
            )
        else:  # a choice field shows its choices, {a,b,c}, in place of its type
            exp.add_argument(
                f"--{f.name}",
                type=kind,
                default=argparse.SUPPRESS,
                help=text,
                choices=choices,
                metavar=None if choices else kind.__name__.upper(),
            )
    exp.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="YAML or JSON file with config fields (flags override it)",
    )
    run = parser.add_argument_group("runtime (not part of the config)")
    for name, (kind, text) in RUNTIME.items():
        run.add_argument(f"--{name}", type=kind, default=argparse.SUPPRESS, help=text)
    run.add_argument(
        "--restart",
        action="store_true",
        default=argparse.SUPPRESS,
        help="delete this run's checkpoints and logs and start over",
    )
    run.add_argument(
        "--progress_bar",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="progress bar (default: on a terminal; else plain log lines)",
    )


def _read_config_file(path: Path) -> dict[str, Any]:
    import yaml

    is_yaml = path.suffix in (".yaml", ".yml")
    expected = (
        "expected a mapping of config fields (YAML lines such as `task: parity`, or a JSON object)"
    )
    try:  # (a file that is not UTF-8 text fails here too, with a UnicodeDecodeError)
        text = path.read_text()
        values = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)  # YAML: where the parser gave up
        problem = (
            f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
            if mark is not None
            else str(exc)
        )
        raise ValueError(
            f"--config {path}: not valid {'YAML' if is_yaml else 'JSON'} ({problem}); {expected}"
        ) from exc
    if not isinstance(values, dict):
        what = "nothing" if values is None else f"a {type(values).__name__}"
        raise ValueError(f"--config {path} holds {what}; {expected}")
    unknown = sorted(set(values) - {f.name for f in fields(ExperimentConfig)})
    if unknown:  # named here, where the file is known: build() merges the flags in
        raise ValueError(f"--config {path}: unknown key(s) {', '.join(map(str, unknown))}")
    return values


def build(args: argparse.Namespace) -> tuple[ExperimentConfig, dict[str, Any]]:
    """(config, keyword arguments of train.train) from parsed flags; ValueError if a
    flag is unknown, wrong or inapplicable."""
    given = vars(args)
    names = {f.name for f in fields(ExperimentConfig)}
    values = _read_config_file(given["config"]) if "config" in given else {}
    typed = {k: v for k, v in given.items() if k in names}
    values.update(typed)
    source = " and ".join(
        ([f"--config {given['config']}"] if "config" in given else [])
        + (["flags"] if typed or "config" not in given else [])
    )
    try:
        config = make_config(values, source=source)
    except ValueError:
        try:  # name inapplicable flags as flags when that is what is wrong
            config = ExperimentConfig(**values)
        except (TypeError, ValueError):
            config = None
        if config is None or not inapplicable_fields(config, set(typed)):
            raise
    bad = inapplicable_fields(config, set(typed))
    runtime = {k: v for k, v in given.items() if k in RUNTIME or k in ("restart", "progress_bar")}
    if get_task(config.task).counts_epochs:
        bad += sorted(_STEP_ONLY & set(runtime))
    else:
        bad += sorted(_EPOCH_ONLY & set(runtime))
    if bad:
        raise ValueError(
            f"--{', --'.join(bad)} do(es) not apply to task={config.task}, "
            f"model_type={config.model_type}, halting={config.criterion}"
        )
    run_dir = runtime.pop("default_root_dir", None) or (
        f"runs/{config.task}-{config.model_type}-{config.digest()}"
    )
    kwargs: dict[str, Any] = {"run_dir": run_dir}
    if "resume_ckpt" in runtime:
        kwargs["resume"] = runtime.pop("resume_ckpt")
    if "devices" in runtime:
        devices = runtime.pop("devices")
        kwargs["devices"] = int(devices) if devices.isdigit() else devices
    kwargs.update(runtime)
    return config, kwargs


def run(args: argparse.Namespace, command: str) -> int:
    try:
        config, kwargs = build(args)
    except (ValueError, OSError) as exc:
        print(f"halting train: error: {exc}", file=sys.stderr)
        return 2
    from halting.training.checkpoint import LockHeld, load_checkpoint
    from halting.training.resume import ConfigMismatch
    from halting.training.run_json import write_run_json
    from halting.training.train import PAUSED_EXIT, TrainingPaused, code_version, train

    run_dir = Path(kwargs["run_dir"])
    print(f"halting train: run folder {kwargs['run_dir']}", flush=True)
    try:
        metrics = train(config, **kwargs)
    except TrainingPaused as exc:
        print(f"halting train: PAUSED (exit {PAUSED_EXIT}): {exc}", flush=True)
        return PAUSED_EXIT
    except (ConfigMismatch, ValueError, FileNotFoundError) as exc:
        print(f"halting train: error: {exc}", file=sys.stderr)
        return 2
    except (LockHeld, RuntimeError) as exc:
        print(f"halting train: failed: {exc}", file=sys.stderr)
        return 1
    finally:  # run.json describes the final.ckpt beside it: none without one
        if not (run_dir / "final.ckpt").is_file():
            (run_dir / "run.json").unlink(missing_ok=True)
    print("halting train: complete: " + json.dumps(metrics, sort_keys=True), flush=True)
    # run.json makes the folder a result folder (docs/interfaces.md, "Result folders"), named
    # by the folder; the dataset is the maze's data folder, with its manifest.json if it has one
    final = load_checkpoint(run_dir / "final.ckpt", mmap=True)
    manifest = Path(config.data_dir) / "manifest.json" if config.data_dir else None
    write_run_json(
        run_dir / "run.json",
        config,
        experiment=run_dir.resolve().name,
        dataset=Path(config.data_dir).name if config.data_dir else None,
        maze_size=(final["hyper_parameters"].get("data_meta") or {}).get("size"),
        data_manifest=json.loads(manifest.read_text()) if manifest and manifest.is_file() else None,
        code_version=code_version(),
        train_seconds=final.get("train_seconds"),
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="halting train")
    add_arguments(p, "train")
    return p
