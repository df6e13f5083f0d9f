# Figures and the summary of every run of the config.


rule figures:
    input:
        evals=all_eval_files(),
    output:
        directory("results/figures"),
    log:
        "logs/figures.log",
    conda:
        "../envs/halting.yaml"
    params:
        run_dirs=all_run_dirs(),
    script:
        "../workflow_scripts/figures.py"


rule summary:
    input:
        evals=all_eval_files(),
        figures="results/figures",  # the figure files come with the summary that shows them
    output:
        pdf="results/summary.pdf",
        csv="results/summary.csv",
        tex="results/summary.tex",
    log:
        "logs/summary.log",
    conda:
        "../envs/halting.yaml"
    params:
        run_dirs=all_run_dirs(),
    script:
        "../workflow_scripts/summary.py"
