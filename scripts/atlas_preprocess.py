from _common import setup

log = setup(snakemake)

from scatlas.preprocess import preprocess_atlas  # noqa: E402

qc = dict(snakemake.params.qc)
qc["batch_key"] = qc.pop("hvg_batch_key")
adata = preprocess_atlas(snakemake.input[0], snakemake.output.h5ad, snakemake.output.qc, **qc)
log.info("preprocessed: %d cells x %d genes, %d highly variable", *adata.shape, adata.var["highly_variable"].sum())
