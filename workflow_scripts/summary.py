"""Write results/summary.{pdf,csv,tex} (tables, then every figure) from the configured runs."""

from glue import log_info_to

log_info_to(snakemake.log[0])
from halting.report.summary import write_summary

table = write_summary(None, snakemake.output.pdf, run_dirs=snakemake.params.run_dirs)
print(table.to_string())
