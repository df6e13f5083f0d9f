"""Draw every figure of the configured runs into results/figures/."""

from glue import log_info_to

log_info_to(snakemake.log[0])
from halting.report.figures import make_figures

paths = make_figures(None, snakemake.output[0], run_dirs=snakemake.params.run_dirs)
print("\n".join(str(p) for p in paths))
