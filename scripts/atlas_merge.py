from _common import setup

log = setup(snakemake)

from scatlas.atlas import merge_studies  # noqa: E402

studies = dict(zip(snakemake.params.studies, snakemake.input.quant, strict=True))
n_cells, n_genes = merge_studies(studies, snakemake.input.labels, snakemake.output[0])
log.info("atlas: %d cells x %d genes from %d studies", n_cells, n_genes, len(studies))
