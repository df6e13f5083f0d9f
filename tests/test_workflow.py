"""The Snakemake workflow without training anything: lint, format, dry runs of both profiles,
config validation, the exact sbatch line of a training job, and what reruns after an edit.

Every test works in a temporary copy of the workflow (tests/workflow_fixtures/wf.py)."""

from __future__ import annotations

import json
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from workflow_fixtures.wf import (
    ROOT,
    SLURM_ENV,
    TINY,
    copy_workflow,
    fake_outputs,
    job_counts,
    pending,
    snakemake,
    tiny_config,
    write_yaml,
)

from halting.config import ExperimentConfig

pytestmark = pytest.mark.workflow


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "wf")


def merged_config(*overlays: str) -> dict:
    """config.yaml with overlays merged the way Snakemake merges --configfile (nested dicts)."""

    def merge(base, new):
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for overlay in overlays:
        merge(config, yaml.safe_load((ROOT / overlay).read_text()))
    return config


def dry_run_small_with(wf: Path, overlay: dict, name: str = "overlay.yaml", check: bool = True):
    """A dry run of the local profile with presets/small.yaml and then `overlay`, written to
    `wf/name`, merged over config.yaml."""
    write_yaml(wf / name, overlay)
    return snakemake(
        wf,
        "-n",
        "--profile",
        "profiles/local",
        "--configfile",
        "presets/small.yaml",
        name,
        check=check,
    )


# --- static checks ------------------------------------------------------------------------------


