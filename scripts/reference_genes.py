from _common import setup

log = setup(snakemake)

from scatlas.reference import write_gene_set  # noqa: E402

genes = write_gene_set(snakemake.input.gtf, snakemake.params.biotypes, snakemake.output.gtf, snakemake.output.table)
log.info("%d genes kept (biotypes: %s)", len(genes), snakemake.params.biotypes or "all")
