"""Draw every figure of the configured runs into results/figures/."""

import logging

from glue import log_to

log_to(snakemake.log[0])
from halting.figures import make_figures

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
paths = make_figures(None, snakemake.output[0], run_dirs=snakemake.params.run_dirs)
print("\n".join(str(p) for p in paths))
