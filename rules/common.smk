# Small named helpers of the rules: targets, per-experiment params, profile checks.
# Everything here runs at parse time, so a bad experiment fails before any job starts.

import os
import re

import halting
from halting.config import TOTALS, canonical_json, config_hash, make_config

# Training code version in every training job's params: bump halting.__version__ to retrain
# everything after a change that alters results (a hash of the sources would retrain on any edit).
CODE_VERSION = halting.__version__
# Experiment keys that are not ExperimentConfig fields.
WORKFLOW_KEYS = ("dataset", "seeds")


def seed_config(name, seed):
    """The ExperimentConfig mapping of one job: the block without workflow keys, plus its
    seed and, for the maze, data_dir = data/<dataset>."""
    block = config["experiments"][name]
    values = {k: v for k, v in block.items() if k not in WORKFLOW_KEYS}
    values["seed"] = int(seed)
    if "dataset" in block:
        values["data_dir"] = f"data/{block['dataset']}"
    return values


def check_experiments():
    """Second validation: make_config on every experiment x seed, and dataset names."""
    for name, block in config["experiments"].items():
        dataset = block.get("dataset")
        if dataset is not None and dataset not in config["datasets"]:
            raise ValueError(
                f"experiment {name}: dataset {dataset!r} is not in `datasets` "
                f"({', '.join(config['datasets'])})"
            )
        for seed in block["seeds"]:
            make_config(seed_config(name, seed), source=f"experiment {name}")


def check_profile_env():
    """A resource of the profile that names an unset $VARIABLE (the Slurm account, the mail
    address) fails here, at parse time, with the variable's name."""
    settings = workflow.resource_settings
    raws = [(k, r.raw) for k, r in (settings.default_resources or {}).items()]
    for rule_name, resources in (settings.overwrite_resources or {}).items():
        raws += [(f"{rule_name}:{k}", r.raw) for k, r in resources.items()]
    for where, raw in raws:
        for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", str(raw or "")):
            if not os.environ.get(var):
                raise ValueError(
                    f"the profile's resource {where} needs the environment variable {var}: "
                    f'export {var}=<value> (see README, "On the cluster: `profiles/slurm`")'
                )


def named(section, name):
    """config[section][name] (section: experiments or datasets), named by a target: an unknown
    name fails with the valid ones."""
    if name not in config[section]:
        raise ValueError(
            f"{section[:-1]} {name!r} is not in `{section}` ({', '.join(config[section])})"
        )
    return config[section][name]


def experiment(wildcards):
    """The experiment block named by the wildcards, checked against the task wildcard."""
    block = named("experiments", wildcards.experiment)
    if block["task"] != wildcards.task:
        raise ValueError(
            f"experiment {wildcards.experiment} is a {block['task']} experiment, not "
            f"{wildcards.task}: ask for results/{block['task']}/{wildcards.experiment}/..."
        )
    return block


def run_dir(name, seed):
    return f"results/{config['experiments'][name]['task']}/{name}/seed{seed}"


def all_run_dirs():
    return [
        run_dir(name, seed)
        for name, block in config["experiments"].items()
        for seed in block["seeds"]
    ]


def all_eval_files():
    return [f"{d}/eval.json" for d in all_run_dirs()]


def train_config_json(wildcards):
    """Training params: the job's config as canonical JSON (a change reruns the job)."""
    experiment(wildcards)
    return canonical_json(seed_config(wildcards.experiment, wildcards.seed))


def checkpoint_dir(wildcards):
    """checkpoints/<experiment>/seed<k>/<hash of the config without its totals, and the code
    version>/: the resumable state, never a Snakemake output (Snakemake deletes outputs before
    a retry). Raising max_steps/max_epochs reruns the job (its params change) in the same
    folder, which continues the checkpoint instead of starting over.
    """
    full = make_config(seed_config(wildcards.experiment, wildcards.seed)).to_dict()
    for total in TOTALS:
        full.pop(total)
    digest = config_hash({"config": full, "code_version": CODE_VERSION})
    return f"checkpoints/{wildcards.experiment}/seed{wildcards.seed}/{digest}"


def data_manifest(wildcards):
    """The dataset manifest a maze job depends on; nothing for the generated toy tasks."""
    dataset = experiment(wildcards).get("dataset")
    return [f"data/{dataset}/manifest.json"] if dataset else []


def data_dir(wildcards):
    dataset = experiment(wildcards).get("dataset")
    return f"data/{dataset}" if dataset else ""


def dataset_name(wildcards):
    return experiment(wildcards).get("dataset") or ""


def dataset_spec(wildcards):
    """The builder flags of one dataset, as canonical JSON (a change rebuilds it)."""
    return canonical_json(named("datasets", wildcards.dataset))


def dataset_sources(wildcards):
    """A CSV dataset depends on its CSV files; a generated one on nothing."""
    spec = named("datasets", wildcards.dataset)
    if spec.get("source") == "csv":
        return [f"{spec['csv_dir']}/train.csv", f"{spec['csv_dir']}/test.csv"]
    return []


check_experiments()
check_profile_env()
