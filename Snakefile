# The halting workflow: datasets -> training (resumable) -> evaluation -> figures -> summary.
# Run with a profile: `snakemake --profile profiles/local` (CPU, small preset) or
# `snakemake --profile profiles/slurm` (the cluster). See README, "The pipeline".
# Every rule names the conda environment envs/halting.yaml, used only with `--sdm conda`. It is
# set per rule: Snakemake's workflow-level `conda:` directive instead injects an environment into
# the Snakemake process itself, and `snakemake --lint` does not count it for the rules.
from snakemake.utils import min_version

min_version("9.0")


CONFIG_FILE = "config.yaml"
SCHEMA = "schemas/config.schema.yaml"


configfile: CONFIG_FILE


include: "rules/common.smk"


# Validate twice before any job: the JSON Schema (with defaults), then make_config on every
# experiment x seed. First config.yaml alone: the overlays merged over it (--configfile, the
# local profile's preset) would hide an error in a key they override. Then the merged config.
check_config_file(CONFIG_FILE)
check_config(config, config_sources())
check_profile_env()


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/figures.smk"


wildcard_constraints:
    task="maze|parity|addition",
    experiment="[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed="[0-9]+",


rule all:
    default_target: True
    input:
        "results/summary.pdf",
        "results/summary.csv",
        "results/summary.tex",
        "results/figures",
