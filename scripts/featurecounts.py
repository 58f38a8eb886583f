import json

from _common import setup

log = setup(snakemake)

from scatlas.io import atomic_output  # noqa: E402
from scatlas.quant import quantify_run  # noqa: E402

stats = quantify_run(
    snakemake.input.bam,
    snakemake.input.gtf,
    snakemake.output.table,
    paired=snakemake.params.paired,
    strandedness=snakemake.params.strandedness,
    threads=snakemake.threads,
    summary=snakemake.output.summary,
)
log.info("%s: %s", snakemake.wildcards.run, stats)
with atomic_output(snakemake.output.stats) as tmp:
    tmp.write_text(json.dumps(stats, indent=1))
