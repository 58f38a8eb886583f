from _common import setup

log = setup(snakemake)

from scatlas.cluster import run_clustering  # noqa: E402
from scatlas.cluster.data import dataset_n_clusters  # noqa: E402

labels = run_clustering(
    snakemake.wildcards.method,
    snakemake.input.h5ad,
    dataset_n_clusters(snakemake.params.dataset, snakemake.input.h5ad),
    snakemake.output.tsv,
    seed=int(snakemake.wildcards.seed),
    device=snakemake.params.device,
    params=snakemake.params.params,
    threads=snakemake.threads,
    save_model=snakemake.output.get("model"),
)
log.info("%s seed %s: %d cells clustered", snakemake.wildcards.method, snakemake.wildcards.seed, len(labels))
