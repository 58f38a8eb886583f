import json

from _common import setup

log = setup(snakemake)

from scatlas import tools  # noqa: E402
from scatlas.align import align_run  # noqa: E402
from scatlas.io import atomic_output  # noqa: E402

summary = align_run(
    snakemake.input.fastqs,
    snakemake.params.prefix,
    snakemake.output.bam,
    snakemake.output.summary,
    threads=snakemake.threads,
    phred=snakemake.params.phred,
    extra_args=snakemake.params.extra,
)
log.info("%s: %d reads, alignment rate %.2f%%", snakemake.wildcards.run, summary.n_reads, 100 * summary.alignment_rate)
with atomic_output(snakemake.output.stats) as tmp:
    tmp.write_text(json.dumps({**summary.to_dict(), "hisat2_version": tools.version("hisat2")}, indent=1))