def test_lint_has_no_findings(wf: Path):
    """`snakemake --lint` finds nothing, the software deployment lint included: every rule names
    the conda environment envs/halting.yaml."""
    proc = snakemake(wf, "--lint", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in text, text


def test_conda_env_pins_python_and_lists_exactly_the_runtime_dependencies():
    """envs/halting.yaml (`--sdm conda`) cannot drift from pyproject.toml's dependencies, and
    does not install `halting` itself (the scripts import it from the source tree)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs/halting.yaml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert conda == ["python=3.11", "pip"]
    assert len(pip) == 1 and sorted(pip[0]) == sorted(project["dependencies"]), pip


def test_workflow_scripts_import_halting_from_the_source_tree(tmp_path: Path):
    """Importing glue (every workflow script does so first) makes the checkout's `halting`
    importable where it is not installed: here the editable install's finder is removed."""
    code = "\n".join(
        [
            "import importlib.util, os, sys",
            "sys.meta_path[:] = [f for f in sys.meta_path",
            "                    if 'editable' not in getattr(f, '__module__', '')]",
            f"sys.path[:] = [p for p in sys.path if os.path.realpath(p or '.') != {str(ROOT)!r}]",
            "print(importlib.util.find_spec('halting') is None)",
            f"sys.path.insert(0, {str(ROOT / 'workflow_scripts')!r})",
            "import glue, halting",
            "print(halting.__file__)",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    hidden, path = proc.stdout.split()
    if hidden != "True":
        pytest.skip("halting is installed here as a copy (not editable): cannot hide it")
    assert Path(path) == ROOT / "halting" / "__init__.py"


@pytest.mark.parametrize(
    "resources, minutes",
    [
        ({"runtime": 240}, 230),  # the Slurm training job: 10 minutes of margin
        ({"runtime": 30}, 27),  # short runtimes keep 10%
        ({}, None),  # no runtime (local runs): no budget
        ({"runtime": 0}, None),
        ({"time_budget_s": 60, "runtime": 240}, 1),  # the explicit budget wins
        ({"time_budget_s": 0, "runtime": 240}, 230),  # 0 = unset (`... else 0` in --set-resources)
        ({"time_budget_s": -1, "runtime": 240}, None),  # < 0: no budget (Slurm's SIGTERM pauses)
    ],
)
def test_time_budget_min_from_the_job_resources(resources: dict, minutes: float | None):
    sys.path.insert(0, str(ROOT / "workflow_scripts"))
    try:
        import glue
    finally:
        sys.path.remove(str(ROOT / "workflow_scripts"))
    assert glue.time_budget_min(resources) == minutes


def test_schema_lists_exactly_the_experiment_config_fields():
    schema = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())
    keys = set(schema["$defs"]["experiment"]["properties"])
    expected = {f.name for f in fields(ExperimentConfig)} - {"seed", "data_dir"} | {
        "dataset",
        "seeds",
    }
    assert keys == expected, (sorted(keys - expected), sorted(expected - keys))


def test_schema_types_and_choices_are_the_experiment_config_defaults_own():
    """Defaults live in ExperimentConfig only: the schema gives each field its dataclass type
    (None allowed where the field allows it), no default, and only the choices the config
    itself checks."""
    from halting.config import field_docs

    json_type = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    props = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["$defs"][
        "experiment"
    ]["properties"]
    docs = field_docs()
    for f in fields(ExperimentConfig):
        if f.name not in props:
            continue
        prop, parts = props[f.name], [t.strip() for t in str(f.type).split("|")]
        expected = [json_type[t] if t != "None" else "null" for t in parts]
        assert prop["type"] == (expected[0] if len(expected) == 1 else expected), f.name
        assert "default" not in prop, f.name
        if "enum" in prop:
            assert tuple(prop["enum"]) == docs[f.name][1], f.name


def test_runbook_blocks_are_the_first_two_experiments_with_exact_values():
    experiments = yaml.safe_load((ROOT / "config.yaml").read_text())["experiments"]
    names = list(experiments)
    common = {
        "task": "maze",
        "dataset": "maze-30x30-hard-1k",
        "batch_size": 128,
        "max_epochs": 1000,
        "hidden_size": 512,
        "learning_rate": 1e-4,
        "weight_decay": 1.0,
        "lr_warmup_epochs": 5,
        "use_ema": True,
    }
    rnn = {
        **common,
        "model_type": "act_rnn",
        "halting": "act",
        "time_limit": 16,
        "time_penalty_start": 0.0,
        "time_penalty_warmup_steps": 5000,
        "time_penalty": 0.001,
    }
    ut = {
        **common,
        "model_type": "universal_transformer",
        "halting": "act",
        "ut_embedding_size": 64,
        "ut_heads": 4,
        "ut_key_depth": 256,
        "ut_value_depth": 256,
        "ut_filter_size": 256,
        "ut_max_hops": 6,
        "ut_act": True,
        "ut_act_loss_weight": 0.001,
    }
    first, second = (dict(experiments[n]) for n in names[:2])
    first.pop("seeds"), second.pop("seeds")
    assert first == rnn
    assert second == ut


def test_small_preset_shrinks_every_experiment():
    """The local profile's preset must cover every experiment: none may run at full size."""
    full = merged_config()
    small = merged_config("presets/small.yaml")
    assert set(yaml.safe_load((ROOT / "presets/small.yaml").read_text())["experiments"]) == set(
        full["experiments"]
    )
    for name, block in small["experiments"].items():
        if block["task"] == "maze":
            assert small["datasets"][block["dataset"]]["size"] <= 12, name
            assert block["max_epochs"] <= 50, name
        else:
            assert block["max_steps"] <= 10_000, name
        assert block.get("hidden_size", 512) <= 128, name
    assert small["execution"]["accelerator"] == "cpu"


# --- dry runs -----------------------------------------------------------------------------------


def expected_jobs(config: dict) -> dict[str, int]:
    runs = [(b["task"], s) for b in config["experiments"].values() for s in b["seeds"]]
    datasets = {b["dataset"] for b in config["experiments"].values() if "dataset" in b}
    n_maze = sum(task == "maze" for task, _ in runs)
    counts = {
        "build_dataset": len(datasets),
        "train": len(runs),
        "evaluate": len(runs) - n_maze,
        "evaluate_maze": n_maze,
        "figures": 1,
        "summary": 1,
        "all": 1,
    }
    return {k: v for k, v in counts.items() if v}


def test_dry_run_local_profile_plans_the_small_preset(wf: Path):
    proc = snakemake(wf, "-n", "--profile", "profiles/local")
    assert job_counts(proc.stdout) == expected_jobs(merged_config("presets/small.yaml"))
    assert "data/maze-8x8/manifest.json" in proc.stdout
    assert "maze-30x30" not in proc.stdout
    # The target alias `aug8` (README, rules/data.smk): one dataset build, nothing else.
    proc = snakemake(wf, "-n", "--profile", "profiles/local", "aug8")
    assert job_counts(proc.stdout) == {"build_dataset": 1, "aug8": 1}
    assert "wildcards: dataset=maze-30x30-hard-1k-aug8" in proc.stdout


def test_paper_preset_plans_only_its_own_experiments(wf: Path):
    """presets/paper-cpu.yaml merges over config.yaml but runs only `run_experiments`: its 14
    experiments (16 training jobs), none of config.yaml's runbook experiments, one 12x12 maze."""
    paper = merged_config("presets/paper-cpu.yaml")
    assert set(paper["run_experiments"]) <= set(paper["experiments"])
    selected = {
        **paper,
        "experiments": {n: paper["experiments"][n] for n in paper["run_experiments"]},
    }
    proc = snakemake(
        wf,
        "-n",
        "--profile",
        "profiles/local",
        "results/summary.pdf",
        "--configfile",
        "presets/paper-cpu.yaml",
    )
    counts = job_counts(proc.stdout)
    assert counts == {k: v for k, v in expected_jobs(selected).items() if k != "all"}
    assert counts["train"] == 16
    assert "data/maze-12x12/manifest.json" in proc.stdout
    assert "maze-30x30" not in proc.stdout and "parity_act/" not in proc.stdout


def test_paper_preset_names_and_goals():
    """The experiment names the paper-results issue fixes, three parity ACT seeds, tau sweep of
    at least four values over 1e-4..1e-1 differing from parity16_act only in tau."""
    paper = merged_config("presets/paper-cpu.yaml")
    names = paper["run_experiments"]
    for name in (
        "parity16_act",
        "parity16_fixed1",
        "parity16_pondernet",
        "parity16_extrap_act",
        "parity16_extrap_pondernet",
        "addition_graves_act",
        "maze12_act_rnn",
        "maze12_ut",
        "maze12_fixed",
    ):
        assert name in names, name
    experiments = paper["experiments"]
    assert len(experiments["parity16_act"]["seeds"]) >= 3
    sweep = [n for n in names if n.startswith("parity16_tau_")]
    taus = sorted(experiments[n]["time_penalty"] for n in sweep)
    assert len(taus) >= 4 and taus[0] == 1e-4 and taus[-1] == 1e-1, taus

    def without(name, *keys):
        return {k: v for k, v in experiments[name].items() if k not in ("seeds", *keys)}

    for n in sweep:  # the sweep's runs differ in tau alone, and from parity16_act in steps too
        assert without(n, "time_penalty") == without(sweep[0], "time_penalty")
        assert without(n, "time_penalty", "max_steps") == without(
            "parity16_act", "time_penalty", "max_steps"
        )
    assert experiments["addition_graves_act"]["addition_distribution"] == "graves"
    assert experiments["addition_graves_act"]["rnn_cell_type"] == "lstm"
    for n in ("maze12_act_rnn", "maze12_ut", "maze12_fixed"):
        assert paper["datasets"][experiments[n]["dataset"]]["size"] >= 12, n


def test_run_experiments_naming_an_unknown_experiment_fails_at_parse_time(wf: Path):
    proc = dry_run_small_with(wf, {"run_experiments": ["parity_act", "parity_atc"]}, check=False)
    assert proc.returncode != 0
    first = error_first_line(proc.stderr + proc.stdout)
    assert "run_experiments: 'parity_atc' not in `experiments`" in first, first
    proc = dry_run_small_with(wf, {"run_experiments": ["parity_act"]})
    assert job_counts(proc.stdout)["train"] == 2  # parity_act's two seeds, nothing else


def planned_resources(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists."""
    jobs, rule = [], None
    for line in dry_run_output.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("    resources: ") and rule:
            items = line.split(": ", 1)[1].split(", ")
            jobs.append((rule, dict(item.split("=", 1) for item in items)))
    return jobs


def test_dry_run_slurm_profile_needs_no_slurm(wf: Path):
    proc = snakemake(wf, "-n", "--profile", "profiles/slurm", "results/summary.pdf", env=SLURM_ENV)
    expected = expected_jobs(merged_config())
    del expected["all"]  # summary.pdf brings the figure files along
    assert job_counts(proc.stdout) == expected
    jobs = planned_resources(proc.stdout)
    assert sorted(r for r, _ in jobs) == sorted(r for r, n in expected.items() for _ in range(n))
    gpu = {
        "runtime": "240",
        "mem_mb": "32000",
        "cpus_per_task": "4",
        "gres": "gpu:a40:1",
        "slurm_extra": "--mail-type=END,FAIL --mail-user=me@example.org",
    }
    for rule, res in jobs:
        assert res["slurm_partition"] == "p1" and res["slurm_account"] == "acct42", (rule, res)
        if rule == "train":
            assert {k: res.get(k) for k in gpu} == gpu
        elif rule.startswith("evaluate"):
            assert res["gres"] == "gpu:a40:1" and res["cpus_per_task"] == "4", (rule, res)
            assert {k: res.get(k) for k in gpu} == {**gpu, "runtime": "60"}, (rule, res)
        else:
            assert "gres" not in res and "slurm_extra" not in res, (rule, res)
            assert res["mem_mb"] == "8000" and res["runtime"] == "60", (rule, res)


def test_slurm_profile_without_account_variable_fails_naming_it(wf: Path):
    env = {"HALTING_MAIL_USER": "me@example.org"}
    proc = snakemake(wf, "-n", "--profile", "profiles/slurm", env=env, check=False)
    assert proc.returncode != 0
    assert "HALTING_SLURM_ACCOUNT" in proc.stderr + proc.stdout
    assert "export HALTING_SLURM_ACCOUNT=<value>" in proc.stderr + proc.stdout
    assert "On the cluster: `profiles/slurm`" in proc.stderr + proc.stdout
    proc = snakemake(
        wf, "-n", "--profile", "profiles/slurm", env={"HALTING_SLURM_ACCOUNT": "a"}, check=False
    )
    assert proc.returncode != 0
    assert "HALTING_MAIL_USER" in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"experiments": {"parity_act": {"hiden_size": 64}}}, "'hiden_size' was unexpected"),
        ({"experiments": {"parity_act": {"ut_heads": 8}}}, "experiment parity_act: ut_heads"),
        (
            {"experiments": {"maze_ut": {"dataset": "maze-9x9"}}},
            "experiment maze_ut: dataset 'maze-9x9'",
        ),
        ({"experiments": {"parity_act": {"bits": "16"}}}, "'16' is not of type 'integer'"),
        ({"experiment": {}}, "'experiment' was unexpected"),
        ({"datasets": {"maze-12x12": {"sise": 12}}}, "'sise' was unexpected"),
    ],
)
def test_config_typo_fails_before_any_job_naming_the_key(wf: Path, overlay: dict, message: str):
    proc = dry_run_small_with(wf, overlay, name="typo.yaml", check=False)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout, proc.stderr[-3000:]


@pytest.mark.parametrize(
    "target, messages",
    [
        (
            "results/parity/maze_act_rnn/seed0/final.ckpt",
            [
                "experiment maze_act_rnn is a maze experiment, not parity",
                "results/maze/maze_act_rnn/",
            ],
        ),
        (
            "data/maze-30x30-hard-1k-csv/manifest.json",  # a CSV dataset needs its two CSV files
            ["data/raw/maze-30x30-hard-1k/train.csv", "data/raw/maze-30x30-hard-1k/test.csv"],
        ),
        (
            "results/parity/typo/seed0/final.ckpt",  # an unknown name lists the valid ones
            ["experiment 'typo' is not in `experiments` (maze_act_rnn, maze_ut, parity_act,"],
        ),
        ("data/typo/manifest.json", ["dataset 'typo' is not in `datasets` (maze-30x30-hard-1k, "]),
    ],
)
def test_target_that_cannot_be_built_fails_naming_the_fix(
    wf: Path, target: str, messages: list[str]
):
    proc = snakemake(wf, "-n", "--profile", "profiles/local", target, check=False)
    assert proc.returncode != 0
    for message in messages:
        assert message in proc.stderr + proc.stdout, proc.stderr[-3000:]


# --- the sbatch line of a training job ------------------------------------------------------------

FAKE_TOOL = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_SLURM_LOG"], "a") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
out = {{"sbatch": "4242", "sacct": "4242|FAILED", "squeue": "4242|FAILED", "sinfo": "p1*",
        "sacctmgr": "acct42"}}.get(name, "")
print(out)
sys.exit(1 if name == "srun" else 0)
"""


def test_fake_sbatch_sees_the_runbook_resources(wf: Path, tmp_path: Path):
    """Fake sbatch/sacct/srun on PATH record their arguments; the training job's sbatch line
    carries the runbook's Slurm settings, an explicit --mem and exactly one GPU request."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "sacct", "squeue", "sinfo", "sacctmgr", "scontrol", "scancel", "srun"):
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.jsonl"
    env = {
        **SLURM_ENV,
        "FAKE_SLURM_LOG": str(calls),
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
    }
    snakemake(
        wf,
        "results/parity/parity_act/seed0/final.ckpt",
        "data/maze-12x12/manifest.json",
        "--profile",
        "profiles/slurm",
        "--retries",
        "0",
        "--latency-wait",
        "1",
        "--slurm-init-seconds-before-status-checks",
        "1",
        env=env,
        check=False,
        timeout=300,
    )
    sbatch = [c[1:] for c in map(json.loads, calls.read_text().splitlines()) if c[0] == "sbatch"]
    assert not any(c[0] == "srun" for c in map(json.loads, calls.read_text().splitlines()))

    def flags(argv: list[str]) -> list[str]:
        """The argv without the per-run parts (job name, log path, comment, workdir, command)."""
        out, skip = [], False
        for arg in argv:
            if skip:
                skip = False
                continue
            if arg in ("--job-name", "--output", "--comment", "-D"):
                skip = True
            elif not arg.startswith("--wrap="):
                out.append(arg)
        return out

    by_rule = {}
    for argv in sbatch:
        comment = argv[argv.index("--comment") + 1]
        by_rule[comment.split("_wildcards_")[0]] = flags(argv)
    assert by_rule["rule_train"] == [
        "--parsable",
        "--export=ALL",
        "-A",
        "acct42",
        "-p",
        "p1",
        "-t",
        "240",
        "--mem",
        "32000",
        "--cpus-per-task=4",
        "--mail-type=END,FAIL",
        "--mail-user=me@example.org",
        "--gres=gpu:a40:1",
    ], shlex.join(by_rule["rule_train"])
    assert by_rule["rule_build_dataset"] == [
        "--parsable",
        "--export=ALL",
        "-A",
        "acct42",
        "-p",
        "p1",
        "-t",
        "60",
        "--mem",
        "8000",
        "--ntasks=1",
        "--cpus-per-task=4",
    ], shlex.join(by_rule["rule_build_dataset"])


# --- what reruns ---------------------------------------------------------------------------------


def parity_outputs(name: str, seed: int = 0) -> set[str]:
    d = f"results/parity/{name}/seed{seed}"
    return {
        f"{d}/{f}"
        for f in ("final.ckpt", "train_metrics.csv", "run.json", "eval.json", "per_example.parquet")
    }


AGGREGATES = {
    "results/figures",
    "results/summary.pdf",
    "results/summary.csv",
    "results/summary.tex",
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The tiny workflow as after a complete run (placeholder outputs, real metadata)."""
    wf = copy_workflow(tmp_path_factory.mktemp("finished") / "wf")
    fake_outputs(wf, *TINY)
    assert pending(wf, *TINY) == set()
    return wf


@pytest.fixture
def done(finished: Path, tmp_path: Path) -> Path:
    """A private copy of `finished` (modification times and .snakemake metadata kept)."""
    return Path(shutil.copytree(finished, tmp_path / "wf", symlinks=True))


def test_editing_one_experiment_reruns_only_its_jobs(done: Path):
    wf = done
    config = tiny_config()
    config["experiments"]["tiny_parity"]["hidden_size"] = 16
    write_yaml(wf / "tiny.yaml", config)
    assert pending(wf, *TINY) == parity_outputs("tiny_parity") | AGGREGATES


def test_adding_a_seed_trains_only_the_new_seed(done: Path):
    wf = done
    config = tiny_config()
    config["experiments"]["tiny_parity"]["seeds"] = [0, 1]
    write_yaml(wf / "tiny.yaml", config)
    assert pending(wf, *TINY) == parity_outputs("tiny_parity", seed=1) | AGGREGATES


def test_execution_options_rerun_nothing(done: Path):
    wf = done
    config = tiny_config()
    config["execution"]["log_every_n_steps"] = 7
    write_yaml(wf / "tiny.yaml", config)
    assert pending(wf, *TINY) == set()


def test_identical_manifest_retrains_nothing_a_changed_one_retrains_the_maze(done: Path):
    wf = done
    manifest = wf / "data/maze-6x6/manifest.json"
    text = manifest.read_text()
    manifest.write_text(text)  # rewritten: newer, same bytes (as by an identical rebuild)
    assert pending(wf, *TINY) == set()
    manifest.write_text(text + "changed\n")
    maze = {p for p in pending(wf, *TINY) if p.startswith("results/maze/")}
    assert pending(wf, *TINY) == maze | AGGREGATES
    assert {p.split("/")[2] for p in maze} == {"tiny_maze", "tiny_maze_ut"}
    assert all(any(p.endswith(f) for p in maze) for f in ("final.ckpt", "examples.npz"))


# --- config.yaml validated on its own, before the overlays --------------------------------------


def error_first_line(output: str) -> str:
    """The first line of the message of the error Snakemake reports at parse time (the line
    after its "ValueError in file ..., line N:" header)."""
    lines = output.splitlines()
    headers = [i for i, line in enumerate(lines) if "Error in file" in line]
    assert headers, output[-3000:]
    return lines[headers[0] + 1]


@pytest.mark.parametrize(
    "old, new, message",
    [
        # small.yaml sets max_epochs: the misspelt key must not hide behind it
        (
            "max_epochs: 1000",
            "max_epoch: 1000",
            "config.yaml: experiment maze_act_rnn: unknown key 'max_epoch' (Additional properties",
        ),
        # an invalid value small.yaml overrides (hidden_size: 64) passed the local dry run
        (
            "hidden_size: 512",
            "hidden_size: -5",
            "config.yaml: experiment maze_act_rnn: config field 'hidden_size' must be >= 1, got -5",
        ),
        (
            "hidden_size: 512",
            "hidden_size: '512'",
            "config.yaml: experiment maze_act_rnn: key 'hidden_size': '512' is not of type "
            "'integer'",
        ),
    ],
)
def test_config_yaml_error_the_small_preset_overrides_fails_the_local_dry_run(
    wf: Path, old: str, new: str, message: str
):
    text = (wf / "config.yaml").read_text()
    block = text.index("\n  maze_act_rnn:")
    at = text.index(old, block)
    assert at < text.index("\n  maze_ut:")  # the first experiment's own key
    (wf / "config.yaml").write_text(text[:at] + new + text[at + len(old) :])
    small = yaml.safe_load((wf / "presets/small.yaml").read_text())["experiments"]
    assert old.split(":")[0] in small["maze_act_rnn"]  # the preset does override it
    proc = snakemake(wf, "-n", "--profile", "profiles/local", check=False)
    assert proc.returncode != 0
    assert error_first_line(proc.stderr + proc.stdout).startswith(message)


@pytest.mark.parametrize(
    "overlay, message",
    [
        (
            {"experiments": {"parity_act": {"hiden_size": 64}}},
            "experiment parity_act: unknown key 'hiden_size' (Additional properties are not "
            "allowed",
        ),
        (
            {"experiments": {"parity_act": {"bits": "16"}}},
            "experiment parity_act: key 'bits': '16' is not of type 'integer'",
        ),
        ({"datasets": {"maze-12x12": {"sise": 12}}}, "dataset maze-12x12: unknown key 'sise'"),
        ({"experiment": {}}, ": unknown key 'experiment' (Additional properties are not allowed"),
    ],
)
def test_schema_error_names_the_experiment_and_key_in_its_first_line(
    wf: Path, overlay: dict, message: str
):
    proc = dry_run_small_with(wf, overlay, name="typo.yaml", check=False)
    assert proc.returncode != 0
    first = error_first_line(proc.stderr + proc.stdout)
    assert first.startswith("config.yaml + presets/small.yaml + typo.yaml: "), first
    assert message in first, first


# --- the README's snakemake commands ----------------------------------------------------------


def readme_snakemake_commands() -> list[str]:
    """The `snakemake ...` command lines of README.md's code blocks (also after `# = `, as in
    `make run-local   # = .venv/bin/snakemake ...`), without their trailing comments."""
    import re

    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    return [
        found[1].strip()
        for block in blocks
        for line in block.splitlines()
        if (found := re.search(r"(?:^|# = )(?:\.venv/bin/)?(snakemake\s[^#]*)", line))
    ]


def test_readme_snakemake_commands_dry_run(wf: Path):
    """Every snakemake command of the README, as `--dry-run`, in a copy of the workflow. Slurm
    ones run with the profile's environment variables (a dry run submits nothing, so it needs
    no Slurm). Where conda is not installed, `--sdm conda` commands are checked up to the point
    where Snakemake asks conda for its environment: their arguments parse and the DAG builds."""
    commands = readme_snakemake_commands()
    assert len(commands) >= 8 and any("profiles/slurm" in c for c in commands), commands
    failed = []
    for command in commands:
        args = shlex.split(command)[1:]
        if not {"-n", "--dry-run", "--dryrun"} & set(args):
            args.append("--dry-run")
        proc = snakemake(
            wf, *args, env=SLURM_ENV if "profiles/slurm" in args else None, check=False
        )
        output = proc.stdout + proc.stderr
        no_conda = "conda" in args and not (shutil.which("conda") or shutil.which("mamba"))
        if no_conda and proc.returncode == 1 and "Error running conda info" in output:
            continue  # everything before the conda environment worked
        if proc.returncode != 0:
            failed.append(f"{command}  (exit {proc.returncode}): {output.strip()[-600:]}")
    assert not failed, "\n\n".join(failed)
