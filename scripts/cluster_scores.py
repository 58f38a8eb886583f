from _common import setup

log = setup(snakemake)

from scatlas.evaluate import score_table  # noqa: E402

table = score_table(
    snakemake.params.runs,
    snakemake.input.tsv,
    snakemake.params.datasets,
    snakemake.output[0],
)
log.info("%d clusterings scored", len(table))
