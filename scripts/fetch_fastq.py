from _common import setup

log = setup(snakemake)

from scatlas.repositories.fetch import fetch_mate  # noqa: E402
from scatlas.repositories.http import Remote  # noqa: E402

fetch_mate(
    snakemake.params.run,
    int(snakemake.wildcards.mate),
    snakemake.output[0],
    Remote.from_config(snakemake.params.repositories),
    scheme=snakemake.params.scheme,
    threads=snakemake.threads,
)
