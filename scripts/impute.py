from _common import setup

log = setup(snakemake)

from scatlas.impute import run_impute  # noqa: E402

model = run_impute(
    snakemake.params.method,
    snakemake.input.h5ad,
    snakemake.output.h5ad,
    reference=snakemake.input.reference[0] if snakemake.input.reference else None,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    params=snakemake.params.params,
    save_model=snakemake.output.model,
    threads=snakemake.threads,
)
log.info("imputed %d genes; %s", len(model.gene_names), model.stages)
