"""Build one maze dataset folder (replacing a previous build) and write its manifest."""

import json
from pathlib import Path

from glue import log_to

log_to(snakemake.log[0])
from halting.data.maze import build_dataset, write_manifest

out_dir = Path(snakemake.output.manifest).parent
build_dataset(
    out_dir,
    **json.loads(snakemake.params.spec),
    workers=snakemake.threads,
    force=True,
    progress=False,
)
manifest = write_manifest(out_dir, snakemake.output.manifest)
print(f"content hash {manifest['sha256']}")
