# Evaluation of every trained model: eval.json and per_example.parquet (+ examples.npz for mazes).


rule evaluate:
    input:
        ckpt="results/{task}/{experiment}/seed{seed}/final.ckpt",
        data=data_manifest,
    output:
        eval="results/{task}/{experiment}/seed{seed}/eval.json",
        per_example="results/{task}/{experiment}/seed{seed}/per_example.parquet",
    log:
        "logs/evaluate/{task}/{experiment}/seed{seed}.log",
    benchmark:
        "logs/evaluate/{task}/{experiment}/seed{seed}.benchmark.tsv"
    wildcard_constraints:
        task="parity|addition",
    conda:
        "../envs/halting.yaml"
    params:
        data_dir=data_dir,
        code_version=CODE_VERSION,
    script:
        "../workflow_scripts/evaluate.py"


use rule evaluate as evaluate_maze with:
    output:
        eval="results/{task}/{experiment}/seed{seed}/eval.json",
        per_example="results/{task}/{experiment}/seed{seed}/per_example.parquet",
        examples="results/{task}/{experiment}/seed{seed}/examples.npz",
    wildcard_constraints:
        task="maze",
