"""Train one experiment x seed in its checkpoint folder (resuming), then publish the run.

A spent time budget or a stop signal (Slurm's SIGTERM) exits 3: Snakemake's `retries` resubmit
the job and the next attempt resumes from last.ckpt. The cumulative log is
<checkpoint folder>/train.log."""

import json
import sys

from glue import log_to, run_fields, time_budget_min

log_to(snakemake.log[0])
import torch

from halting.config import make_config
from halting.io import atomic_copy
from halting.training.checkpoint import load_checkpoint
from halting.training.resume import ConfigMismatch
from halting.training.run_json import write_run_json
from halting.training.train import PAUSED_EXIT, TrainingPaused, train

name, params, opts = snakemake.wildcards.experiment, snakemake.params, snakemake.config["execution"]
config = make_config(json.loads(params.config_json), source=f"experiment {name}")
torch.set_num_threads(snakemake.threads)
print(f"checkpoint folder {params.checkpoint_dir}", flush=True)
try:
    train(
        config,
        run_dir=params.checkpoint_dir,
        resume="auto",
        accelerator=opts["accelerator"],
        time_budget_min=time_budget_min(snakemake.resources),
        log_every_n_steps=opts["log_every_n_steps"],
        save_every_n_steps=opts["save_every_n_steps"],
        save_every_n_epochs=opts["save_every_n_epochs"],
        keep_checkpoints=opts["keep_checkpoints"],
        save_last_every_min=opts["save_last_every_min"],
    )
except TrainingPaused as pause:
    print(f"{pause}; exit {PAUSED_EXIT} so that Snakemake's retries resume it", flush=True)
    sys.exit(PAUSED_EXIT)
except ConfigMismatch as refused:  # the folder is named without the totals: a lowered one
    sys.exit(
        f"{refused}\nIn the workflow: `rm -r {params.checkpoint_dir}` retrains it from "
        f"scratch with the new max_steps / max_epochs."
    )
atomic_copy(f"{params.checkpoint_dir}/final.ckpt", snakemake.output.ckpt)
atomic_copy(f"{params.checkpoint_dir}/metrics.csv", snakemake.output.metrics)
final = load_checkpoint(snakemake.output.ckpt, mmap=True)  # for train_seconds only
write_run_json(
    snakemake.output.run,
    config,
    experiment=name,
    train_seconds=final.get("train_seconds"),
    **run_fields(params, snakemake.config["datasets"], snakemake.input),
)
