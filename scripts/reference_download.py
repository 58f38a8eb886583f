from _common import setup

log = setup(snakemake)

from scatlas.repositories.http import download  # noqa: E402

log.info("downloading %s", snakemake.params.url)
download(snakemake.params.url, snakemake.output[0])
