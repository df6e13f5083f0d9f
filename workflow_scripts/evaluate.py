"""Evaluate one trained model: eval.json, per_example.parquet (+ examples.npz for mazes)."""

from pathlib import Path

from glue import log_to

log_to(snakemake.log[0])
import torch
from halting.evaluate import evaluate

torch.set_num_threads(snakemake.threads)
out_dir = Path(snakemake.output.eval).parent
evaluate(snakemake.input.ckpt, data_dir=snakemake.params.data_dir or None, out_dir=out_dir,
         device=snakemake.config["execution"]["accelerator"], batch_size=snakemake.config["execution"]["eval_batch_size"])
missing = [f for f in snakemake.output if not Path(f).is_file()]
if missing:
    raise SystemExit(f"evaluate() did not write {', '.join(missing)}")
