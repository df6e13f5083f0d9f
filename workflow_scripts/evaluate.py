"""Evaluate one trained model: eval.json, per_example.parquet (+ examples.npz for mazes)."""

from pathlib import Path

from glue import log_to

log_to(snakemake.log[0])
import torch

from halting.evaluation.evaluate import evaluate

opts = snakemake.config["execution"]
torch.set_num_threads(snakemake.threads)
evaluate(
    snakemake.input.ckpt,
    data_dir=snakemake.params.data_dir or None,
    out_dir=Path(snakemake.output.eval).parent,
    device=opts["accelerator"],
    batch_size=opts["eval_batch_size"],
    experiment=snakemake.wildcards.experiment,
    progress=False,
)
