# Small named helpers of the rules: targets, per-experiment params, profile checks.
# Everything here runs at parse time, so a bad experiment fails before any job starts.

import os
import re

import yaml
from jsonschema.exceptions import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import halting
from halting.config import TOTALS, canonical_json, config_hash, make_config

# Training code version in every training job's params: bump halting.__version__ to retrain
# everything after a change that alters results (a hash of the sources would retrain on any edit).
CODE_VERSION = halting.__version__
# Experiment keys that are not ExperimentConfig fields.
WORKFLOW_KEYS = ("dataset", "seeds")


def block_config(block, seed):
    """The ExperimentConfig mapping of an experiment block and seed: the block without workflow
    keys, plus the seed and, for the maze, data_dir = data/<dataset>."""
    values = {k: v for k, v in block.items() if k not in WORKFLOW_KEYS}
    values["seed"] = int(seed)
    if "dataset" in block:
        values["data_dir"] = f"data/{block['dataset']}"
    return values


def seed_config(name, seed):
    """The ExperimentConfig mapping of one job (`block_config` of the experiment `name`)."""
    return block_config(config["experiments"][name], seed)


def schema_error_line(source, error):
    """One line naming where a jsonschema ValidationError is: "<source>: experiment <name>:
    unknown key 'max_epoch' (<message>)" or "<source>: experiment <name>: key 'bits': <message>"
    (<message>: jsonschema's)."""
    path = list(error.absolute_path)
    where = [source]
    if len(path) >= 2 and path[0] in ("experiments", "datasets"):
        where.append(f"{path[0][:-1]} {path[1]}")
        path = path[2:]
    elif path:
        where.append(str(path.pop(0)))
    if path:
        where.append("key " + "/".join(repr(p) for p in path))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        unknown = ", ".join(repr(k) for k in error.instance if k not in known)
        return f"{': '.join(where)}: unknown key {unknown} ({error.message})"
    return f"{': '.join(where)}: {error.message}"


def check_config(values, source):
    """Both validations of a config mapping: the JSON Schema (filling its defaults into `values`),
    then make_config on every experiment x seed and the dataset names. The first line of an
    error names `source`, the experiment and the key (Snakemake's own schema error names a
    JSON path deep inside the printed schema)."""
    try:
        validate(values, os.path.join(workflow.basedir, SCHEMA))
    except WorkflowError as exc:
        # validate() raises its WorkflowError while handling jsonschema's error
        error = exc.__context__
        if not isinstance(error, ValidationError):
            raise
        raise ValueError(schema_error_line(source, error)) from None
    unknown = [n for n in values["run_experiments"] or () if n not in values["experiments"]]
    if unknown:
        raise ValueError(
            f"{source}: run_experiments: {', '.join(map(repr, unknown))} not in `experiments` "
            f"({', '.join(values['experiments'])})"
        )
    for name, block in values["experiments"].items():
        dataset = block.get("dataset")
        if dataset is not None and dataset not in values["datasets"]:
            raise ValueError(
                f"{source}: experiment {name}: dataset {dataset!r} is not in `datasets` "
                f"({', '.join(values['datasets'])})"
            )
        for seed in block["seeds"]:
            job = block_config(block, seed)
            make_config(job, source=f"{source}: experiment {name}")


def check_config_file(path):
    """`check_config` of the workflow's own config file alone (when Snakemake loaded it: it
    skips a missing one given --configfile), before the overlays merge over it and hide an
    error in a key they override."""
    if os.path.exists(path):
        with open(path) as handle:
            check_config(yaml.safe_load(handle), path)


def config_sources():
    """The files merged into `config`, as "config.yaml + presets/small.yaml" (error messages)."""
    settings = workflow.config_settings
    files = [] if settings.replace_workflow_config else [CONFIG_FILE]
    files += [os.path.relpath(f) for f in settings.configfiles or ()]
    return " + ".join(files) or "config"


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


def selected_experiments():
    """The experiments this workflow runs: `run_experiments`, or all of `experiments`."""
    return config["run_experiments"] or list(config["experiments"])


def all_run_dirs():
    return [
        run_dir(name, seed)
        for name in selected_experiments()
        for seed in config["experiments"][name]["seeds"]
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
