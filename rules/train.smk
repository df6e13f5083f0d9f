# One training job per experiment x seed. The resumable state lives in checkpoint_dir (a param,
# never an output); a job whose time budget runs out exits 3 and Snakemake's retries resume it.


rule train:
    input:
        data_manifest,
    output:
        ckpt="results/{task}/{experiment}/seed{seed}/final.ckpt",
        metrics="results/{task}/{experiment}/seed{seed}/train_metrics.csv",
        run="results/{task}/{experiment}/seed{seed}/run.json",
    log:
        "logs/train/{task}/{experiment}/seed{seed}.log",
    benchmark:
        "logs/train/{task}/{experiment}/seed{seed}.benchmark.tsv"
    conda:
        "../envs/halting.yaml"
    params:
        config_json=train_config_json,
        code_version=CODE_VERSION,
        checkpoint_dir=checkpoint_dir,
        dataset=dataset_name,
    script:
        "../workflow_scripts/train.py"
