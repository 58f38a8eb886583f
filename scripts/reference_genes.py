from _common import setup

log = setup(snakemake)

from scatlas.io import atomic_output  # noqa: E402
from scatlas.reference import gene_table, read_exons, write_gene_gtf  # noqa: E402

exons = read_exons(snakemake.input.gtf)
genes = gene_table(exons, snakemake.params.biotypes)
log.info("%d of %d genes kept (biotypes: %s)", len(genes), exons["gene_id"].nunique(), snakemake.params.biotypes)
write_gene_gtf(exons, genes.index, snakemake.output.gtf)
with atomic_output(snakemake.output.table) as tmp:
    genes.to_csv(tmp, sep="\t")
