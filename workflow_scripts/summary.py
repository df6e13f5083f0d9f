"""Write results/summary.{pdf,csv,tex} (tables, then every figure) from the configured runs."""

import logging

from glue import log_to

log_to(snakemake.log[0])
from halting.report import write_summary

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
table = write_summary(None, snakemake.output.pdf, run_dirs=snakemake.params.run_dirs)
print(table.to_string())
