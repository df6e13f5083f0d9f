"""Build one maze dataset folder and write its content-hash manifest."""

import json
from pathlib import Path

from glue import log_to, write_json_atomic

log_to(snakemake.log[0])
from halting.data.maze import build_dataset, write_manifest

out_dir = Path(snakemake.output.manifest).parent
spec = json.loads(snakemake.params.spec)
print(f"building {out_dir} from {spec}", flush=True)
build_dataset(output_dir=out_dir, **spec)
write_manifest(out_dir, snakemake.output.manifest)
