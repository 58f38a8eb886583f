from _common import setup

log = setup(snakemake)

from scatlas.embed import train_atlas_embedding  # noqa: E402

embed = snakemake.params.embed
scores = train_atlas_embedding(
    snakemake.input.h5ad,
    snakemake.output.model,
    snakemake.output.metrics,
    snakemake.output.predictions,
    label_key=embed["label_key"],
    study_key=embed["study_key"],
    model=snakemake.wildcards.model,
    min_cells=embed["min_cells"],
    seed=int(snakemake.wildcards.seed),
    device=embed["device"],
    params=embed["params"],
    pretrain=embed["pretrain"],
    holdout=embed["holdout"],
    ontology=snakemake.input.ontology,
    term_key=embed["term_key"],
    threads=snakemake.threads,
)
log.info("query-set scores: %s", scores)
