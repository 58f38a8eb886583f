from _common import setup

log = setup(snakemake)

from scatlas.reference import build_hisat2_index  # noqa: E402

build_hisat2_index(
    snakemake.input.fasta,
    snakemake.input.gtf,
    snakemake.params.prefix,
    threads=snakemake.threads,
    splice_aware=snakemake.params.splice_aware,
)
