import pandas as pd
from _common import setup

log = setup(snakemake)

from scatlas.quant import assemble_study  # noqa: E402

runs = pd.DataFrame(snakemake.params.runs).set_index("run", drop=False).rename_axis(None)
per_run = {
    name: dict(zip(runs.index, snakemake.input[name], strict=True)) for name in ("tables", "quant_stats", "align_stats")
}
adata = assemble_study(
    runs,
    pd.read_csv(snakemake.input.genes, sep="\t", index_col="gene_id"),
    quant_tables=per_run["tables"],
    quant_stats=per_run["quant_stats"],
    align_stats=per_run["align_stats"],
    min_alignment_rate=snakemake.params.min_alignment_rate,
    output=snakemake.output.h5ad,
    excluded_output=snakemake.output.excluded,
)
log.info("%s: %d runs x %d genes", snakemake.wildcards.study, adata.n_obs, adata.n_vars)
