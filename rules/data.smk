# Maze datasets: data/<dataset>/{train,test}/ in HRM format plus a small content-hash manifest
# that training and evaluation depend on. A rebuild that gives identical files writes an
# identical manifest, and Snakemake then reruns nothing downstream (checksum of a newer input).


rule build_dataset:
    input:
        dataset_sources,
    output:
        manifest="data/{dataset}/manifest.json",
        train=directory("data/{dataset}/train"),
        test=directory("data/{dataset}/test"),
    log:
        "logs/build_dataset/{dataset}.log",
    conda:
        "../envs/halting.yaml"
    params:
        spec=dataset_spec,
    script:
        "../workflow_scripts/build_dataset.py"


# Target alias: `snakemake --cores 2 aug8` builds the aug8 variant of Maze-Hard.
rule aug8:
    input:
        "data/maze-30x30-hard-1k-aug8/manifest.json",
